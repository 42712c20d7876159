"""``tsunagu feed ...``: import, validate, publish, roll back and list GTFS feeds.

    tsunagu feed import PATH --feed-id ID [--publish]
    tsunagu feed validate PATH [--json OUT]
    tsunagu feed publish ID VERSION
    tsunagu feed rollback ID [VERSION]
    tsunagu feed list
    tsunagu feed report ID VERSION [--json OUT]
    tsunagu feed realtime PB_FILE [--source NAME]

Commands that change the database act on the configured database and data dir; running
servers on them adopt a publish or rollback within ``feeds_sync_interval_s`` (hot swap).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.errors import ApiError
from app.settings import Settings


def register(sub: Any) -> None:
    feed = sub.add_parser("feed", help="GTFS feed versions")
    fs = feed.add_subparsers(dest="feed_command", required=True)
    imp = fs.add_parser("import", help="upload a GTFS zip as a new version (validate + compile)")
    imp.add_argument("path", type=Path)
    imp.add_argument("--feed-id", required=True)
    imp.add_argument("--publish", action="store_true", help="publish it when valid")
    imp.add_argument(
        "--network",
        default=None,
        help="the city (region) the feed belongs to: feeds of one city are merged into one "
        "network (default: the feed's previous version's, else its own id)",
    )
    imp.set_defaults(func=cmd_import)
    val = fs.add_parser("validate", help="validate a GTFS zip or folder (nothing stored)")
    val.add_argument("path", type=Path)
    val.add_argument("--json", type=Path, default=None, help="write report.json here")
    val.set_defaults(func=cmd_validate)
    pub = fs.add_parser("publish", help="publish a version")
    pub.add_argument("feed_id")
    pub.add_argument("version", type=int)
    pub.add_argument("--network", default=None, help="publish into this city (region)")
    pub.set_defaults(func=cmd_publish)
    rb = fs.add_parser("rollback", help="publish the previous (or the given) version")
    rb.add_argument("feed_id")
    rb.add_argument("version", type=int, nargs="?", default=None)
    rb.set_defaults(func=cmd_rollback)
    fs.add_parser("list", help="feeds and their versions").set_defaults(func=cmd_list)
    rep = fs.add_parser("report", help="a stored version's validation report")
    rep.add_argument("feed_id")
    rep.add_argument("version", type=int)
    rep.add_argument("--json", type=Path, default=None, help="write report.json here")
    rep.set_defaults(func=cmd_report)
    rt = fs.add_parser(
        "realtime", help="ingest a GTFS-RT FeedMessage file (servers adopt it, like a POST)"
    )
    rt.add_argument("path", type=Path)
    rt.add_argument("--source", default="default", help="producer name (replaces its last feed)")
    rt.set_defaults(func=cmd_realtime)


def _registry(settings: Settings) -> Any:
    from app import db
    from app.feeds.registry import FeedRegistry

    engine = db.engine_for(settings)
    db.upgrade_database(engine)
    reg = FeedRegistry(engine, settings.data_dir, calendar_mapping=settings.calendar_mapping)
    reg.load_published()
    return reg


def _fail(exc: ApiError) -> int:
    print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
    if exc.details:
        print(json.dumps(exc.details, ensure_ascii=False, indent=2, default=str), file=sys.stderr)
    return 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    if not args.path.is_file():
        print(f"error: no such file: {args.path}", file=sys.stderr)
        return 2
    reg = _registry(settings)
    try:
        v = reg.upload_file(args.feed_id, args.path, uploaded_by="cli", network=args.network)
        print(
            f"{v.feed_id} version {v.id}: {v.status} "
            f"({v.error_count} errors, {v.warning_count} warnings)"
        )
        if v.status != "valid":
            return 1
        if args.publish:
            assert v.id is not None
            net = reg.publish(v.feed_id, v.id)
            print(
                f"published in network {net.name}; generation {net.generation}, "
                f"service date {net.service_date}"
            )
    except ApiError as exc:
        return _fail(exc)
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    import gtfs
    from gtfs.errors import FeedError

    try:
        feed = gtfs.read_feed(args.path)
    except FeedError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    report = gtfs.validate_feed(feed)
    data = report.to_json()
    if args.json is not None:
        args.json.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    counts = data["summary"]["counts"]
    print(f"{args.path}: {counts['errors']} errors, {counts['warnings']} warnings")
    for n in data["notices"]:
        print(f"  {n['severity']:<7} {n['code']} x{n['totalNotices']}")
    return 1 if report.has_errors else 0


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    try:
        net = reg.publish(args.feed_id, args.version, network=args.network)
    except ApiError as exc:
        return _fail(exc)
    print(
        f"published {args.feed_id} version {args.version} in network {net.name}; "
        f"service date {net.service_date}"
    )
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    try:
        net = reg.rollback(args.feed_id, args.version)
    except ApiError as exc:
        return _fail(exc)
    now = next(v for v in net.versions if v.feed_id == args.feed_id)
    print(f"rolled back {args.feed_id} to version {now.version_id}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    for f in reg.list_feeds():
        print(
            f"{f['feed_id']} (network {f['network']}): published version {f['published_version']}"
        )
        for v in reg.list_versions(f["feed_id"]):
            print(
                f"  v{v.id:<4} {v.status:<9} errors={v.error_count:<4} "
                f"warnings={v.warning_count:<4} {v.filename} {v.created_at:%Y-%m-%d %H:%M}"
            )
    return 0


def _print_report(data: dict[str, Any]) -> None:
    counts = data["summary"].get("counts", {})
    print(f"{counts.get('errors', 0)} errors, {counts.get('warnings', 0)} warnings")
    for n in data["notices"]:
        print(f"  {n['severity']:<7} {n['code']} x{n['totalNotices']}")


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    reg = _registry(settings)
    try:
        out = reg.report(args.feed_id, args.version)
    except ApiError as exc:
        return _fail(exc)
    v, data = out["version"], out["report"]
    if args.json is not None:
        args.json.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{v['feed_id']} version {v['id']} ({v['status']}, {v['filename']}): ", end="")
    _print_report(data)
    return 0


def cmd_realtime(args: argparse.Namespace, settings: Settings) -> int:
    import re

    from gtfs.realtime import RealtimeParseError

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.source) or args.source.strip(".") == "":
        print(f"error: invalid_source: {args.source!r}", file=sys.stderr)
        return 2
    if not args.path.is_file():
        print(f"error: no such file: {args.path}", file=sys.stderr)
        return 2
    reg = _registry(settings)
    try:
        # Spooled under the data dir: every server picks it up on its next sync.
        feed = reg.realtime.ingest_bytes(args.path.read_bytes(), args.source)
    except RealtimeParseError as exc:
        print(f"error: invalid_gtfs_rt: {exc}", file=sys.stderr)
        return 1
    print(
        f"ingested {args.path.name} as source {args.source!r}: "
        f"{len(feed.trip_updates)} trip updates, {len(feed.vehicles)} vehicles, "
        f"{len(feed.alerts)} alerts"
    )
    state = reg.realtime_state()
    if state is not None:
        print(f"overlay on {state.service_date}: {json.dumps(state.summary(), default=str)}")
    return 0
