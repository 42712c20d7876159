"""GTFS feed versions: upload, report, publish, rollback (operator or admin).

``POST /feeds/{feed_id}/versions`` (multipart field ``file``) answers 201 with the version:
``status`` is ``valid`` (publishable) or ``invalid`` (ERROR notices: see its report). A file that
is not a readable GTFS zip answers 422 ``feed_unreadable``; above ``max_upload_bytes`` 413.
Publishing an invalid version answers 409 ``feed_has_errors`` with the report summary, and the
served network does not change — unless the body states an ``override_reason`` and every ERROR
is one that does not break routing (``OVERRIDABLE_ERRORS``: colours, links, names); the reason
is recorded with the version. ``POST /feeds/{feed_id}/withdraw`` stops serving a feed;
``GET .../versions/{id}/preview`` is the uploaded feed's routes, stops and flex zones as GeoJSON.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.schemas import AUTHED, OpenModel, error_responses
from app.errors import ApiError
from app.feeds.dispatch_zones import sync_flex_zones
from app.feeds.network import Network, network_geojson
from app.feeds.registry import FeedRegistry, check_feed_id, check_network_name
from app.identity.deps import require_roles
from app.identity.principal import Principal
from app.services import ServicesDep

router = APIRouter(prefix="/feeds", tags=["feeds"], responses=AUTHED | error_responses(404))
log = logging.getLogger("tsunagu.feeds")
Operator = Annotated[Principal, Depends(require_roles("operator"))]
_CHUNK = 1 << 20
#: Version ids are the database's 32-bit integer keys: a larger one is a 422, never a query.
MAX_VERSION_ID = 2**31 - 1
VersionId = Annotated[int, PathParam(ge=1, le=MAX_VERSION_ID)]


class FeedSummary(OpenModel):
    feed_id: str
    network: str | None = Field(None, description="The latest version's region (network).")
    versions: int
    latest_version: int | None
    published_version: int | None


class FeedList(OpenModel):
    feeds: list[FeedSummary]


class FeedVersionOut(OpenModel):
    """One uploaded version: ``status`` uploaded | valid | invalid | published | archived."""

    id: int | None
    feed_id: str
    network: str | None = Field(
        None, description="The region (network) the feed is served in: its own id by default."
    )
    status: str
    created_at: str | None
    published_at: str | None
    uploaded_by: str | None
    filename: str
    size_bytes: int
    sha256: str
    error_count: int
    warning_count: int
    info_count: int
    failure: dict[str, Any] | None
    summary: dict[str, Any]
    counts: dict[str, Any]
    service_start: str | None
    service_end: str | None


class FeedVersionList(OpenModel):
    feed_id: str
    versions: list[FeedVersionOut]


class FeedReport(OpenModel):
    version: FeedVersionOut
    report: dict[str, Any] = Field(description="gtfs-validator `report.json` shape (`notices`).")


class PublishedVersion(OpenModel):
    feed_id: str
    version_id: int
    sha256: str
    filename: str


class NetworkSummary(OpenModel):
    """What is served in one region (``GET /api/v1/network`` has the same fields and more)."""

    network: str | None = Field(
        None, description="The region's name: feeds of one region form one network."
    )
    generation: int
    published: list[PublishedVersion]
    service_start: str | None
    service_end: str | None
    timezone: str | None
    counts: dict[str, Any]
    service_date: str | None
    feeds: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each published feed (a city) with the bbox of its stops: a client shows "
        "one at a time (`/network/geojson?feed=`, `/stops?feed=`).",
    )


class PublishOut(OpenModel):
    network: NetworkSummary


async def announce(services: Any, topic: str, data: dict[str, Any]) -> None:
    """Publish a ``feeds.*`` event for operator consoles; the bus being down never fails the
    request that already succeeded."""
    bus = getattr(services, "bus", None)
    if bus is None:
        return
    try:
        await bus.publish(topic, data)
    except Exception:
        log.warning("feeds event %s not published", topic, exc_info=True)


def registry_of(services: Any) -> FeedRegistry:
    reg = services.feeds
    if reg is None:
        raise ApiError(503, "unavailable", "The feed registry is not running.")
    return reg  # type: ignore[no-any-return]


@router.get("", response_model=FeedList)
async def list_feeds(services: ServicesDep, _: Operator) -> dict[str, Any]:
    """Every feed id with its version count and published version."""
    reg = registry_of(services)
    return {"feeds": await run_in_threadpool(reg.list_feeds)}


@router.get("/{feed_id}/versions", response_model=FeedVersionList)
async def list_versions(feed_id: str, services: ServicesDep, _: Operator) -> dict[str, Any]:
    reg = registry_of(services)
    versions = await run_in_threadpool(reg.list_versions, check_feed_id(feed_id))
    return {"feed_id": feed_id, "versions": [v.to_json() for v in versions]}


@router.post(
    "/{feed_id}/versions",
    status_code=201,
    response_model=FeedVersionOut,
    responses=error_responses(413),
)
async def upload_version(
    feed_id: str,
    services: ServicesDep,
    principal: Operator,
    file: Annotated[UploadFile, File(description="A GTFS .zip")],
    network: Annotated[
        str | None,
        Form(
            max_length=64,
            description="The region (city) the feed belongs to: feeds of one region are "
            "merged into one network, other regions are kept apart. Default: the feed's "
            "previous version's, else the feed's own id.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Upload a GTFS zip as a new version; it is validated and compiled before answering."""
    reg = registry_of(services)
    check_feed_id(feed_id)
    if network is not None and network.strip():
        network = check_network_name(network.strip())
    else:
        network = None
    limit = services.settings.max_upload_bytes
    fd, name = tempfile.mkstemp(suffix=".zip", dir=reg.store.incoming())
    tmp = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413,
                        "payload_too_large",
                        f"The upload exceeds the limit of {limit} bytes.",
                        {"limit": limit},
                    )
                await run_in_threadpool(out.write, chunk)
        if size == 0:
            raise ApiError(422, "empty_upload", "The uploaded file is empty.")
        version = await run_in_threadpool(
            reg.upload_file,
            feed_id,
            tmp,
            filename=file.filename or "upload.zip",
            uploaded_by=principal.email or principal.user_id,
            move=True,
            network=network,
        )
    finally:
        tmp.unlink(missing_ok=True)
    await announce(services, f"feeds.{feed_id}.version", version.to_json())
    return version.to_json()


