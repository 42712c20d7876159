"""``tsunagu backup`` and ``tsunagu restore``: the database and the data dir's artifacts in one
archive, portable between SQLite and PostgreSQL.

    tsunagu backup --output PATH.tar.gz
    tsunagu restore --input PATH.tar.gz [--force]

The archive is a gzip'd tar holding

* ``manifest.json``: the format, the Alembic revision of the dumped schema, the source backend,
  every table with its columns (and their portable types) and row count, and the size and
  SHA-256 of every other member;
* ``db/<table>.jsonl``: one JSON object per row, every table of ``SQLModel.metadata`` (a new
  table is included without touching this module), read in one transaction (REPEATABLE READ,
  read only, on PostgreSQL; one read transaction on SQLite) so rides, zone states and trips
  agree; UUIDs, timestamps (UTC) and dates as ISO strings, JSON columns as JSON;
* ``db/<service>/<table>.jsonl``: the tables of each secondary service (``emissions``,
  ``health``), which have their own Alembic chains and may live in databases of their own
  (``TSUNAGU_EMISSIONS_DATABASE_URL``, ``TSUNAGU_HEALTH_DATABASE_URL``); the manifest's
  ``services`` records each one's revision, backend and tables. A service sharing the app's
  database is read in the app's snapshot; one in its own database in a snapshot of that
  database. A service whose tables were never migrated is left out;
* ``data/...``: the data dir's artifacts (``feeds/<version>/`` of every dumped feed version:
  original zip, report, compiled timetable, realtime keys; ``feeds/networks/`` merged
  timetables of those versions; PEM keys kept in the data dir). Spooled GTFS-Realtime
  snapshots are not kept: they are stale by the time a backup is restored.

A restore checks every checksum and the schema revision before it changes anything, refuses a
database holding rows (or a data dir holding feed artifacts) unless ``force``, migrates the
database to the backup's revision with the app's migrations, inserts the rows in foreign-key
order in one transaction, moves PostgreSQL sequences past the restored ids, then migrates to the
newest revision and puts the artifacts in place. Each secondary service's tables are then
restored the same way into its own (configured) database, with its own chain; every check
(checksums, revisions, empty targets) covers them before anything is changed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.secondary import MigrationChain
from app.settings import Settings

FORMAT = "tsunagu-backup"
#: 2: the secondary services' tables are included (``services``); 1 (still read): app only.
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
APP_VERSION_TABLE = "alembic_version"
MANIFEST = "manifest.json"
_BATCH = 500


class BackupError(Exception):
    """A backup or restore refused or failed; the message is meant for the operator."""


# --- portable values ---------------------------------------------------------------------------
def portable_type(column: sa.Column[Any]) -> str:
    """The portable kind of ``column``: ``uuid``, ``datetime``, ``date``, ``json``, ``binary`` or
    ``scalar`` (numbers, strings, booleans: JSON holds them as they are)."""
    t = column.type
    if isinstance(t, sa.Uuid):
        return "uuid"
    if isinstance(t, sa.DateTime):
        return "datetime"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.LargeBinary):
        return "binary"
    return "scalar"


def encode_value(kind: str, value: Any) -> Any:
    """``value`` read from the database as JSON (see :func:`portable_type`)."""
    if value is None:
        return None
    if kind == "uuid":
        return str(value)
    if kind == "datetime":
        when: dt.datetime = value
        aware = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
        return aware.isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def decode_value(kind: str, value: Any) -> Any:
    """Inverse of :func:`encode_value`: the value to insert."""
    if value is None:
        return None
    if kind == "uuid":
        return uuid.UUID(value)
    if kind == "datetime":
        when = dt.datetime.fromisoformat(value)
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "binary":
        return base64.b64decode(value)
    return value


def app_metadata() -> sa.MetaData:
    """Every table of the app (importing ``app.models`` registers them all)."""
    from app.models import metadata

    return metadata


@dataclass(frozen=True)
class ServiceDatabase:
    """A secondary service's tables in the database they live in.

    Parameters
    ----------
    name
        The service (``emissions``, ``health``): its tables are archived under ``db/<name>/``.
    chain
        Its migration chain (own version table).
    metadata
        Its tables.
    engine
        Its database: the app's engine itself when they share one (then read in the app's
        snapshot).
    """

    name: str
    chain: MigrationChain
    metadata: sa.MetaData
    engine: Engine


def open_service_databases(
    settings: Settings, app_engine: Engine
) -> tuple[list[ServiceDatabase], list[Engine]]:
    """Every secondary service's database per ``settings``; the app's engine is reused for a
    service on the app's database. Returns the services and the engines opened here (to
    dispose of)."""
    from app import db
    from app.secondary import service_tables

    opened: dict[str, Engine] = {}
    services = []
    for t in service_tables(settings):
        if t.url == settings.effective_database_url:
            engine = app_engine
        else:
            if t.url not in opened:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                opened[t.url] = db.create_db_engine(t.url)
            engine = opened[t.url]
        services.append(ServiceDatabase(t.name, t.chain, t.metadata, engine))
    return services, list(opened.values())


# --- backup ------------------------------------------------------------------------------------
@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one consistent state of the database.

    PostgreSQL: a READ ONLY, REPEATABLE READ transaction (one snapshot for every query). SQLite:
    an explicit ``BEGIN`` (the driver would run each SELECT in its own implicit transaction);
    in WAL mode the first read fixes the snapshot until the end of the transaction.
    """
    if engine.dialect.name == "postgresql":
        with (
            engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as conn,
            conn.begin(),
        ):
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _revision(conn: Connection, version_table: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": version_table})
    return ctx.get_current_revision()


def _dump_tables(
    conn: Connection,
    staging: Path,
    metadata: sa.MetaData | None = None,
    folder: str = "db",
) -> list[dict[str, Any]]:
    """Write every table of ``metadata`` (the app's by default) present in the database to
    ``staging/<folder>/<table>.jsonl``; returns the manifest's table entries (in foreign-key
    order)."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    (staging / folder).mkdir(parents=True, exist_ok=True)
    tables: list[dict[str, Any]] = []
    for table in (metadata if metadata is not None else app_metadata()).sorted_tables:
        if table.name not in present:
            continue  # a table of a newer revision than the database's
        in_db = {c["name"] for c in inspector.get_columns(table.name)}
        columns = [c for c in table.columns if c.name in in_db]
        kinds = [portable_type(c) for c in columns]
        order = list(table.primary_key.columns) or columns
        query = sa.select(*columns).order_by(*order)
        member = f"{folder}/{table.name}.jsonl"
        rows = 0
        with (staging / member).open("w", encoding="utf-8") as out:
            result = conn.execution_options(yield_per=1000).execute(query)
            for row in result:
                record = {
                    c.name: encode_value(k, v) for c, k, v in zip(columns, kinds, row, strict=True)
                }
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                rows += 1
        tables.append(
            {
                "name": table.name,
                "file": member,
                "rows": rows,
                "columns": {c.name: k for c, k in zip(columns, kinds, strict=True)},
            }
        )
    return tables


def _dump_service(
    conn: Connection, staging: Path, service: ServiceDatabase
) -> dict[str, Any] | None:
    """The manifest entry of a secondary service's tables, dumped from ``conn`` (None: its
    chain never ran in that database, so there is nothing of it to keep)."""
    revision = _revision(conn, service.chain.version_table)
    if revision is None:
        return None
    tables = _dump_tables(conn, staging, service.metadata, f"db/{service.name}")
    return {
        "alembic_revision": revision,
        "source_backend": conn.dialect.name,
        "tables": tables,
    }


def _artifact_files(
    data_dir: Path, version_ids: set[int], extra: Iterable[Path] = ()
) -> list[Path]:
    """The data dir's files to keep, relative to ``data_dir``: the artifacts of the dumped
    feed versions (a version written after the snapshot is left out, so the archive never
    holds artifacts without their row), merged networks of those versions only, PEM keys at
    the top of the data dir and ``extra`` files inside it. Temporary files are skipped."""
    feeds = data_dir / "feeds"
    found: list[Path] = []

    def keep(directory: Path) -> None:
        for p in sorted(directory.rglob("*")):
            if p.is_file() and not p.is_symlink() and not _temporary(p.name):
                found.append(p.relative_to(data_dir))

    for vid in sorted(version_ids):
        if (feeds / str(vid)).is_dir():
            keep(feeds / str(vid))
    networks = feeds / "networks"
    if networks.is_dir():
        for d in sorted(networks.iterdir()):
            ids = d.name.split("-")
            if d.is_dir() and all(i.isdigit() and int(i) in version_ids for i in ids):
                keep(d)
    found.extend(p.relative_to(data_dir) for p in sorted(data_dir.glob("*.pem")) if p.is_file())
    root = data_dir.resolve()
    for p in extra:
        resolved = p.resolve()
        if resolved.is_file() and resolved.is_relative_to(root):
            rel = resolved.relative_to(root)
            if rel not in found:
                found.append(rel)
    return found


def _temporary(name: str) -> bool:
    return name.startswith("tmp") or ".tmp" in name or name.endswith(".lock")


def create_backup(
    engine: Engine,
    data_dir: Path,
    output: Path,
    *,
    extra_files: Iterable[Path] = (),
    services: Sequence[ServiceDatabase] = (),
) -> dict[str, Any]:
    """Write the archive of ``engine``'s database and ``data_dir``'s artifacts to ``output``.

    Parameters
    ----------
    engine
        The app's database (not modified).
    data_dir
        The app's data dir (``settings.data_dir``).
    output
        The archive to write (a gzip'd tar; replaced atomically if it exists).
    extra_files
        More files to keep when they lie inside ``data_dir`` (the configured signing key).
    services
        The secondary services' databases (:func:`open_service_databases`); those sharing
        ``engine`` are read in its snapshot.

    Returns
    -------
    dict
        The manifest written into the archive.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tsunagu-backup-", dir=output.parent) as tmp:
        staging = Path(tmp)
        dumped: dict[str, dict[str, Any] | None] = {}
        with snapshot(engine) as conn:
            revision = _revision(conn, APP_VERSION_TABLE)
            if revision is None:
                raise BackupError(
                    "the database has never been migrated: there is nothing to back up"
                )
            tables = _dump_tables(conn, staging)
            for service in services:
                if service.engine is engine:
                    dumped[service.name] = _dump_service(conn, staging, service)
        for service in services:
            if service.engine is not engine:
                with snapshot(service.engine) as conn:
                    dumped[service.name] = _dump_service(conn, staging, service)
        service_entries = {n: e for n, e in dumped.items() if e is not None}
        version_ids: set[int] = set()
        feed_table = next((t for t in tables if t["name"] == "feed_versions"), None)
        if feed_table is not None:
            with (staging / feed_table["file"]).open(encoding="utf-8") as f:
                version_ids = {int(json.loads(line)["id"]) for line in f}
        members: list[tuple[str, Path]] = [(t["file"], staging / t["file"]) for t in tables]
        for entry in service_entries.values():
            members += [(t["file"], staging / t["file"]) for t in entry["tables"]]
        for rel in _artifact_files(Path(data_dir), version_ids, extra_files):
            members.append((f"data/{PurePosixPath(*rel.parts)}", Path(data_dir) / rel))
        files = {
            name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for name, path in members
        }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "alembic_revision": revision,
            "source_backend": engine.dialect.name,
            "tables": tables,
            "services": service_entries,
            "files": files,
        }
        manifest_path = staging / MANIFEST
        manifest_path.write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        partial = staging / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(manifest_path, arcname=MANIFEST, recursive=False)
            for name, path in members:
                tar.add(path, arcname=name, recursive=False)
        os.replace(partial, output)
    return manifest


