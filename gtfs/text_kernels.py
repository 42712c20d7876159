"""Numba kernels over GTFS string columns: times and numbers parsed without Python loops.

A column of ``n`` strings is handed to the kernels as one flat array of code units with the
bounds ``[start, end)`` of each value, in one of two layouts:

* **packed UTF-8** (the fast path): the values joined by ``"\\n"`` and encoded once, a single
  C-level pass over the Python strings; used when every value is a ``str`` without a newline
  (the separator must be unambiguous).
* **fixed width** (any other column): ``np.asarray(values, dtype=str)``, an ``[n, width]``
  ``uint32`` matrix of code points, zero-padded. Converting each string to a fixed-width slot
  costs ~4x the join on a 2-million-row ``stop_times.txt`` column, hence the packed path.

The parsers only accept ASCII characters (digits, ``:``, ``.``, signs, ``e``), so a value parses
the same from its code points or its UTF-8 bytes; the whitespace trimmed around values (ASCII
blanks, the BOM and the ideographic space U+3000) is recognised in both encodings.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]


def u_matrix(values: pd.Series | npt.NDArray[np.object_]) -> npt.NDArray[np.uint32]:
    """``[n, width]`` code points (0 = padding)."""
    arr = np.asarray(values, dtype=np.str_)
    if arr.size == 0:
        return np.zeros((0, 1), np.uint32)
    width = max(arr.dtype.itemsize // 4, 1)
    if arr.dtype.itemsize == 0:
        return np.zeros((len(arr), 1), np.uint32)
    return arr.view(np.uint32).reshape(len(arr), width)


@numba.njit(cache=True)
def _separators(buf: npt.NDArray[np.uint8], n: int) -> tuple[I64, I64]:
    """Bounds of the ``n`` newline-separated values of ``buf``."""
    starts = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    starts[0] = 0
    j = 0
    for k in range(buf.shape[0]):
        if buf[k] == 10:
            ends[j] = k
            j += 1
            starts[j] = k + 1
    ends[n - 1] = buf.shape[0]
    return starts, ends


def _packed(values: Any) -> tuple[npt.NDArray[np.uint8], I64, I64] | None:
    """``(utf8, starts, ends)`` of the values joined by newlines, or ``None`` when a value is not
    a ``str`` (NaN, a number) or holds a newline: those columns take the fixed-width path."""
    # Through an object array: Series.tolist() boxes each value again (~3x slower).
    seq = np.asarray(values, dtype=object).tolist()
    n = len(seq)
    if n == 0:
        return None
    try:
        joined = "\n".join(seq)
    except TypeError:
        return None
    data = joined.encode("utf-8", "surrogatepass")
    if data.count(b"\n") != n - 1:
        return None
    buf = np.frombuffer(data, np.uint8)
    starts, ends = _separators(buf, n)
    return buf, starts, ends


def _fixed(values: Any) -> tuple[npt.NDArray[np.uint32], I64, I64]:
    """The fixed-width layout flattened: value ``i`` is ``flat[i * w : i * w + w]``."""
    m = u_matrix(values)
    n, w = m.shape
    starts = np.arange(n, dtype=np.int64) * w
    return np.ascontiguousarray(m).reshape(-1), starts, starts + w


@numba.njit(cache=True, inline="always")
def _is_space(c: np.uint32) -> bool:
    # ASCII blanks, BOM and the ideographic space (U+3000) met in Japanese feeds.
    return c == 32 or c == 9 or c == 13 or c == 10 or c == 0xFEFF or c == 0x3000


@numba.njit(cache=True)
def _bounds_utf8(b: npt.NDArray[np.uint8], starts: I64, ends: I64) -> tuple[I64, I64]:
    """Each value's bounds without its surrounding blanks (trailing NULs too, as the
    fixed-width layout drops them as padding). The BOM is EF BB BF and U+3000 is E3 80 80 in
    UTF-8; their lead bytes never continue another character, so a match is that character.
    (Written out in the loop: helper functions cost ~10x here, even inlined.)"""
    n = starts.shape[0]
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    for i in range(n):
        s = starts[i]
        e = ends[i]
        while e > s:
            c = b[e - 1]
            if c == 32 or c == 9 or c == 13 or c == 10 or c == 0:
                e -= 1
            elif (
                c >= 0x80
                and e - 3 >= s
                and (
                    (b[e - 3] == 0xEF and b[e - 2] == 0xBB and c == 0xBF)
                    or (b[e - 3] == 0xE3 and b[e - 2] == 0x80 and c == 0x80)
                )
            ):
                e -= 3
            else:
                break
        while s < e:
            c = b[s]
            if c == 32 or c == 9 or c == 13 or c == 10:
                s += 1
            elif (
                c >= 0x80
                and s + 3 <= e
                and (
                    (c == 0xEF and b[s + 1] == 0xBB and b[s + 2] == 0xBF)
                    or (c == 0xE3 and b[s + 1] == 0x80 and b[s + 2] == 0x80)
                )
            ):
                s += 3
            else:
                break
        lo[i] = s
        hi[i] = e
    return lo, hi


@numba.njit(cache=True)
def _bounds_fixed(m: npt.NDArray[np.uint32], starts: I64, ends: I64) -> tuple[I64, I64]:
    n = starts.shape[0]
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    for i in range(n):
        s = starts[i]
        e = ends[i]
        while e > s and (m[e - 1] == 0 or _is_space(m[e - 1])):
            e -= 1
        while s < e and _is_space(m[s]):
            s += 1
        lo[i] = s
        hi[i] = e
    return lo, hi


def _trimmed(values: Any) -> tuple[npt.NDArray[Any], I64, I64]:
    """Flat code units and each value's bounds without surrounding blanks."""
    packed = _packed(values)
    if packed is not None:
        buf, starts, ends = packed
        lo, hi = _bounds_utf8(buf, starts, ends)
        return buf, lo, hi
    flat, starts, ends = _fixed(values)
    lo, hi = _bounds_fixed(flat, starts, ends)
    return flat, lo, hi


