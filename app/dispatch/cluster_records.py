"""The Redis records the API side and the zone owners share when the zones are scaled out.

A command goes API -> :mod:`app.dispatch.cluster_gateway` (sends it, writes the pending
booking or the cancellation claim) -> the zone's stream -> :mod:`dispatch.scale_out`'s
``ZoneWorker`` -> :mod:`app.dispatch.zone_owner` (records its outcome here, replies) -> back
to the asker, which reads the record when the reply is lost; :mod:`app.dispatch.pending_sweep`
resolves what an outage left. This module only names those records and how long they live.

Keys (under ``redis_prefix``, see :class:`RecordKeys`):

* ``dispatch.quote.<quote_id>``: zone and request of a quote (expiring);
* ``dispatch.pending``: hash of bookings not yet handled, ride id -> user and pending ride;
* ``dispatch.cancels``: hash of cancellations queued, ride id -> user, zone and time;
* ``dispatch.outcome.<corr>``: a command's outcome (expiring after :data:`OUTCOME_TTL_S`);
* ``dispatch.refused.<request_id>``: a refused booking's outcome (expiring after
  :data:`REFUSED_TTL_S`: a refusal leaves no ride in the database);
* ``dispatch.console.<digest>``: a console command's outcome under its ``Idempotency-Key``;
* ``dispatch.vehicles``: hash vehicle id -> zone id.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How long a refused booking's outcome is kept (GET /rides/{id} answers it to its rider).
REFUSED_TTL_S = 600.0
#: How long the outcome of a command is kept under its correlation id, for an asker whose
#: reply was lost. The asker reads it once, right after its reply timeout, so a short life is
#: enough; every command (vehicle positions included) leaves one, so it must stay short.
OUTCOME_TTL_S = 120.0


@dataclass(frozen=True)
class RecordKeys:
    """The full Redis key of a record: ``keys("pending")`` is ``<prefix>dispatch.pending``.

    Parameters
    ----------
    prefix
        The deployment's ``redis_prefix`` (shared by every process of one city).
    """

    prefix: str

    def __call__(self, name: str) -> str:
        return f"{self.prefix}dispatch.{name}"
