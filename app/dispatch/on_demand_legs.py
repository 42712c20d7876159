"""The planner's on-demand provider in the app: :class:`dispatch.planner_legs.DispatcherLegs`
over this process's dispatcher, asking each zone's owner for quotes when scaled out.

One :class:`FleetOnDemand` is made per ``/plan`` request with the zone catalog read on the
event loop; the planner then runs in a worker thread, and quotes through zone owners (the
gateway's ``quote``, async) are sent back to the loop and awaited together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.errors import ApiError
from dispatch.planner_legs import DispatcherLegs, RawAnswer
from dispatch.request import RideRequest
from dispatch.zone import ServiceZone

CLUSTER_QUOTE_TIMEOUT_S = 10.0
"""Bound on one plan's quotes through zone owners (each is bounded by the gateway's reply
timeout already; this only keeps a worker thread from waiting forever)."""


class FleetOnDemand(DispatcherLegs):
    """On-demand legs from the app's fleet, in one process or scaled out.

    Parameters
    ----------
    services
        The app's services (``dispatch``: the gateway, ``dispatcher``: this process's
        dispatcher).
    zones
        The zone catalog (``await services.dispatch.zones()``).
    tt
        The published timetable the plan runs on.
    cache
        A dict that lives as long as the network (``NetworkPlanner.extra``).
    user_id
        The rider the quotes are for.
    loop
        The event loop the gateway runs on.
    """

    def __init__(
        self,
        services: Any,
        zones: Sequence[ServiceZone],
        tt: Any,
        cache: dict[str, Any],
        user_id: str = "",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from app.dispatch.local_gateway import LocalGateway
        from app.emissions.factors import planner_factors

        super().__init__(
            services.dispatcher,
            zones,
            tt.stop_lat,
            tt.stop_lon,
            tt.timezone,
            cache,
            user_id,
            now=float(services.dispatch.now()),
            co2=planner_factors(services.settings),
        )
        self.gateway = services.dispatch
        self.loop = loop
        self.local = isinstance(services.dispatch, LocalGateway)

    def _quote_all(self, reqs: list[RideRequest], now: float) -> list[RawAnswer]:
        if self.local:
            return super()._quote_all(reqs, now)
        assert self.loop is not None, "scaled out, quotes need the event loop"
        gateway = self.gateway

        async def every() -> list[RawAnswer]:
            # One round trip to each zone's owner for all the rides (gateway.quotes).
            answers = await gateway.quotes(reqs)
            return [(a.code, a.message) if isinstance(a, ApiError) else dict(a) for a in answers]

        fut = asyncio.run_coroutine_threadsafe(every(), self.loop)
        return list(fut.result(CLUSTER_QUOTE_TIMEOUT_S))
