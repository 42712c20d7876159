"""Numba kernels over fixed-width unicode matrices: GTFS strings parsed without Python loops.

A column of ``n`` strings becomes an ``[n, width]`` ``uint32`` matrix (numpy ``U`` dtype viewed
as code points, zero-padded), which these kernels scan row by row in native code.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd


def u_matrix(values: pd.Series | npt.NDArray[np.object_]) -> npt.NDArray[np.uint32]:
    """``[n, width]`` code points (0 = padding)."""
    arr = np.asarray(values, dtype=np.str_)
    if arr.size == 0:
        return np.zeros((0, 1), np.uint32)
    width = max(arr.dtype.itemsize // 4, 1)
    if arr.dtype.itemsize == 0:
        return np.zeros((len(arr), 1), np.uint32)
    return arr.view(np.uint32).reshape(len(arr), width)


@numba.njit(cache=True, inline="always")
def _is_space(c: np.uint32) -> bool:
    # ASCII blanks, BOM and the ideographic space (U+3000) met in Japanese feeds.
    return c == 32 or c == 9 or c == 13 or c == 10 or c == 0xFEFF or c == 0x3000


@numba.njit(cache=True)
def _bounds(m: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    n, w = m.shape
    lo = np.zeros(n, np.int32)
    hi = np.zeros(n, np.int32)
    for i in range(n):
        e = w
        while e > 0 and (m[i, e - 1] == 0 or _is_space(m[i, e - 1])):
            e -= 1
        s = 0
        while s < e and _is_space(m[i, s]):
            s += 1
        lo[i] = s
        hi[i] = e
    return lo, hi


@numba.njit(cache=True)
def _needs_strip(m: npt.NDArray[np.uint32]) -> bool:
    n, w = m.shape
    for i in range(n):
        if w and _is_space(m[i, 0]):
            return True
        e = w
        while e > 0 and m[i, e - 1] == 0:
            e -= 1
        if e > 0 and _is_space(m[i, e - 1]):
            return True
    return False


def needs_strip(values: pd.Series) -> bool:
    """Whether any value has leading/trailing whitespace."""
    return bool(_needs_strip(u_matrix(values)))


@numba.njit(cache=True)
def _parse_time(m: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8]]:
    """Status 0 ok, 1 blank, 2 invalid; ``H:MM:SS`` / ``HH:MM:SS`` / ``HHH:MM:SS``."""
    lo, hi = _bounds(m)
    n = m.shape[0]
    out = np.full(n, -1, np.int32)
    st = np.zeros(n, np.int8)
    for i in range(n):
        s, e = lo[i], hi[i]
        if s >= e:
            st[i] = 1
            continue
        L = e - s
        if L < 7 or L > 9 or m[i, e - 3] != 58 or m[i, e - 6] != 58:
            st[i] = 2
            continue
        ok = True
        h = 0
        for k in range(s, e - 6):
            c = m[i, k]
            if c < 48 or c > 57:
                ok = False
            h = h * 10 + (c - 48)
        mm = 0
        for k in range(e - 5, e - 3):
            c = m[i, k]
            if c < 48 or c > 57:
                ok = False
            mm = mm * 10 + (c - 48)
        ss = 0
        for k in range(e - 2, e):
            c = m[i, k]
            if c < 48 or c > 57:
                ok = False
            ss = ss * 10 + (c - 48)
        if not ok or mm > 59 or ss > 59:
            st[i] = 2
            continue
        out[i] = h * 3600 + mm * 60 + ss
    return out, st


def parse_time_codes(values: pd.Series) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8]]:
    return _parse_time(u_matrix(values))  # type: ignore[no-any-return]


def blank_mask(values: pd.Series) -> npt.NDArray[np.bool_]:
    """Empty or whitespace-only values."""
    lo, hi = _bounds(u_matrix(values))
    return np.asarray(lo >= hi)


@numba.njit(cache=True)
def _parse_number(
    m: npt.NDArray[np.uint32],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Decimal numbers ``[+-]d*[.d*][(e|E)[+-]d+]``; status 0 ok, 1 blank, 2 invalid, 3 has
    a fraction or exponent (not an integer). Last-bit rounding may differ from ``strtod``."""
    lo, hi = _bounds(m)
    n = m.shape[0]
    out = np.full(n, np.nan)
    st = np.zeros(n, np.int8)
    for i in range(n):
        s, e = lo[i], hi[i]
        if s >= e:
            st[i] = 1
            continue
        neg = False
        if m[i, s] == 43 or m[i, s] == 45:
            neg = m[i, s] == 45
            s += 1
        mant = 0.0
        digits = 0
        scale = 0
        frac = False
        k = s
        while k < e and 48 <= m[i, k] <= 57:
            mant = mant * 10.0 + (m[i, k] - 48)
            digits += 1
            k += 1
        if k < e and m[i, k] == 46:
            frac = True
            k += 1
            while k < e and 48 <= m[i, k] <= 57:
                mant = mant * 10.0 + (m[i, k] - 48)
                scale -= 1
                digits += 1
                k += 1
        if digits == 0:
            st[i] = 2
            continue
        if k < e and (m[i, k] == 101 or m[i, k] == 69):
            frac = True
            k += 1
            eneg = False
            if k < e and (m[i, k] == 43 or m[i, k] == 45):
                eneg = m[i, k] == 45
                k += 1
            ed = 0
            ev = 0
            while k < e and 48 <= m[i, k] <= 57:
                ev = ev * 10 + (m[i, k] - 48)
                ed += 1
                k += 1
            if ed == 0:
                st[i] = 2
                continue
            scale += -ev if eneg else ev
        if k != e:
            st[i] = 2
            continue
        v = mant * 10.0**scale if scale >= 0 else mant / 10.0 ** (-scale)
        out[i] = -v if neg else v
        st[i] = 3 if frac else 0
    return out, st


def parse_number_codes(values: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    return _parse_number(u_matrix(values))  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _has_newline(m: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    n, w = m.shape
    out = np.zeros(n, np.bool_)
    for i in range(n):
        for k in range(w):
            c = m[i, k]
            if c == 10 or c == 13:
                out[i] = True
                break
            if c == 0:
                break
    return out


def newline_mask(values: pd.Series) -> npt.NDArray[np.bool_]:
    """Values containing a line break (only possible inside quoted CSV fields)."""
    return _has_newline(u_matrix(values))  # type: ignore[no-any-return]