@numba.njit(cache=True)
def _needs_strip_utf8(b: npt.NDArray[np.uint8], starts: I64, ends: I64, lo: I64, hi: I64) -> bool:
    """Whether a value's trimmed bounds cut more than its trailing NULs (padding)."""
    for i in range(starts.shape[0]):
        if lo[i] != starts[i]:
            return True
        e = ends[i]
        while e > starts[i] and b[e - 1] == 0:
            e -= 1
        if hi[i] != e:
            return True
    return False


@numba.njit(cache=True)
def _needs_strip_fixed(m: npt.NDArray[np.uint32], starts: I64, ends: I64) -> bool:
    for i in range(starts.shape[0]):
        s = starts[i]
        e = ends[i]
        if e > s and _is_space(m[s]):
            return True
        while e > s and m[e - 1] == 0:
            e -= 1
        if e > s and _is_space(m[e - 1]):
            return True
    return False


def needs_strip(values: pd.Series) -> bool:
    """Whether any value has leading/trailing whitespace."""
    packed = _packed(values)
    if packed is not None:
        buf, starts, ends = packed
        return bool(_needs_strip_utf8(buf, starts, ends, *_bounds_utf8(buf, starts, ends)))
    return bool(_needs_strip_fixed(*_fixed(values)))


@numba.njit(cache=True)
def _parse_time(
    m: npt.NDArray[Any], lo: I64, hi: I64
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8]]:
    """Status 0 ok, 1 blank, 2 invalid; ``H:MM:SS`` / ``HH:MM:SS`` / ``HHH:MM:SS``."""
    n = lo.shape[0]
    out = np.full(n, -1, np.int32)
    st = np.zeros(n, np.int8)
    for i in range(n):
        s, e = lo[i], hi[i]
        if s >= e:
            st[i] = 1
            continue
        L = e - s
        if L < 7 or L > 9 or m[e - 3] != 58 or m[e - 6] != 58:
            st[i] = 2
            continue
        ok = True
        h = np.int64(0)
        for k in range(s, e - 6):
            c = np.int64(m[k])
            if c < 48 or c > 57:
                ok = False
            h = h * 10 + (c - 48)
        mm = np.int64(0)
        for k in range(e - 5, e - 3):
            c = np.int64(m[k])
            if c < 48 or c > 57:
                ok = False
            mm = mm * 10 + (c - 48)
        ss = np.int64(0)
        for k in range(e - 2, e):
            c = np.int64(m[k])
            if c < 48 or c > 57:
                ok = False
            ss = ss * 10 + (c - 48)
        if not ok or mm > 59 or ss > 59:
            st[i] = 2
            continue
        out[i] = h * 3600 + mm * 60 + ss
    return out, st


