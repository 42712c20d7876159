"""Read a GTFS feed (zip or folder) safely into string DataFrames.

Safety is checked on the zip directory before anything is decompressed (cheap paths fail
first): entry names (no ``..`` / absolute paths), entry count, declared total size and per-entry
compression ratio (zip bombs); reads are then capped so a lying header cannot blow memory.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import AnyStr

import numpy as np
import pandas as pd

from gtfs.errors import FeedError
from gtfs.feed import ColumnCodes, Feed
from gtfs.notices import NoticeSink
from gtfs.schema import GEOJSON_FILES, SPECS
from gtfs.text_kernels import (
    csv_column_codes,
    csv_field_starts,
    join_slices,
    needs_strip,
    newline_mask,
)

# Whitespace next to a delimiter or a line end: the only way a value can need stripping
# (substring tests are memchr-fast; a regex over the whole text is not).
_EDGE_SPACES = (" ,", ", ", " \n", "\n ", " \r", "\r ", "\t", "\u3000", "\ufeff")
_EDGE_SPACES_UTF8 = tuple(e.encode() for e in _EDGE_SPACES)
# What str.strip() removes that bytes.strip() keeps, besides non-ASCII: a file of only these is
# blank either way.
_NOT_ASCII_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c\x1c-\x1f]")


def _may_need_strip(text: str | bytes) -> bool:
    """Whether some value of the CSV text (a ``str``, or UTF-8 bytes) may start or end with a
    blank; ``False`` guarantees none does."""
    if isinstance(text, bytes):
        return _edge_spaces_in(text, _EDGE_SPACES_UTF8, b" ")
    return _edge_spaces_in(text, _EDGE_SPACES, " ")


def _edge_spaces_in(text: AnyStr, edges: tuple[AnyStr, ...], space: AnyStr) -> bool:
    # One-character tests first: they are memchr scans, while each two-character one walks the
    # text again more slowly; without a plain space none of those can match. In UTF-8 bytes
    # U+3000 and the BOM are three bytes each: a memchr for their lead byte (0xE3, 0xEF) first,
    # as a multi-byte search costs ~10x (in a str a character wider than the text's own
    # is refused at once).
    for e, c in zip(edges, _EDGE_SPACES, strict=True):
        if len(c) == 1 and (len(e) == 1 or e[:1] in text) and e in text:
            return True
    if space not in text:
        return False
    if text.startswith(space) or text.endswith(space):
        return True
    if isinstance(text, bytes):
        return _space_at_edge(text)
    return any(e in text for e in edges)


def _space_at_edge(data: bytes) -> bool:
    """Whether a space stands before a comma or line end, or after a comma or line end (the
    two-byte needles of ``_EDGE_SPACES``) in one vectorised pass: ``bytes.find`` of a
    two-byte needle runs at ~150 MB/s, 1 ms of a city's trips.txt per needle."""
    a = np.frombuffer(data, np.uint8)
    sp = a == 32
    nxt, prv = a[1:], a[:-1]
    before = sp[:-1] & ((nxt == 44) | (nxt == 10) | (nxt == 13))
    after = sp[1:] & ((prv == 44) | (prv == 10) | (prv == 13))
    return bool(before.any() or after.any())


def _count(text: str | bytes, char: str) -> int:
    """Occurrences of the ASCII ``char`` in the text or its UTF-8 bytes."""
    return text.count(char.encode()) if isinstance(text, bytes) else text.count(char)


def _is_blank(text: str | bytes) -> bool:
    """Empty or whitespace only (``str.strip`` semantics, also for UTF-8 bytes)."""
    if isinstance(text, str):
        return not text.strip()
    # Stops at the first character that is not an ASCII blank: no copy of a large file.
    m = _NOT_ASCII_BLANK.search(text)
    if m is None:
        return True
    return text[m.start()] >= 0x80 and not text.decode("utf-8").strip()


@dataclass(frozen=True)
class ReadLimits:
    """Limits against hostile uploads (defaults fit any city feed, not a zip bomb)."""

    max_entries: int = 500
    max_total_bytes: int = 2 * 1024**3  # uncompressed
    max_file_bytes: int = 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed, per entry (text compresses ~5-20x)
    ratio_min_bytes: int = 1024**2  # tiny entries may have silly ratios harmlessly


_IGNORED_PREFIXES = ("__MACOSX/",)
_ONE_PASS_MAX_BYTES = 64 * 1024**2
"""Files up to this size are tokenized by pandas in one pass (``low_memory=False``)."""