# --- restore -----------------------------------------------------------------------------------
def _member_name(info: tarfile.TarInfo) -> str:
    """The member's name if it is a regular file the format allows (never outside the
    extraction directory); raises :class:`BackupError` otherwise."""
    name = info.name
    path = PurePosixPath(name)
    if (
        not info.isfile()
        or path.is_absolute()
        or ".." in path.parts
        or (name != MANIFEST and path.parts[0] not in ("db", "data"))
    ):
        raise BackupError(f"the archive holds an unexpected member {name!r}: not a Tsunagu backup")
    return str(path)


def _copy_hashing(src: IO[bytes], dest: Path) -> str:
    h = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def read_archive(archive: Path, into: Path) -> dict[str, Any]:
    """Extract ``archive`` into ``into`` and check it: a manifest of this format, every member
    listed with its SHA-256, none missing, none extra. Returns the manifest."""
    import zlib

    digests: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                if info.isdir():
                    continue
                name = _member_name(info)
                src = tar.extractfile(info)
                assert src is not None  # a regular file
                digests[name] = _copy_hashing(src, into / name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"cannot read the archive {archive}: {exc}") from exc
    if MANIFEST not in digests:
        raise BackupError(f"{archive} has no {MANIFEST}: not a Tsunagu backup")
    try:
        manifest: dict[str, Any] = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"the archive's {MANIFEST} is unreadable: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a Tsunagu backup (format {manifest.get('format')!r})")
    if manifest.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise BackupError(
            f"backup format version {manifest.get('format_version')!r} is not supported "
            f"(this code reads versions {', '.join(map(str, READABLE_FORMAT_VERSIONS))})"
        )
    listed: dict[str, Any] = manifest.get("files") or {}
    del digests[MANIFEST]
    missing = sorted(set(listed) - set(digests))
    extra = sorted(set(digests) - set(listed))
    bad = sorted(n for n in listed if n in digests and digests[n] != listed[n].get("sha256"))
    if missing or extra or bad:
        problems = [
            *(f"missing: {n}" for n in missing),
            *(f"not in the manifest: {n}" for n in extra),
            *(f"checksum mismatch: {n}" for n in bad),
        ]
        raise BackupError(
            "the archive does not match its manifest (corrupted or altered); nothing was "
            "restored:\n  " + "\n  ".join(problems)
        )
    return manifest


