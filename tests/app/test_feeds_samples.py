"""GTFS zips for the feed tests, derived in code from the real shared feeds (helpers, no tests)."""

from __future__ import annotations

import zipfile
from pathlib import Path

V2_STOP_NAME = "Furnace Creek Resort v2"


def rewrite_zip(
    src: Path,
    dest: Path,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, tuple[str, str]] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Copy ``src`` to ``dest`` without ``drop`` members, with text replaced, plus ``extra``."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if info.filename in replace:
                old, new = replace[info.filename]
                text = data.decode("utf-8-sig")
                assert old in text, f"{old!r} not in {info.filename}"
                data = text.replace(old, new).encode("utf-8")
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dest


def sample_v2(gtfs_dir: Path, tmp: Path) -> Path:
    """google_sample with one stop renamed: a second, distinguishable valid version."""
    return rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp / "google_sample_v2.zip",
        replace={"stops.txt": ("Furnace Creek Resort (Demo)", V2_STOP_NAME)},
    )


def with_errors(gtfs_dir: Path, tmp: Path) -> Path:
    """google_sample whose stop_times name a stop that does not exist (ERROR notices)."""
    return rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp / "google_sample_errors.zip",
        replace={"stop_times.txt": ("STBA,", "NO_SUCH_STOP,")},
    )


def without_stops(gtfs_dir: Path, tmp: Path) -> Path:
    return rewrite_zip(gtfs_dir / "google_sample.zip", tmp / "no_stops.zip", drop=("stops.txt",))


def traversal_zip(tmp: Path) -> Path:
    p = tmp / "evil.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("agency.txt", "agency_id,agency_name,agency_url,agency_timezone\n")
        z.writestr("../../evil.txt", "owned")
    return p


def not_a_zip(tmp: Path) -> Path:
    p = tmp / "notes.zip"
    p.write_bytes(b"this is not a zip file\n" * 10)
    return p