def _check_entry_name(name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in p.parts:
        raise FeedError(
            "unsafe_zip_entry", f"zip entry {name!r} escapes the archive", {"entry": name}
        )


def _zip_members(zf: zipfile.ZipFile, limits: ReadLimits) -> dict[str, zipfile.ZipInfo]:
    """Map ``file.txt`` -> entry, after every safety check; handles one top-level folder."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise FeedError(
            "too_many_zip_entries",
            f"zip has {len(infos)} entries (limit {limits.max_entries})",
            {"entries": len(infos), "limit": limits.max_entries},
        )
    total = 0
    for info in infos:
        _check_entry_name(info.filename)
        total += info.file_size
        if info.file_size > limits.max_file_bytes:
            raise FeedError(
                "zip_entry_too_large",
                f"{info.filename}: {info.file_size} bytes uncompressed (limit {limits.max_file_bytes})",
                {"entry": info.filename, "bytes": info.file_size},
            )
        if info.file_size >= limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise FeedError(
                "zip_bomb",
                f"{info.filename}: compression ratio above {limits.max_ratio:g}",
                {"entry": info.filename, "bytes": info.file_size, "compressed": info.compress_size},
            )
    if total > limits.max_total_bytes:
        raise FeedError(
            "zip_too_large",
            f"zip expands to {total} bytes (limit {limits.max_total_bytes})",
            {"bytes": total, "limit": limits.max_total_bytes},
        )
    files = [
        i
        for i in infos
        if not i.is_dir()
        and not i.filename.startswith(_IGNORED_PREFIXES)
        and not PurePosixPath(i.filename).name.startswith(".")
    ]
    top = [i for i in files if "/" not in i.filename.strip("/")]
    if not any(i.filename.endswith(".txt") for i in top):
        # Feeds zipped with their folder: accept one common top folder.
        folders = {i.filename.split("/", 1)[0] for i in files if "/" in i.filename}
        if len(folders) == 1:
            prefix = folders.pop() + "/"
            top = [
                i
                for i in files
                if i.filename.startswith(prefix) and "/" not in i.filename[len(prefix) :]
            ]
    return {PurePosixPath(i.filename).name: i for i in top}


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ReadLimits) -> bytes:
    cap = min(info.file_size, limits.max_file_bytes)
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise FeedError(
            "zip_bomb",
            f"{info.filename}: more data than its header declares",
            {"entry": info.filename},
        )
    return data


def utf8_body(data: bytes) -> bytes | None:
    """``data`` without its BOM when it is UTF-8 text (the encoding :func:`decode_text` tries
    first), else ``None``. pandas parses these bytes as they are, ~1.5x faster than the decoded
    text, which it would encode back to UTF-8 first."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if body.isascii():  # word-at-a-time: ~30x faster than decoding to check
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return body


def decode_text(data: bytes, filename: str, sink: NoticeSink) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else CP932 (Shift_JIS, Windows tools)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FeedError(
                "invalid_encoding", f"{filename}: broken UTF-16", {"filename": filename}
            ) from exc
        sink.add("unusual_encoding", 1, [{"filename": filename, "encoding": "utf-16"}])
        return text
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise FeedError(
            "invalid_encoding",
            f"{filename} is neither UTF-8 nor Shift_JIS/CP932 (byte {exc.start})",
            {"filename": filename, "position": exc.start},
        ) from exc
    sink.add("unusual_encoding", 1, [{"filename": filename, "encoding": "cp932"}])
    return text


def _dedupe(names: list[str]) -> list[str]:
    """Repeated column names as pandas renames them (``a``, ``a.1``, ...)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


_STR = pd.StringDtype(na_value=np.nan)
"""The dtype ``read_csv(dtype=str)`` gives every column (pandas' default string dtype)."""


def plain_csv(body: bytes) -> tuple[pd.DataFrame, dict[str, ColumnCodes]] | None:
    """The frame :func:`parse_csv` gives for ``body`` (UTF-8 bytes, as :func:`utf8_body`
    returns them) when the file is plain CSV, else ``None``; with the codes of every column
    whose values repeat (at most half of them distinct).

    Plain: no quote, carriage return, NUL or blank next to a delimiter (no notice to give, no
    value to strip), distinct non-empty column names, at least one row, and every row with as
    many fields as the header. Such a file is split on its commas and newlines alone, so each
    column's distinct values are found on the bytes (:func:`csv_column_codes`) and decoded once:
    pandas' tokenizer makes a string of every field, and the times and numbers parsed later
    are parsed once per distinct value through the codes (a city's stop_times.txt: ~0.5 ms a
    column instead of ~1.5 ms, #15).
    """
    if (
        len(body) >= 2**31
        or b'"' in body
        or b"\r" in body
        or b"\x00" in body
        or _may_need_strip(body)
    ):
        return None
    nl = body.find(b"\n")
    if nl <= 0:
        return None
    names = body[:nl].decode("utf-8").split(",")
    if "" in names or len(set(names)) != len(names):
        return None
    n_rows = body.count(b"\n", nl + 1) + (0 if body.endswith(b"\n") else 1)
    if n_rows == 0:
        return None
    buf = np.frombuffer(body, np.uint8)
    pos, ok = csv_field_starts(buf, nl + 1, len(names), n_rows)
    if not ok:
        return None
    columns: dict[str, pd.api.extensions.ExtensionArray] = {}
    codes: dict[str, ColumnCodes] = {}
    for j, name in enumerate(names):
        code, lo, hi = csv_column_codes(buf, pos, j)
        # Fields end at ASCII delimiters of valid UTF-8: each slice decodes alone, and none
        # holds a newline, so one decode of the joined slices splits back into the values.
        uniques = np.array(join_slices(buf, lo, hi).tobytes().decode("utf-8").split("\n"), object)
        values = pd.arrays.StringArray(uniques[code], dtype=_STR)
        columns[name] = values
        if 2 * len(uniques) <= n_rows:
            small = code.astype(np.min_scalar_type(len(uniques)))
            codes[name] = ColumnCodes(values, small, uniques)
    del pos
    return pd.DataFrame(columns, copy=False), codes


def parse_csv(text: str | bytes, filename: str, sink: NoticeSink) -> pd.DataFrame:
    """Strings stay strings (ids never become numbers); blanks are ``""``.

    ``text`` is the decoded file, or its UTF-8 bytes without a BOM (see :func:`utf8_body`):
    both give the same frame and notices.
    """
    if _is_blank(text):
        sink.add("empty_file", 1, [{"filename": filename}])
        return pd.DataFrame()
    # A count is a full scan; "in" stops at the first quote (most feeds have none).
    has_quotes = (b'"' in text) if isinstance(text, bytes) else ('"' in text)
    if has_quotes and _count(text, '"') % 2:
        # Pandas silently accepts an unterminated quote at EOF, swallowing the rest of the file.
        sink.add("csv_parsing_failed", 1, [{"filename": filename, "message": "unterminated quote"}])
    kw: dict[str, object] = {
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "skip_blank_lines": True,
    }
    try:
        buf = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
        df = pd.read_csv(  # type: ignore[call-overload]
            buf,
            engine="c",
            encoding="utf-8",
            # One pass instead of chunks joined afterwards: ~20 % faster on a city's
            # stop_times.txt; chunks above that size keep the tokenizer's memory bounded.
            low_memory=len(text) > _ONE_PASS_MAX_BYTES,
            **kw,
        )
        # A first data row longer than the header silently becomes an index: a broken row.
        clean = isinstance(df.index, pd.RangeIndex)
    except (pd.errors.ParserError, csv.Error, ValueError):
        clean = False
    if not clean:
        bad: list[list[str]] = []

        def on_bad(line: list[str]) -> None:
            bad.append(line)
            return None

        if isinstance(text, bytes):
            text = text.decode("utf-8")
        try:
            # header=None: the header row fixes the width, so every longer row is a bad line
            # (with header=0 a long first row would again become an index).
            raw = pd.read_csv(  # type: ignore[call-overload]
                io.StringIO(text), engine="python", on_bad_lines=on_bad, header=None, **kw
            )
        except (pd.errors.ParserError, csv.Error, ValueError) as exc:
            sink.add("csv_parsing_failed", 1, [{"filename": filename, "message": str(exc)[:200]}])
            return pd.DataFrame()
        df = raw.iloc[1:].reset_index(drop=True)
        df.columns = _dedupe(["" if pd.isna(c) else str(c) for c in raw.iloc[0].tolist()])
        sink.add(
            "csv_parsing_failed",
            len(bad),
            [{"filename": filename, "row": ",".join(b)[:200]} for b in bad],
        )
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if df.empty and len(df.columns) == 0:
        sink.add("empty_file", 1, [{"filename": filename}])
    # Cheap whole-text pre-checks decide which per-column passes are needed at all.
    maybe_spaces = _may_need_strip(text)
    # Short rows give NaN even with na_filter off. Unquoted text with exactly one comma less
    # than the columns on every row has none, and no column needs the NaN pass.
    full_rows = (
        clean
        and not has_quotes
        and _count(text, ",") == (len(df) + 1) * max(len(df.columns) - 1, 0)
    )
    for c in df.columns:
        col = df[c]
        # A blank is a blank.
        if not full_rows and pd.isna(col.to_numpy(dtype=object)).any():
            col = df[c] = col.fillna("")
        # Strip once here so no later step has to.
        if maybe_spaces and needs_strip(col):
            stripped = col.astype(str).str.strip()
            changed = (stripped != col.astype(str)).to_numpy()
            sink.add(
                "leading_or_trailing_whitespaces",
                int(changed.sum()),
                [
                    {"filename": filename, "csvRowNumber": int(i) + 2, "fieldName": c}
                    for i in np.flatnonzero(changed)[:5]
                ],
            )
            col = df[c] = stripped
        if has_quotes:
            nl = newline_mask(col)
            if nl.any():
                sink.add(
                    "new_line_in_value",
                    int(nl.sum()),
                    [
                        {"filename": filename, "csvRowNumber": int(i) + 2, "fieldName": c}
                        for i in np.flatnonzero(nl)[:5]
                    ],
                )
    return df


def read_feed(
    path: str | Path, *, limits: ReadLimits | None = None, feed_id: str | None = None
) -> Feed:
    """Read a GTFS feed from a ``.zip`` or a folder.

    Raises
    ------
    FeedError
        With code ``not_found``, ``not_a_zip``, ``unsafe_zip_entry``, ``too_many_zip_entries``,
        ``zip_too_large``, ``zip_entry_too_large``, ``zip_bomb`` or ``invalid_encoding``.
        Problems inside readable files become notices on ``Feed.notices`` instead.
    """
    limits = limits or ReadLimits()
    p = Path(path)
    sink = NoticeSink()
    raw: dict[str, bytes] = {}
    if p.is_dir():
        entries = sorted(e for e in p.iterdir() if e.is_file() and not e.name.startswith("."))
        if len(entries) > limits.max_entries:
            raise FeedError("too_many_zip_entries", f"{len(entries)} files in {p}")
        total = 0
        for e in entries:
            size = e.stat().st_size
            total += size
            if size > limits.max_file_bytes or total > limits.max_total_bytes:
                raise FeedError("zip_too_large", f"{p}: feed larger than the read limits")
            raw[e.name] = e.read_bytes()
    elif p.is_file():
        if not zipfile.is_zipfile(p):
            raise FeedError("not_a_zip", f"{p.name} is not a zip archive", {"path": str(p)})
        try:
            with zipfile.ZipFile(p) as zf:
                members = _zip_members(zf, limits)
                for name, info in members.items():
                    raw[name] = _read_capped(zf, info, limits)
        except RuntimeError as exc:  # zipfile's "File is encrypted, password required"
            raise FeedError("encrypted_zip", f"{p.name}: encrypted entries ({exc})") from exc
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,
            OSError,
            EOFError,
            zlib.error,
        ) as exc:
            raise FeedError("not_a_zip", f"{p.name}: unreadable zip ({exc})") from exc
    else:
        raise FeedError("not_found", f"{p} does not exist", {"path": str(p)})

    tables: dict[str, pd.DataFrame] = {}
    codes: dict[tuple[str, str], ColumnCodes] = {}
    extra: dict[str, bytes] = {}
    for name in sorted(raw):
        data = raw.pop(name)  # drop each file's bytes once parsed: lowers the peak memory
        stem, ext = os.path.splitext(name)
        if ext == ".txt":
            body = utf8_body(data)
            plain = None if body is None else plain_csv(body)
            if plain is not None:
                df = plain[0]
                codes.update({(stem, col): c for col, c in plain[1].items()})
            else:
                df = parse_csv(decode_text(data, name, sink) if body is None else body, name, sink)
            tables[stem] = df
            if stem not in SPECS:
                sink.add("unknown_file", 1, [{"filename": name}])
        elif name in GEOJSON_FILES:
            extra[name] = data
        else:
            sink.add("unknown_file", 1, [{"filename": name}])
    fid = feed_id if feed_id is not None else p.stem if p.suffix == ".zip" else p.name
    feed = Feed(tables=tables, files=extra, feed_id=fid, source=str(p), read_notices=sink.notices())
    feed.column_codes.update(codes)
    return feed
