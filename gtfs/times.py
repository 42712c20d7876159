"""Vectorised parsing of GTFS times (``H:MM:SS``, may exceed 24:00) and dates (``YYYYMMDD``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

MISSING = -1


def parse_times(values: pd.Series) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """Seconds since service-day noon-12h; ``-1`` for blanks.

    Returns
    -------
    (seconds, invalid): ``invalid`` marks non-blank values that are not GTFS times.
    """
    s = values.astype(str).str.strip()
    blank = (s == "").to_numpy()
    parts = s.str.extract(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
    ok = parts[0].notna().to_numpy()
    secs = np.full(len(s), MISSING, dtype=np.int32)
    if ok.any():
        h = parts[0].to_numpy()[ok].astype(np.int32)
        m = parts[1].to_numpy()[ok].astype(np.int32)
        sec = parts[2].to_numpy()[ok].astype(np.int32)
        secs[ok] = h * 3600 + m * 60 + sec
    return secs, ~blank & ~ok


def parse_dates(values: pd.Series) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.bool_]]:
    """``datetime64[D]`` (NaT for blanks and invalid), and the invalid mask."""
    s = values.astype(str).str.strip()
    blank = (s == "").to_numpy()
    d = pd.to_datetime(s, format="%Y%m%d", errors="coerce")
    out = d.to_numpy().astype("datetime64[D]")
    invalid = ~blank & np.isnat(out)
    return out, invalid


def parse_numbers(
    values: pd.Series, *, integer: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Floats (NaN for blanks/invalid) and the invalid mask; ``integer`` rejects ``1.5``."""
    s = values.astype(str).str.strip()
    blank = (s == "").to_numpy()
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(num) & ~blank
    if integer:
        frac = ~np.isnan(num) & (num != np.floor(num))
        bad |= frac | (~blank & ~s.str.fullmatch(r"[+-]?\d+").to_numpy())
        num = np.where(bad, np.nan, num)
    return num, bad


def int_column(
    df: pd.DataFrame, name: str, default: int, dtype: type[np.generic] = np.int32
) -> npt.NDArray[np.generic]:
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
