"""A bounded cache of verified access tokens, and how revocations reach it (issue #10).

Verifying a built-in access token costs an RS256 signature check and one database look-up
(the session not revoked, the account not disabled, its roles): 2-3 ms of CPU on every
authenticated request, most of it the look-up and the worker-thread hop around it. A resident
sends the same token for its whole lifetime (15 min), so :class:`TokenCache` keeps the
:class:`~app.identity.principal.Principal` each token verified to, keyed by the token string,
until the token expires, and answers a cached token on the event loop without a thread or a
query.

Being right about what the look-up used to catch at once:

* **Logout, refresh-token reuse, password change, disabling** revoke sessions
  (:class:`~app.identity.sessions.SessionManager`); **a changed or deleted account** (roles,
  ``disabled``) is any ORM change of a ``User``. Both are noted in the database session that
  makes them and, once it commits, every cache of this process forgets the session's or the
  user's tokens (:func:`_after_commit`), before the route answers. Other processes are told on
  the event bus (topic :data:`TOPIC`, :func:`start_revocation_feed`) and forget them when the
  message comes; should it be lost (Redis restarting), an entry is re-checked against the
  database at the latest :data:`RECHECK_S` after its last check.
* **A check racing a revocation** (read before the commit, stored after it) is not stored:
  every revocation bumps the cache's generation and an entry is stored only if the generation
  did not move during its check (:meth:`TokenCache.put`).
* **Key rotation**: a cached token is answered only while its ``kid`` is still published by the
  :class:`~app.identity.keys.KeyStore` (a retired key keeps verifying the tokens it signed
  until they expire, as without the cache; a key no longer published stops them at once), and
  only while the key store is fresh (else the request takes the slow path, which re-reads it).
* **Expiry**: an entry is dropped at the token's ``exp`` (the slow path applies the leeway).
* **Bounded**: at most ``max_entries`` tokens (least recently used go first).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from app.identity.principal import Principal
from app.models.identity import User

log = structlog.get_logger("tsunagu.identity.token_cache")

#: Where a process tells the others which sessions and users' tokens to forget.
TOPIC = "identity.revoked"
#: Longest time an entry is answered without looking at the database again: bounds how late a
#: revocation takes effect in another process when its bus message is lost.
RECHECK_S = 15.0
MAX_ENTRIES = 20_000
#: Keys of ``Session.info`` where a transaction notes what it revokes (see ``note_*``).
_SESSIONS_KEY = "tsunagu_revoked_sessions"
_USERS_KEY = "tsunagu_changed_users"


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    session_id: str
    kid: str
    exp: float  # the token's expiry (unix s)
    checked: float  # time.monotonic() of the database check


class TokenCache:
    """Verified tokens -> their principal, until expiry or revocation (thread-safe).

    Parameters
    ----------
    max_entries
        Bound on the tokens kept (least recently used evicted first).
    recheck_s
        Longest time an entry is used without a new database check (:data:`RECHECK_S`).
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, recheck_s: float = RECHECK_S) -> None:
        self.max_entries = max_entries
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._generation = 0
        #: Set by :func:`start_revocation_feed`: the bus and loop other processes are told on.
        self.bus: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.origin = uuid.uuid4().hex
        _CACHES.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Bumped by every revocation: read it before a check, give it to :meth:`put`."""
        return self._generation

    def get(self, token: str, published: Any) -> Principal | None:
        """The principal of a cached ``token`` still valid, or None (verify it then).
        ``published(kid)``: True while the key is published, None when unknown (stale)."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            time.time() >= entry.exp
            or time.monotonic() - entry.checked > self.recheck_s
            or not published(entry.kid)
        ):
            with self._lock:
                if self._entries.get(token) is entry:
                    del self._entries[token]
            return None
        with self._lock, contextlib.suppress(KeyError):
            self._entries.move_to_end(token)
        return entry.principal

    def put(
        self,
        token: str,
        principal: Principal,
        *,
        session_id: str,
        kid: str,
        exp: float,
        generation: int,
        checked: float,
    ) -> None:
        """Keep a token verified at ``checked`` (monotonic), unless a revocation came since
        ``generation`` was read (the check may have read the row before it)."""
        entry = _Entry(principal, session_id, kid, exp, checked)
        with self._lock:
            if self._generation != generation:
                return
            self._entries[token] = entry
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, sessions: Iterable[str] = (), users: Iterable[str] = ()) -> int:
        """Drop the tokens of ``sessions`` and of ``users`` (ids as strings); how many."""
        sids, uids = {str(s) for s in sessions}, {str(u) for u in users}
        with self._lock:
            self._generation += 1
            gone = [
                t
                for t, e in self._entries.items()
                if e.session_id in sids or e.principal.user_id in uids
            ]
            for t in gone:
                del self._entries[t]
        return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # --- telling the other processes ----------------------------------------------------------
    def announce(self, sessions: list[str], users: list[str]) -> None:
        """Publish a revocation on the bus (from any thread; waited for, bounded, when called
        from a worker thread, so the route answers after the others were told)."""
        bus, loop = self.bus, self.loop
        if bus is None or loop is None or loop.is_closed():
            return
        data = {"sessions": sessions, "users": users, "origin": self.origin}
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # on the loop itself: cannot wait here
            task = loop.create_task(bus.publish(TOPIC, data))
            _PUBLISHING.add(task)
            task.add_done_callback(_PUBLISHING.discard)
            return
        try:
            asyncio.run_coroutine_threadsafe(bus.publish(TOPIC, data), loop).result(2.0)
        except Exception as exc:  # the others re-check within RECHECK_S anyway
            log.warning("token_revocation_not_published", error=repr(exc))


