"""The published network: what is served, and its stops and routes as GeoJSON for the maps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.feeds import registry_of
from app.feeds.network import Network, network_geojson
from app.services import ServicesDep

router = APIRouter(prefix="/network", tags=["network"])

# GeoJSON per network generation (a network is immutable, so its GeoJSON is too).
_geojson_cache: dict[int, tuple[Network, dict[str, Any]]] = {}


@router.get("")
async def network_info(services: ServicesDep) -> dict[str, Any]:
    """Published versions, service date range, counts and the default (demo) service date."""
    reg = registry_of(services)
    net = reg.network
    info = net.summary()
    info["demo_service_date"] = info["service_date"]
    info["tile_url"] = services.settings.map_tile_url or None
    info["realtime"] = reg.realtime.status()
    return info


@router.get("/geojson")
async def network_geo(services: ServicesDep) -> JSONResponse:
    """Stops (Point) and route shapes (MultiLineString) of the published network."""
    net = registry_of(services).network
    hit = _geojson_cache.get(id(net))
    if hit is None or hit[0] is not net:
        _geojson_cache.clear()
        hit = (net, network_geojson(net))
        _geojson_cache[id(net)] = hit
    return JSONResponse(hit[1], headers={"Cache-Control": "public, max-age=60"})