@router.get("/{feed_id}/versions/{version_id}", response_model=FeedVersionOut)
async def get_version(
    feed_id: str, version_id: VersionId, services: ServicesDep, _: Operator
) -> dict[str, Any]:
    reg = registry_of(services)
    return (await run_in_threadpool(reg.get_version, feed_id, version_id)).to_json()


@router.get("/{feed_id}/versions/{version_id}/report", response_model=FeedReport)
async def get_report(
    feed_id: str, version_id: VersionId, services: ServicesDep, _: Operator
) -> dict[str, Any]:
    """The version and its validation report (gtfs-validator ``report.json`` shape)."""
    reg = registry_of(services)
    return await run_in_threadpool(reg.report, feed_id, version_id)


class PublishRequest(BaseModel):
    override_reason: str | None = Field(
        None,
        max_length=1000,
        description="Why this version is published over its ERROR notices (recorded).",
    )
    network: str | None = Field(
        None,
        max_length=64,
        description="Publish into this region (city): feeds of one region are merged into "
        "one network. Default: the region the version was uploaded for.",
    )


@router.post(
    "/{feed_id}/versions/{version_id}/publish",
    response_model=PublishOut,
    responses=error_responses(409),
)
async def publish_version(
    feed_id: str,
    version_id: VersionId,
    services: ServicesDep,
    principal: Operator,
    body: PublishRequest | None = None,
) -> dict[str, Any]:
    """Serve this version (hot swap; in-flight queries finish on the previous network).

    A version with ERROR notices that do not break routing is published only with
    ``override_reason`` (recorded in its ``summary.override``); other errors always block.
    """
    reg = registry_of(services)
    reason = body.override_reason if body is not None else None
    region = body.network.strip() or None if body is not None and body.network else None
    network = await run_in_threadpool(
        lambda: reg.publish(
            feed_id,
            version_id,
            override_reason=reason,
            by=principal.email or principal.user_id,
            network=region,
        )
    )
    await run_in_threadpool(sync_flex_zones, services)
    await announce(services, "feeds.network", network.summary())
    return {"network": network.summary()}