_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()
_PUBLISHING: set[asyncio.Task[Any]] = set()


# --- noting revocations in the transaction that makes them ----------------------------------------
def note_revoked_session(db: OrmSession, session_id: object) -> None:
    """Tokens of the sign-in session ``session_id`` stop once ``db`` commits."""
    db.info.setdefault(_SESSIONS_KEY, set()).add(str(session_id))


def note_changed_user(db: OrmSession, user_id: object) -> None:
    """Tokens of user ``user_id`` are checked again once ``db`` commits."""
    db.info.setdefault(_USERS_KEY, set()).add(str(user_id))


def revoke(sessions: Iterable[str] = (), users: Iterable[str] = ()) -> None:
    """Forget the tokens of ``sessions`` and ``users`` in every cache of this process and tell
    the other processes (a revocation committed outside an ORM session)."""
    sids, uids = sorted({str(s) for s in sessions}), sorted({str(u) for u in users})
    if not sids and not uids:
        return
    for cache in list(_CACHES):
        cache.forget(sids, uids)
        cache.announce(sids, uids)


@event.listens_for(OrmSession, "before_flush")
def _before_flush(db: OrmSession, _ctx: Any, _instances: Any) -> None:
    """Any change of an account (roles, disabled, deleted) reaches the caches at commit."""
    for obj in (*db.dirty, *db.deleted):
        if isinstance(obj, User):
            note_changed_user(db, obj.id)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(db: OrmSession) -> None:
    sids = db.info.pop(_SESSIONS_KEY, set())
    uids = db.info.pop(_USERS_KEY, set())
    if sids or uids:
        revoke(sids, uids)


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(db: OrmSession) -> None:
    db.info.pop(_SESSIONS_KEY, None)
    db.info.pop(_USERS_KEY, None)


# --- the feed between processes -------------------------------------------------------------------
async def _listen(cache: TokenCache, sub: Any) -> None:
    async for ev in sub:
        data = ev.data or {}
        if data.get("origin") == cache.origin:
            continue
        cache.forget(data.get("sessions") or (), data.get("users") or ())


async def start_revocation_feed(services: Any) -> None:
    """Start-up hook: this process tells the others of its revocations on the event bus and
    forgets the tokens the others revoke (only the built-in tokens are cached)."""
    cache: TokenCache | None = getattr(getattr(services, "identity", None), "token_cache", None)
    bus = getattr(services, "bus", None)
    if cache is None or bus is None:
        return
    sub = bus.subscribe([TOPIC])
    cache.bus, cache.loop = bus, asyncio.get_running_loop()
    task = asyncio.create_task(_listen(cache, sub), name="identity-revocations")

    async def stop() -> None:
        cache.bus = None
        sub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    services.on_stop.append(stop)
