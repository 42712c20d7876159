"""The ``tsunagu`` command.

    tsunagu serve [--demo/--no-demo] [--host H] [--port P] [--workers N] [--service emissions|health]
    tsunagu db upgrade | tsunagu db current
    tsunagu create-admin --email E [--password-stdin | --password P]   (else a prompt)
    tsunagu keys rotate | tsunagu keys list
    tsunagu auth prune [--keep-revoked-days D]
    tsunagu backup --output PATH | tsunagu restore --input PATH [--force]   (app.backup)
    tsunagu config [--markdown]
    tsunagu simulate [--feed FLEX.zip] [--rate R] [--vans N] ...   (app.simulate_cli)

Adding commands (other engineers): write a module with ``register(subparsers)`` that adds its
sub-parsers and sets ``func=handler`` on each (``handler(args, settings) -> int``), then list the
module in ``command_modules()``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.settings import Settings, get_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def command_modules() -> list[str]:
    """Modules contributing sub-commands, each with ``register(subparsers)``."""
    return [
        "app.cli",
        "app.backup",
        "app.feeds.cli",
        "app.simulate_cli",
    ]


#: ``tsunagu serve --service NAME``: the app factory of each service that runs on its own.
SERVICE_APPS = {
    "emissions": "app.emissions.service:create_emissions_app",
    "health": "app.health.service:create_health_app",
}


def register(sub: Any) -> None:
    """The foundation's commands: serve, db, create-admin, keys."""
    serve = sub.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load the demo city (Muroran) on first start",
    )
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="development auto-reload")
    serve.add_argument(
        "--service",
        choices=("all", *SERVICE_APPS),
        default="all",
        help="all: the whole app; emissions or health: only that service (tokens checked "
        "against TSUNAGU_IDENTITY_JWKS_URL)",
    )
    serve.set_defaults(func=cmd_serve)

    dbp = sub.add_parser("db", help="database schema")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply every pending migration").set_defaults(
        func=cmd_db_upgrade
    )
    dbsub.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db_current)

    admin = sub.add_parser(
        "create-admin",
        help="create an admin (or promote and reset one)",
        description="The password is asked at a prompt (twice), read from stdin with "
        "--password-stdin, or taken from $TSUNAGU_ADMIN_PASSWORD.",
    )
    admin.add_argument("--email", required=True)
    given = admin.add_mutually_exclusive_group()
    given.add_argument(
        "--password",
        default=None,
        help="the password on the command line (visible in process lists and shell history: "
        "prefer the prompt or --password-stdin)",
    )
    given.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (one line)"
    )
    admin.set_defaults(func=cmd_create_admin)

    keys = sub.add_parser("keys", help="JWT signing keys")
    keysub = keys.add_subparsers(dest="keys_command", required=True)
    keysub.add_parser("rotate", help="new signing key; old ones stay published").set_defaults(
        func=cmd_keys_rotate
    )
    keysub.add_parser("list", help="published signing keys").set_defaults(func=cmd_keys_list)

    config = sub.add_parser("config", help="every setting: variable, value, default, meaning")
    config.add_argument(
        "--markdown", action="store_true", help="a Markdown table of the defaults (for the README)"
    )
    config.set_defaults(func=cmd_config)

    auth = sub.add_parser("auth", help="sign-in sessions")
    authsub = auth.add_subparsers(dest="auth_command", required=True)
    prune = authsub.add_parser("prune", help="delete expired refresh tokens and dead sessions")
    prune.add_argument("--keep-revoked-days", type=float, default=7.0)
    prune.set_defaults(func=cmd_auth_prune)


def _engine(settings: Settings) -> Any:
    from app import db

    engine = db.engine_for(settings)
    db.upgrade_database(engine)
    return engine


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.workers > 1 and not settings.redis_url:
        # In-process events, login counters and on-demand zones would split between workers.
        print(
            "error: --workers > 1 needs REDIS_URL (events, login rate limits and the on-demand "
            "dispatcher's zones are shared through Redis)",
            file=sys.stderr,
        )
        return 2
    # Workers are separate processes: hand them the choices through the environment.
    if args.demo is not None:
        os.environ["TSUNAGU_DEMO"] = "true" if args.demo else "false"
        get_settings.cache_clear()  # the in-process worker reads the settings again
    host = args.host or settings.host
    port = args.port or settings.port
    factory = "app.main:create_app"
    if args.service in SERVICE_APPS:
        if not settings.identity_jwks_url:
            print(
                f"error: --service {args.service} needs TSUNAGU_IDENTITY_JWKS_URL",
                file=sys.stderr,
            )
            return 2
        factory = SERVICE_APPS[args.service]
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=args.workers if not args.reload else None,
        reload=args.reload,
        proxy_headers=True,
        # uvicorn's 5 s default equals httpx's keep-alive expiry: a client reusing a
        # connection as the server closes it got a reset (bench.load: a ReadError, #10).
        timeout_keep_alive=settings.keep_alive_s,
        log_config=None,
        # app.middleware logs each request, secret query values redacted; uvicorn's access
        # log would write SSE ?access_token= values to the logs.
        access_log=False,
    )
    return 0


