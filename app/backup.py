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
* ``data/...``: the data dir's artifacts (``feeds/<version>/`` of every dumped feed version:
  original zip, report, compiled timetable, realtime keys; ``feeds/networks/`` merged
  timetables of those versions; PEM keys kept in the data dir). Spooled GTFS-Realtime
  snapshots are not kept: they are stale by the time a backup is restored.

A restore checks every checksum and the schema revision before it changes anything, refuses a
database holding rows (or a data dir holding feed artifacts) unless ``force``, migrates the
database to the backup's revision with the app's migrations, inserts the rows in foreign-key
order in one transaction, moves PostgreSQL sequences past the restored ids, then migrates to the
newest revision and puts the artifacts in place.
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.settings import Settings

FORMAT = "tsunagu-backup"
FORMAT_VERSION = 1
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


def _dump_tables(conn: Connection, staging: Path) -> tuple[str, list[dict[str, Any]]]:
    """Write every app table present in the database to ``staging/db/<table>.jsonl``; returns
    the schema revision and the manifest's table entries (in foreign-key order)."""
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None:
        raise BackupError("the database has never been migrated: there is nothing to back up")
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    (staging / "db").mkdir(parents=True, exist_ok=True)
    tables: list[dict[str, Any]] = []
    for table in app_metadata().sorted_tables:
        if table.name not in present:
            continue  # a table of a newer revision than the database's
        in_db = {c["name"] for c in inspector.get_columns(table.name)}
        columns = [c for c in table.columns if c.name in in_db]
        kinds = [portable_type(c) for c in columns]
        order = list(table.primary_key.columns) or columns
        query = sa.select(*columns).order_by(*order)
        member = f"db/{table.name}.jsonl"
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
    return revision, tables


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
    engine: Engine, data_dir: Path, output: Path, *, extra_files: Iterable[Path] = ()
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

    Returns
    -------
    dict
        The manifest written into the archive.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tsunagu-backup-", dir=output.parent) as tmp:
        staging = Path(tmp)
        with snapshot(engine) as conn:
            revision, tables = _dump_tables(conn, staging)
        version_ids: set[int] = set()
        feed_table = next((t for t in tables if t["name"] == "feed_versions"), None)
        if feed_table is not None:
            with (staging / feed_table["file"]).open(encoding="utf-8") as f:
                version_ids = {int(json.loads(line)["id"]) for line in f}
        members: list[tuple[str, Path]] = [(t["file"], staging / t["file"]) for t in tables]
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
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {manifest.get('format_version')!r} is not supported "
            f"(this code reads version {FORMAT_VERSION})"
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


def check_revision(revision: str | None) -> None:
    """Refuse a backup whose schema revision this code does not know (a newer release's)."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from app.db import alembic_config, head_revision

    if not revision:
        raise BackupError("the backup records no schema revision")
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise BackupError(
            f"the backup's schema revision {revision} is unknown to this code (newest: "
            f"{head_revision()}): it comes from a newer Tsunagu; restore it with that version"
        )


def database_has_rows(engine: Engine) -> list[str]:
    """The app tables of ``engine``'s database that hold at least one row."""
    names = {t.name for t in app_metadata().sorted_tables}
    with engine.connect() as conn:
        present = [n for n in sa.inspect(conn).get_table_names() if n in names]
        return [
            n
            for n in sorted(present)
            if conn.execute(sa.select(sa.literal(1)).select_from(sa.table(n)).limit(1)).first()
        ]


def _drop_app_tables(engine: Engine) -> None:
    """Drop the app's tables and Alembic's version table (an empty or forced target starts
    from nothing, whatever revision it was at)."""
    names = {t.name for t in app_metadata().sorted_tables} | {"alembic_version"}
    reflected = sa.MetaData()
    with engine.begin() as conn:
        reflected.reflect(conn, only=lambda name, _meta: name in names)
        reflected.drop_all(conn)


def _load_rows(conn: Connection, staging: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Insert every dumped table's rows (foreign-key order); returns the counts."""
    models = app_metadata()
    reflected = sa.MetaData()
    reflected.reflect(conn)
    entries = {t["name"]: t for t in manifest["tables"]}
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
    engine: Engine, data_dir: Path, archive: Path, *, force: bool = False
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
        feed artifacts deleted).

    Returns
    -------
    dict
        The archive's manifest, with ``restored`` (rows per table).

    Raises
    ------
    BackupError
        Before anything is changed when the archive is unreadable or does not match its
        checksums, comes from a schema revision this code does not know, or the target is
        not empty (without ``force``).
    """
    from app import db

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tsunagu-restore-", dir=data_dir) as tmp:
        staging = Path(tmp)
        manifest = read_archive(Path(archive), staging)
        revision = manifest.get("alembic_revision")
        check_revision(revision)
        if not force:
            full = database_has_rows(engine)
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
        _drop_app_tables(engine)
        db.upgrade_database(engine, str(revision))
        with engine.begin() as conn:
            counts = _load_rows(conn, staging, manifest)
        db.upgrade_database(engine)
        if force:
            shutil.rmtree(data_dir / "feeds", ignore_errors=True)
        for name in manifest["files"]:
            if name.startswith("data/"):
                dest = data_dir / name[len("data/") :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, dest)
    return {**manifest, "restored": counts}


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
    try:
        manifest = create_backup(
            engine, settings.data_dir, args.output, extra_files=_extra_files(settings)
        )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    rows = sum(t["rows"] for t in manifest["tables"])
    n_data = sum(1 for n in manifest["files"] if n.startswith("data/"))
    print(
        f"backed up {rows} rows of {len(manifest['tables'])} tables (revision "
        f"{manifest['alembic_revision']}, {engine.dialect.name}) and {n_data} data files "
        f"to {args.output}"
    )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from app import db

    if not args.input.is_file():
        print(f"error: no such file: {args.input}", file=sys.stderr)
        return 2
    engine = db.engine_for(settings)
    try:
        result = restore_backup(engine, settings.data_dir, args.input, force=args.force)
        revision = db.current_revision(engine)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    counts = ", ".join(f"{n} {t}" for t, n in result["restored"].items())
    n_data = sum(1 for n in result["files"] if n.startswith("data/"))
    print(
        f"restored {counts} and {n_data} data files from a backup of "
        f"{result['created_at']} (revision {result['alembic_revision']}; database now at "
        f"{revision}, {engine.dialect.name})"
    )
    return 0
