"""Vectorised parsing of GTFS times (``H:MM:SS``, may exceed 24:00) and dates (``YYYYMMDD``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.text_kernels import blank_mask, parse_number_codes, parse_time_codes

MISSING = -1


def parse_times(values: pd.Series) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """Seconds since service-day noon-12h; ``-1`` for blanks (numba kernel, no Python loop).

    Returns
    -------
    (seconds, invalid): ``invalid`` marks non-blank values that are not GTFS times.
    """
    secs, status = parse_time_codes(values)
    return secs, status == 2


def parse_dates(values: pd.Series) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.bool_]]:
    """``datetime64[D]`` (NaT for blanks and invalid), and the invalid mask."""
    s = values.astype(str)
    blank = blank_mask(s)
    d = pd.to_datetime(s, format="%Y%m%d", errors="coerce")
    out = d.to_numpy().astype("datetime64[D]")
    invalid = ~blank & np.isnat(out)
    return out, invalid


def parse_numbers(
    values: pd.Series, *, integer: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Floats (NaN for blanks/invalid) and the invalid mask; ``integer`` rejects ``1.5``."""
    num, status = parse_number_codes(values)
    bad = (status == 2) | ((status == 3) & integer)
    if bad.any():
        num = np.where(bad, np.nan, num)
    return num, bad


def int_column(
    df: pd.DataFrame, name: str, default: int, dtype: Any = np.int32
) -> npt.NDArray[Any]:
    """Integer column with ``default`` for blanks, invalid values and an absent column."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=dtype)
    num, _ = parse_numbers(df[name], integer=False)
    return np.where(np.isnan(num), default, num).astype(dtype)


def float_column(df: pd.DataFrame, name: str) -> npt.NDArray[np.float64]:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return parse_numbers(df[name], integer=False)[0]


def format_time(seconds: int) -> str:
    """``HH:MM:SS`` (hours may pass 24)."""
    h, rem = divmod(int(seconds), 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"
