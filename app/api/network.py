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
from app.feeds.network import Network, network_geojson
from app.services import ServicesDep

router = APIRouter(prefix="/network", tags=["network"], responses=PUBLIC)
GEOJSON = "application/geo+json"


class NetworkInfo(NetworkSummary):
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
    return f'"network-{versions}"'


@router.get("", response_model=NetworkInfo)
async def network_info(services: ServicesDep) -> dict[str, Any]:
    """Published versions, service date range, counts and the default (demo) service date."""
    reg = registry_of(services)
    net = reg.network
    info = net.summary()
    info["demo_service_date"] = info["service_date"]
    info["tile_url"] = services.settings.map_tile_url or None
    info["tile_attribution"] = services.settings.map_tile_attribution or None
    info["realtime"] = reg.realtime.status()
    return info


@router.get("/zones", response_model=ZoneCollection)
async def on_demand_zones(services: ServicesDep) -> dict[str, Any]:
    """The on-demand zones residents can ride in, as a GeoJSON FeatureCollection (name, service
    hours in local seconds of day, booking notice); no vehicle or ride is shown."""
    gateway = getattr(services, "dispatch", None)
    zones = [] if gateway is None else await gateway.zones()
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
        str | None, Query(max_length=64, description="one feed's (city's) stops and routes")
    ] = None,
) -> Response:
    """Stops (Point) and route shapes (MultiLineString) of the published network.

    The ETag names the published versions, so a map that has it gets 304 until a publish.
    """
    net = registry_of(services).network
    etag = _etag(net) if feed is None else f'{_etag(net)[:-1]}-{feed}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    if feed is not None:
        if feed not in {v.feed_id for v in net.versions}:
            raise ApiError(404, "unknown_feed", f"No published feed {feed!r}.")
        body = await run_in_threadpool(
            lambda: json.dumps(network_geojson(net, feed), ensure_ascii=False).encode("utf-8")
        )
        return Response(body, media_type=GEOJSON, headers=headers)
    hit = _geojson_cache[0] if _geojson_cache else None
    if hit is None or hit[0] is not net:
        body = await run_in_threadpool(
            lambda: json.dumps(network_geojson(net), ensure_ascii=False).encode("utf-8")
        )
        _geojson_cache[:] = [(net, body)]
    else:
        body = hit[1]
    return Response(body, media_type=GEOJSON, headers=headers)