_SECRET_SETTINGS = {"admin_password"}


def _shown(name: str, value: Any) -> str:
    """A setting's value for display: secrets masked, passwords in URLs hidden."""
    from pydantic import SecretStr

    from app.settings import mask_url_password

    if isinstance(value, SecretStr):  # every secret setting
        return "***" if value.get_secret_value() else ""
    if value is None or value == "":
        return ""
    if name in _SECRET_SETTINGS:
        return "***"
    return mask_url_password(str(value))  # scheme://user:password@host -> user:***@host


def setting_rows(settings: Settings) -> list[tuple[str, str, str, str]]:
    """``(environment variable, current value, default, meaning)`` of every setting."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = []
    for name, field in type(settings).model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None)
        var = str(aliases[0]) if aliases else f"{prefix}{name}".upper()
        default = field.get_default(call_default_factory=True)
        if isinstance(default, os.PathLike):
            default = _repo_relative(default)
        rows.append(
            (
                var,
                _shown(name, getattr(settings, name)),
                _shown(name, default),
                field.description or "",
            )
        )
    return rows


def _repo_relative(path: Any) -> str:
    from app.settings import REPO_ROOT

    try:
        return str(os.path.relpath(path, REPO_ROOT))
    except ValueError:
        return str(path)


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    rows = setting_rows(settings)
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for var, _, default, meaning in rows:
            cell = meaning.replace("|", "\\|")  # a '|' in prose would split the table cell
            print(f"| `{var}` | {f'`{default}`' if default else 'empty'} | {cell} |")
        return 0
    width = max(len(r[0]) for r in rows)
    for var, value, default, meaning in rows:
        note = "" if value == default else f"  (default: {default or 'empty'})"
        print(f"{var:<{width}}  {value or '(empty)'}{note}{'  # ' + meaning if meaning else ''}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from app.secondary import upgrade_all

    for name, revision in upgrade_all(settings):
        print(f"{name} tables at revision {revision}")
    return 0


def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    from app import db

    engine = db.engine_for(settings)
    current, head = db.current_revision(engine), db.head_revision()
    print(f"current: {current or '(empty)'}  head: {head}")
    engine.dispose()
    return 0 if current == head else 1


def _admin_password(args: argparse.Namespace) -> str | None:
    """The password of ``create-admin``: ``--password`` (with a warning), ``--password-stdin``,
    ``$TSUNAGU_ADMIN_PASSWORD``, else asked twice at a prompt; None when the two differ."""
    import getpass

    if args.password is not None:
        print(
            "warning: --password is visible to other users in process lists and stays in the "
            "shell history; prefer the prompt or --password-stdin",
            file=sys.stderr,
        )
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    from_env = os.environ.get("TSUNAGU_ADMIN_PASSWORD", "")
    if from_env:
        return from_env
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        print("error: the passwords differ", file=sys.stderr)
        return None
    return first


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    from app.errors import ApiError
    from app.identity.accounts import ensure_admin
    from app.identity.passwords import Passwords

    password = _admin_password(args)
    if not password:
        print("error: no password given", file=sys.stderr)
        return 2
    engine = _engine(settings)
    try:
        user, created = ensure_admin(
            engine,
            Passwords(fast=settings.environment == "test"),
            args.email,
            password,
            reset_password=True,
        )
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"{'created' if created else 'updated'} admin {user.email} ({user.id})")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from app.identity.keys import KeyStore

    engine = _engine(settings)
    store = KeyStore.open(engine, access_token_ttl_s=settings.access_token_ttl_s)
    new = store.rotate()
    print(f"new signing key {new.kid}; published: {len(store.jwks()['keys'])}")
    engine.dispose()
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.identity.keys import KeyStore

    engine = _engine(settings)
    store = KeyStore.open(engine, access_token_ttl_s=settings.access_token_ttl_s)
    current = store.current().kid
    for jwk in store.jwks()["keys"]:
        print(f"{jwk['kid']}{'  (current)' if jwk['kid'] == current else ''}")
    engine.dispose()
    return 0


def cmd_auth_prune(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from app.identity.keys import KeyStore
    from app.identity.sessions import SessionManager
    from app.identity.tokens import LocalTokens

    engine = _engine(settings)
    keys = KeyStore(engine, publish_retired_s=settings.access_token_ttl_s)
    tokens = LocalTokens(
        keys,
        engine,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_s=settings.access_token_ttl_s,
    )
    manager = SessionManager(tokens, refresh_ttl_s=settings.refresh_token_ttl_s)
    with Session(engine) as db:
        n_tokens, n_sessions = manager.prune(db, keep_revoked_s=int(args.keep_revoked_days * 86400))
    engine.dispose()
    print(f"deleted {n_tokens} expired refresh tokens and {n_sessions} sessions")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsunagu", description="Tsunagu Mobility-as-a-Service platform"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    return handler(args, settings or get_settings())


if __name__ == "__main__":
    raise SystemExit(main())