class RollbackRequest(BaseModel):
    version_id: int | None = Field(None, ge=1, le=MAX_VERSION_ID)


@router.post("/{feed_id}/rollback", response_model=PublishOut, responses=error_responses(409, 413))
async def rollback(
    feed_id: str,
    services: ServicesDep,
    _: Operator,
    body: RollbackRequest | None = None,
) -> dict[str, Any]:
    """Publish ``version_id``, or (no body) the version published before the current one."""
    reg = registry_of(services)
    vid = body.version_id if body is not None else None
    network = await run_in_threadpool(reg.rollback, check_feed_id(feed_id), vid)
    await run_in_threadpool(sync_flex_zones, services)
    await announce(services, "feeds.network", network.summary())
    return {"network": network.summary()}


@router.post("/{feed_id}/withdraw", response_model=PublishOut, responses=error_responses(409))
async def withdraw(feed_id: str, services: ServicesDep, _: Operator) -> dict[str, Any]:
    """Stop serving ``feed_id`` entirely (its only version too); other feeds stay served."""
    reg = registry_of(services)
    network = await run_in_threadpool(reg.withdraw, check_feed_id(feed_id))
    await run_in_threadpool(sync_flex_zones, services)
    await announce(services, "feeds.network", network.summary())
    return {"network": network.summary()}


def _preview(reg: FeedRegistry, feed_id: str, version_id: int) -> dict[str, Any]:
    v = reg.get_version(feed_id, version_id)
    path = reg.store.compiled_path(version_id)
    if not path.is_file():
        raise ApiError(
            409,
            "feed_not_compiled",
            f"Version {version_id} of {feed_id!r} could not be compiled "
            f"({v.status}): its report says why.",
        )
    fc = network_geojson(Network(timetable=reg.timetable_of(v)))
    # Flex zones (GTFS-Flex locations.geojson), drawn as the feed gives them.
    original = reg.store.original(version_id)
    if original.is_file():
        with zipfile.ZipFile(original) as z:
            names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "locations.geojson"]
            if names:
                try:
                    zones = json.loads(z.read(names[0]))
                except ValueError:
                    zones = {"features": []}
                for f in zones.get("features", []):
                    if isinstance(f, dict) and isinstance(f.get("geometry"), dict):
                        props = dict(f.get("properties") or {})
                        props["kind"] = "flex_zone"
                        props.setdefault("zone_id", str(f.get("id", "")))
                        fc["features"].append(
                            {"type": "Feature", "geometry": f["geometry"], "properties": props}
                        )
    return fc


class PreviewOut(OpenModel):
    """A GeoJSON FeatureCollection; ``properties.kind`` is route, stop or flex_zone."""

    type: str
    features: list[dict[str, Any]]


@router.get(
    "/{feed_id}/versions/{version_id}/preview",
    response_model=PreviewOut,
    responses=error_responses(409),
)
async def preview(
    feed_id: str, version_id: VersionId, services: ServicesDep, _: Operator
) -> dict[str, Any]:
    """The version's routes (lines), stops (points) and flex zones (polygons, ``kind``
    ``flex_zone``) as one GeoJSON FeatureCollection: a look before publishing."""
    reg = registry_of(services)
    return await run_in_threadpool(_preview, reg, check_feed_id(feed_id), version_id)