def check_revision(revision: str | None, chain: MigrationChain | None = None) -> None:
    """Refuse a backup whose schema revision this code does not know (a newer release's): the
    app's chain, or a secondary service's ``chain``."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from app.db import alembic_config, head_revision

    what = "schema revision" if chain is None else f"{chain.version_table} revision"
    if not revision:
        raise BackupError(f"the backup records no {what}")
    config = alembic_config() if chain is None else chain.config()
    script = ScriptDirectory.from_config(config)
    try:
        known = script.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        newest = head_revision() if chain is None else chain.head_revision()
        raise BackupError(
            f"the backup's {what} {revision} is unknown to this code (newest: "
            f"{newest}): it comes from a newer Tsunagu; restore it with that version"
        )


def database_has_rows(engine: Engine, metadata: sa.MetaData | None = None) -> list[str]:
    """The tables of ``metadata`` (the app's by default) in ``engine``'s database that hold at
    least one row."""
    names = {t.name for t in (metadata if metadata is not None else app_metadata()).sorted_tables}
    with engine.connect() as conn:
        present = [n for n in sa.inspect(conn).get_table_names() if n in names]
        return [
            n
            for n in sorted(present)
            if conn.execute(sa.select(sa.literal(1)).select_from(sa.table(n)).limit(1)).first()
        ]


def _drop_tables(
    engine: Engine,
    metadata: sa.MetaData | None = None,
    version_table: str = APP_VERSION_TABLE,
) -> None:
    """Drop the tables of ``metadata`` (the app's by default) and their chain's version table
    (an empty or forced target starts from nothing, whatever revision it was at)."""
    tables = (metadata if metadata is not None else app_metadata()).sorted_tables
    names = {t.name for t in tables} | {version_table}
    reflected = sa.MetaData()
    with engine.begin() as conn:
        reflected.reflect(conn, only=lambda name, _meta: name in names)
        reflected.drop_all(conn)


def _load_rows(
    conn: Connection,
    staging: Path,
    dumped: list[dict[str, Any]],
    metadata: sa.MetaData | None = None,
) -> dict[str, int]:
    """Insert the rows of every dumped table (``dumped``: manifest entries of tables of
    ``metadata``, the app's by default) in foreign-key order; returns the counts."""
    models = metadata if metadata is not None else app_metadata()
    reflected = sa.MetaData()
    reflected.reflect(conn)
    entries = {t["name"]: t for t in dumped}
    unknown = sorted(n for n in entries if n not in reflected.tables)
    if unknown:
        raise BackupError(f"tables of the backup missing after migration: {', '.join(unknown)}")
    counts: dict[str, int] = {}
    for target in reflected.sorted_tables:
        entry = entries.get(target.name)
        if entry is None:
            continue
        # The model's table types the values as the app does (UUIDs on SQLite...).
        table = models.tables.get(target.name, target)
        kinds: dict[str, str] = entry["columns"]
        n = 0
        batch: list[dict[str, Any]] = []
        with (staging / entry["file"]).open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                batch.append(
                    {c: decode_value(kinds.get(c, "scalar"), v) for c, v in record.items()}
                )
                if len(batch) >= _BATCH:
                    conn.execute(table.insert(), batch)
                    n += len(batch)
                    batch = []
        if batch:
            conn.execute(table.insert(), batch)
            n += len(batch)
        if n != entry["rows"]:
            raise BackupError(f"{entry['file']} holds {n} rows, the manifest says {entry['rows']}")
        counts[target.name] = n
    if conn.dialect.name == "postgresql":
        _reset_sequences(conn, [reflected.tables[n] for n in counts])
    return counts


def _reset_sequences(conn: Connection, tables: list[sa.Table]) -> None:
    """Move every sequence owning an integer column past the restored values (the rows came
    with their ids, so the sequences have not moved)."""
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            ).scalar()
            if seq is None:
                continue
            top = conn.execute(sa.select(sa.func.max(column))).scalar()
            conn.execute(
                sa.text("SELECT setval(:s, :v, :called)"),
                {"s": seq, "v": top if top is not None else 1, "called": top is not None},
            )


def _data_conflicts(data_dir: Path, staging: Path, files: Iterable[str]) -> list[str]:
    """What the restore of the data dir would overwrite: feed artifacts already there, and
    other files present with another content."""
    conflicts = []
    feeds = data_dir / "feeds"
    if feeds.is_dir() and any(p.is_file() for p in feeds.rglob("*") if ".incoming" not in p.parts):
        conflicts.append(f"{feeds} holds feed artifacts")
    for name in files:
        if not name.startswith("data/") or name.startswith("data/feeds/"):
            continue
        dest = data_dir / name[len("data/") :]
        if dest.exists() and _sha256(dest) != _sha256(staging / name):
            conflicts.append(f"{dest} exists")
    return conflicts


def restore_backup(
    engine: Engine,
    data_dir: Path,
    archive: Path,
    *,
    force: bool = False,
    services: Sequence[ServiceDatabase] = (),
) -> dict[str, Any]:
    """Restore ``archive`` into ``engine``'s database and ``data_dir``.

    Parameters
    ----------
    engine
        The target database: empty (never migrated, or migrated without a row) unless ``force``.
    data_dir
        The target data dir: without feed artifacts unless ``force``.
    archive
        An archive written by :func:`create_backup`.
    force
        Replace what the database and the data dir hold (every app table is dropped and the
        feed artifacts deleted; so are the tables of every service the backup holds).
    services
        The target's secondary-service databases (:func:`open_service_databases`): each
        service in the backup is restored into its own. A service the backup does not hold
        (an archive of format 1, or a service never migrated at the source) is left as it is.

    Returns
    -------
    dict
        The archive's manifest, with ``restored`` (rows per app table) and
        ``restored_services`` (rows per table of each service).

    Raises
    ------
    BackupError
        Before anything is changed when the archive is unreadable or does not match its
        checksums, comes from a schema revision this code does not know (the app's or a
        service's), holds a service the target does not configure, or a target is not empty
        (without ``force``).
    """
    from app import db

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tsunagu-restore-", dir=data_dir) as tmp:
        staging = Path(tmp)
        manifest = read_archive(Path(archive), staging)
        revision = manifest.get("alembic_revision")
        check_revision(revision)
        dumped: dict[str, Any] = manifest.get("services") or {}
        targets = {s.name: s for s in services}
        unknown = sorted(set(dumped) - set(targets))
        if unknown:
            raise BackupError(
                f"the backup holds tables of services this code does not know: {', '.join(unknown)}"
            )
        for name, entry in dumped.items():
            check_revision(entry.get("alembic_revision"), targets[name].chain)
        if not force:
            full = database_has_rows(engine)
            for name in dumped:
                target = targets[name]
                full += [f"{t} ({name})" for t in database_has_rows(target.engine, target.metadata)]
            if full:
                raise BackupError(
                    "the target database is not empty (rows in "
                    f"{', '.join(full)}): restore into an empty database, or pass --force "
                    "to replace its contents"
                )
            conflicts = _data_conflicts(data_dir, staging, manifest["files"])
            if conflicts:
                raise BackupError(
                    "the data dir is not empty ("
                    + "; ".join(conflicts)
                    + "): restore into an empty data dir, or pass --force to replace it"
                )
        _drop_tables(engine)
        db.upgrade_database(engine, str(revision))
        with engine.begin() as conn:
            counts = _load_rows(conn, staging, manifest["tables"])
        db.upgrade_database(engine)
        service_counts: dict[str, dict[str, int]] = {}
        for name, entry in dumped.items():
            target = targets[name]
            _drop_tables(target.engine, target.metadata, target.chain.version_table)
            target.chain.upgrade(target.engine, str(entry["alembic_revision"]))
            with target.engine.begin() as conn:
                service_counts[name] = _load_rows(conn, staging, entry["tables"], target.metadata)
            target.chain.upgrade(target.engine)
        if force:
            shutil.rmtree(data_dir / "feeds", ignore_errors=True)
        for name in manifest["files"]:
            if name.startswith("data/"):
                dest = data_dir / name[len("data/") :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, dest)
    return {**manifest, "restored": counts, "restored_services": service_counts}


# --- command line ------------------------------------------------------------------------------
def register(sub: Any) -> None:
    """``tsunagu backup`` and ``tsunagu restore``."""
    backup = sub.add_parser(
        "backup", help="archive the database and the data dir's feed artifacts (one .tar.gz)"
    )
    backup.add_argument("--output", type=Path, required=True, help="the archive to write")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="restore a backup into an empty database and data dir")
    restore.add_argument("--input", type=Path, required=True, help="an archive of `backup`")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace what the database and the data dir hold (default: refuse unless empty)",
    )
    restore.set_defaults(func=cmd_restore)