def parse_time_codes(values: pd.Series) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8]]:
    """Seconds (-1 unless status 0) and status: 0 ok, 1 blank, 2 invalid."""
    return _parse_time(*_trimmed(values))  # type: ignore[no-any-return]


def blank_mask(values: pd.Series) -> npt.NDArray[np.bool_]:
    """Empty or whitespace-only values."""
    _, lo, hi = _trimmed(values)
    return np.asarray(lo >= hi)


@numba.njit(cache=True)
def _parse_number(
    m: npt.NDArray[Any], lo: I64, hi: I64
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Decimal numbers ``[+-]d*[.d*][(e|E)[+-]d+]``; status 0 ok, 1 blank, 2 invalid, 3 has
    a fraction or exponent (not an integer). Last-bit rounding may differ from ``strtod``."""
    n = lo.shape[0]
    out = np.full(n, np.nan)
    st = np.zeros(n, np.int8)
    for i in range(n):
        s, e = lo[i], hi[i]
        if s >= e:
            st[i] = 1
            continue
        neg = False
        if m[s] == 43 or m[s] == 45:
            neg = m[s] == 45
            s += 1
        mant = 0.0
        digits = 0
        scale = 0
        frac = False
        k = s
        while k < e and 48 <= m[k] <= 57:
            mant = mant * 10.0 + (np.int64(m[k]) - 48)
            digits += 1
            k += 1
        if k < e and m[k] == 46:
            frac = True
            k += 1
            while k < e and 48 <= m[k] <= 57:
                mant = mant * 10.0 + (np.int64(m[k]) - 48)
                scale -= 1
                digits += 1
                k += 1
        if digits == 0:
            st[i] = 2
            continue
        if k < e and (m[k] == 101 or m[k] == 69):
            frac = True
            k += 1
            eneg = False
            if k < e and (m[k] == 43 or m[k] == 45):
                eneg = m[k] == 45
                k += 1
            ed = 0
            ev = np.int64(0)
            while k < e and 48 <= m[k] <= 57:
                ev = ev * 10 + (np.int64(m[k]) - 48)
                ed += 1
                k += 1
            if ed == 0:
                st[i] = 2
                continue
            scale += int(-ev if eneg else ev)
        if k != e:
            st[i] = 2
            continue
        v = mant * 10.0**scale if scale >= 0 else mant / 10.0 ** (-scale)
        out[i] = -v if neg else v
        st[i] = 3 if frac else 0
    return out, st


def parse_number_codes(values: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Values (NaN unless status 0 or 3) and status: 0 integer, 1 blank, 2 invalid, 3 other
    number."""
    return _parse_number(*_trimmed(values))  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _has_newline(m: npt.NDArray[Any], starts: I64, ends: I64) -> npt.NDArray[np.bool_]:
    n = starts.shape[0]
    out = np.zeros(n, np.bool_)
    for i in range(n):
        for k in range(starts[i], ends[i]):
            c = m[k]
            if c == 10 or c == 13:
                out[i] = True
                break
    return out


def newline_mask(values: pd.Series) -> npt.NDArray[np.bool_]:
    """Values containing a line break (only possible inside quoted CSV fields)."""
    packed = _packed(values)
    if packed is not None:
        buf = packed[0]
        # Packed values hold no "\n" (it separates them); only a "\r" can remain.
        if not np.any(buf == 13):
            return np.zeros(len(packed[1]), np.bool_)
        return _has_newline(*packed)  # type: ignore[no-any-return]
    return _has_newline(*_fixed(values))  # type: ignore[no-any-return]


# --- plain CSV: fields and per-column codes straight from the file's bytes -----------------------
@numba.njit(cache=True)
def csv_field_starts(
    b: npt.NDArray[np.uint8], start: int, n_cols: int, n_rows: int
) -> tuple[npt.NDArray[np.int32], bool]:
    """``[n_rows, n_cols + 1]`` byte offsets of each field of the rows from ``start`` on, the
    last column one past the row's newline (field ``j`` ends at ``pos[r, j + 1] - 1``), and
    whether every row has exactly ``n_cols`` fields separated by commas and ends with a
    newline or the end of the data (``False`` on an empty row or more rows than ``n_rows``).
    Only for text without quotes or carriage returns, shorter than 2**31 bytes."""
    pos = np.empty((n_rows, n_cols + 1), np.int32)
    n = b.shape[0]
    r = 0
    k = start
    while k < n:
        if r >= n_rows:
            return pos, False
        pos[r, 0] = k
        c = 1
        while k < n:
            x = b[k]
            if x == 10:
                break
            if x == 44:
                if c == n_cols:
                    return pos, False
                pos[r, c] = k + 1
                c += 1
            k += 1
        if c != n_cols or (n_cols == 1 and k == pos[r, 0]):
            return pos, False
        pos[r, n_cols] = k + 1
        k += 1
        r += 1
    return pos, r == n_rows


@numba.njit(cache=True, inline="always")
def _slot(key: np.uint64, mask: int) -> np.int64:
    # MurmurHash3's finaliser: every key bit reaches the low bits the mask keeps (times such
    # as "05:50:00" share their last bytes, which a bare multiply leaves in the low bits).
    h = key ^ (key >> np.uint64(33))
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return np.int64(h & np.uint64(mask))


@numba.njit(cache=True)
def csv_column_codes(
    b: npt.NDArray[np.uint8], pos: npt.NDArray[np.int32], j: int
) -> tuple[npt.NDArray[np.int32], I64, I64]:
    """Column ``j`` of :func:`csv_field_starts` as codes of its distinct values (numbered in
    order of first appearance) and each distinct value's bounds ``[start, end)`` in ``b``.

    A value of at most 8 bytes is its own key (its bytes packed in a word; the text holds no
    NUL), a longer one is keyed by an FNV-1a hash and compared byte by byte; a value equal to
    the row above's (a trip's rows) takes its code without a look-up, others go to an open
    addressing table kept at most half full (grown by doubling: a column of few distinct
    values keeps a table that stays in cache)."""
    n = pos.shape[0]
    size = 1024
    mask = size - 1
    table = np.full(size, -1, np.int32)
    codes = np.empty(n, np.int32)
    ustart = np.empty(n, np.int64)
    uend = np.empty(n, np.int64)
    ukey = np.empty(n, np.uint64)
    nu = 0
    prev = -1
    for r in range(n):
        s = np.int64(pos[r, j])
        e = np.int64(pos[r, j + 1]) - 1
        L = e - s
        key = np.uint64(0)
        if L <= 8:
            for k in range(s, e):
                key = (key << np.uint64(8)) | np.uint64(b[k])
            if prev >= 0 and ukey[prev] == key and uend[prev] - ustart[prev] == L:
                codes[r] = prev
                continue
        else:
            if prev >= 0 and uend[prev] - ustart[prev] == L:
                p = ustart[prev]
                same = True
                for k in range(L):
                    if b[p + k] != b[s + k]:
                        same = False
                        break
                if same:
                    codes[r] = prev
                    continue
            key = np.uint64(14695981039346656037)
            for k in range(s, e):
                key = (key ^ np.uint64(b[k])) * np.uint64(1099511628211)
        slot = _slot(key, mask)
        while True:
            u = table[slot]
            if u < 0:
                u = nu
                nu += 1
                table[slot] = u
                ustart[u] = s
                uend[u] = e
                ukey[u] = key
                if 2 * nu > size:
                    size *= 2
                    mask = size - 1
                    table = np.full(size, -1, np.int32)
                    for v in range(nu):
                        t = _slot(ukey[v], mask)
                        while table[t] >= 0:
                            t = (t + 1) & mask
                        table[t] = v
                break
            if ukey[u] == key and uend[u] - ustart[u] == L:
                same = True
                if L > 8:
                    p = ustart[u]
                    for k in range(L):
                        if b[p + k] != b[s + k]:
                            same = False
                            break
                if same:
                    break
            slot = (slot + 1) & mask
        codes[r] = u
        prev = u
    return codes, ustart[:nu].copy(), uend[:nu].copy()


@numba.njit(cache=True)
def join_slices(b: npt.NDArray[np.uint8], starts: I64, ends: I64) -> npt.NDArray[np.uint8]:
    """The slices ``b[starts[i]:ends[i]]`` joined by newlines."""
    n = starts.shape[0]
    total = n - 1 if n else 0
    for i in range(n):
        total += ends[i] - starts[i]
    out = np.empty(total, np.uint8)
    p = 0
    for i in range(n):
        if i:
            out[p] = 10
            p += 1
        for k in range(starts[i], ends[i]):
            out[p] = b[k]
            p += 1
    return out
