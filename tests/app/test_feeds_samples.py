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


def zip_bomb(tmp: Path) -> Path:
    """A 40 MB stop_times.txt of zeros deflated to ~40 KB (ratio beyond the reader's limit)."""
    p = tmp / "bomb.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("stop_times.txt", b"0" * (40 * 1024**2))
    return p


def too_many_entries(tmp: Path) -> Path:
    """A thousand tiny members: over the reader's entry limit (500)."""
    p = tmp / "many.zip"
    with zipfile.ZipFile(p, "w") as z:
        for i in range(1000):
            z.writestr(f"f{i}.txt", "a\n")
    return p


def broken_csv_rows(gtfs_dir: Path, tmp: Path) -> Path:
    """google_sample with a routes.txt row of too many fields (csv_parsing_failed, an ERROR)."""
    return rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp / "broken_rows.zip",
        replace={"routes.txt": ("AB,DTA,10,", "AB,DTA,10,extra,fields,here,")},
    )


def undecodable_stops(gtfs_dir: Path, tmp: Path) -> Path:
    """google_sample whose stops.txt is bytes no known encoding reads."""
    return rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp / "bad_encoding.zip",
        drop=("stops.txt",),
        extra={"stops.txt": b"stop_id,stop_name\n\x81\x7f\xff\xfe,\x80\x81\n"},
    )


def cp932_stops(gtfs_dir: Path, tmp: Path) -> Path:
    """google_sample with stops.txt re-encoded as Shift_JIS (CP932) and a Japanese name."""
    with zipfile.ZipFile(gtfs_dir / "google_sample.zip") as z:
        text = z.read("stops.txt").decode("utf-8-sig")
    assert "Furnace Creek Resort (Demo)" in text
    text = text.replace("Furnace Creek Resort (Demo)", "室蘭駅前")
    return rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp / "cp932.zip",
        drop=("stops.txt",),
        extra={"stops.txt": text.encode("cp932")},
    )