def _extra_files(settings: Settings) -> list[Path]:
    return [settings.jwt_private_key_path] if settings.jwt_private_key_path else []


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from app import db

    engine = db.engine_for(settings)
    services, opened = open_service_databases(settings, engine)
    try:
        manifest = create_backup(
            engine,
            settings.data_dir,
            args.output,
            extra_files=_extra_files(settings),
            services=services,
        )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for e in opened:
            e.dispose()
        engine.dispose()
    rows = sum(t["rows"] for t in manifest["tables"])
    n_data = sum(1 for n in manifest["files"] if n.startswith("data/"))
    print(
        f"backed up {rows} rows of {len(manifest['tables'])} tables (revision "
        f"{manifest['alembic_revision']}, {engine.dialect.name}) and {n_data} data files "
        f"to {args.output}"
    )
    for name, entry in manifest["services"].items():
        n = sum(t["rows"] for t in entry["tables"])
        print(
            f"  {name}: {n} rows of {len(entry['tables'])} tables (revision "
            f"{entry['alembic_revision']}, {entry['source_backend']})"
        )
    for s in services:
        if s.name not in manifest["services"]:
            print(f"  {s.name}: never migrated in its database, nothing to back up")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from app import db

    if not args.input.is_file():
        print(f"error: no such file: {args.input}", file=sys.stderr)
        return 2
    engine = db.engine_for(settings)
    services, opened = open_service_databases(settings, engine)
    try:
        result = restore_backup(
            engine, settings.data_dir, args.input, force=args.force, services=services
        )
        revision = db.current_revision(engine)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for e in opened:
            e.dispose()
        engine.dispose()
    counts = ", ".join(f"{n} {t}" for t, n in result["restored"].items())
    n_data = sum(1 for n in result["files"] if n.startswith("data/"))
    print(
        f"restored {counts} and {n_data} data files from a backup of "
        f"{result['created_at']} (revision {result['alembic_revision']}; database now at "
        f"{revision}, {engine.dialect.name})"
    )
    for name, service_counts in result["restored_services"].items():
        rows = ", ".join(f"{n} {t}" for t, n in service_counts.items())
        print(f"  {name}: restored {rows}")
    return 0
