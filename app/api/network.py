"""The published network: what is served, and its stops and routes as GeoJSON for the maps."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from app.api.feeds import NetworkSummary, registry_of
from app.api.schemas import PUBLIC, OpenModel, error_responses
from app.errors import ApiError
from app.feeds.dispatch_zones import zone_network, zones_of_network
from app.feeds.network import Network, network_geojson
from app.services import ServicesDep

router = APIRouter(prefix="/network", tags=["network"], responses=PUBLIC)
GEOJSON = "application/geo+json"


class NetworkInfo(NetworkSummary):
    """The default network's (or ``?network=``'s) summary; ``published`` and ``feeds`` list
    every region's, ``networks`` each region (a city: its feeds, area and time zone), and
    ``missing`` the published feeds this process cannot serve (their files are not here)."""

    networks: list[dict[str, Any]] = Field(default_factory=list)
    missing: list[dict[str, Any]] = Field(default_factory=list)
    service_date_rule: Any = None
    calendar_mapping: Any = Field(
        None, description="Which feed date each mapped date runs (null when unmapped)."
    )
    bbox: list[float] | None = None
    demo_service_date: str | None
    tile_url: str | None
    tile_attribution: str | None = None
    realtime: dict[str, Any]


class ZoneProperties(OpenModel):
    zone_id: str
    name: str
    service_hours: list[list[float]] = Field(description="(start, end) local seconds of day.")
    min_notice_s: float
    max_notice_s: float
    network: str | None = Field(None, description="The city (network) the zone lies in.")


class ZoneFeature(OpenModel):
    type: str = "Feature"
    id: str
    geometry: dict[str, Any] = Field(description="GeoJSON MultiPolygon.")
    properties: ZoneProperties


class ZoneCollection(OpenModel):
    """A GeoJSON FeatureCollection of the on-demand zones."""

    type: str = "FeatureCollection"
    features: list[ZoneFeature]


# Serialised GeoJSON of the last network asked for (a network is immutable, so is its GeoJSON).
_geojson_cache: list[tuple[Network, bytes]] = []


def _etag(net: Network) -> str:
    versions = "-".join(f"{p.feed_id}.{p.version_id}" for p in net.versions) or "empty"
    return f'"network-{net.name}-{versions}"'


def _region(net: Network) -> dict[str, Any]:
    tt = net.timetable
    return {
        "network": net.name,
        "feeds": [p.feed_id for p in net.versions],
        "bbox": net.area,
        "timezone": tt.timezone if tt is not None else None,
        "service_date": net.service_date.isoformat() if net.service_date else None,
        "stops": tt.n_stops if tt is not None else 0,
    }


@router.get("", response_model=NetworkInfo, responses=error_responses(404))
async def network_info(
    services: ServicesDep,
    network: Annotated[
        str | None,
        Query(
            max_length=64,
            description="a network (region) or feed name; default: the "
            "default network (the only one, else the largest)",
        ),
    ] = None,
) -> dict[str, Any]:
    """Published versions, service date range, counts and the default (demo) service date."""
    reg = registry_of(services)
    nets = reg.networks
    net = reg.network_named(network) if network else reg.network
    info = net.summary()
    if not network and len(nets) > 1:  # every city's feeds, each with its own area
        info["published"] = [p for n in nets.values() for p in n.summary()["published"]]
        info["feeds"] = [f for n in nets.values() for f in n.summary()["feeds"]]
    info["networks"] = [_region(n) for _, n in sorted(nets.items())]
    info["missing"] = reg.missing
    info["demo_service_date"] = info["service_date"]
    info["tile_url"] = services.settings.map_tile_url or None
    info["tile_attribution"] = services.settings.map_tile_attribution or None
    info["realtime"] = reg.realtime.status()
    return info


@router.get("/zones", response_model=ZoneCollection, responses=error_responses(404))
async def on_demand_zones(
    services: ServicesDep,
    network: Annotated[
        str | None,
        Query(max_length=64, description="only the zones lying in this city's network"),
    ] = None,
) -> dict[str, Any]:
    """The on-demand zones residents can ride in, as a GeoJSON FeatureCollection (name, service
    hours in local seconds of day, booking notice, the city it lies in); no vehicle or ride is
    shown."""
    gateway = getattr(services, "dispatch", None)
    zones = [] if gateway is None else await gateway.zones()
    reg = registry_of(services)
    if network:
        zones = zones_of_network(reg, zones, reg.network_named(network))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": z.zone_id,
                "geometry": {"type": "MultiPolygon", "coordinates": z.polygons},
                "properties": {
                    "zone_id": z.zone_id,
                    "name": z.name,
                    "service_hours": z.service_hours,
                    "min_notice_s": z.min_notice_s,
                    "max_notice_s": z.max_notice_s,
                    "network": zone_network(reg, z),
                },
            }
            for z in zones
        ],
    }


@router.get(
    "/geojson",
    response_class=Response,
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection: stops (Point) and route shapes "
            "(MultiLineString).",
            "content": {
                GEOJSON: {
                    "schema": {
                        "type": "object",
                        "required": ["type", "features"],
                        "properties": {
                            "type": {"type": "string", "enum": ["FeatureCollection"]},
                            "features": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                }
            },
        },
        304: {"description": "Not modified since the ETag sent in If-None-Match."},
        **error_responses(404),
    },
)
async def network_geo(
    services: ServicesDep,
    if_none_match: Annotated[str | None, Header()] = None,
    feed: Annotated[
        str | None,
        Query(
            max_length=64,
            description="one city's stops and routes: a network (region) name, or one feed "
            "of it; default: the default network",
        ),
    ] = None,
) -> Response:
    """Stops (Point) and route shapes (MultiLineString) of the published network.

    The ETag names the published versions, so a map that has it gets 304 until a publish.
    """
    reg = registry_of(services)
    if feed is None:
        net = reg.network
    else:
        try:
            net = reg.network_named(feed)
        except ApiError:
            raise ApiError(404, "unknown_feed", f"No published feed {feed!r}.") from None
        if feed == net.name:
            feed = None  # the whole region
    etag = _etag(net) if feed is None else f'{_etag(net)[:-1]}-{feed}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    if feed is not None:
        body = await run_in_threadpool(
            lambda: json.dumps(network_geojson(net, feed), ensure_ascii=False).encode("utf-8")
        )
        return Response(body, media_type=GEOJSON, headers=headers)
    hit = next((b for n, b in _geojson_cache if n is net), None)
    if hit is None:
        body = await run_in_threadpool(
            lambda: json.dumps(network_geojson(net), ensure_ascii=False).encode("utf-8")
        )
        # One per region (the few last asked for): each city's map is served from memory.
        _geojson_cache[:] = [(net, body), *_geojson_cache[:7]]
    else:
        body = hit
    return Response(body, media_type=GEOJSON, headers=headers)
