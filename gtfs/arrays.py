"""Vectorised index helpers shared by the compile steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def concat_ranges(
    starts: npt.NDArray[np.integer], lengths: npt.NDArray[np.integer]
) -> npt.NDArray[np.int64]:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def csr_ptr(group: npt.NDArray[np.integer], n_groups: int) -> npt.NDArray[np.int32]:
    """CSR offsets ``[n_groups + 1]`` for items already sorted by ``group``."""
    counts = np.bincount(np.asarray(group, dtype=np.int64), minlength=n_groups)
    return np.r_[0, np.cumsum(counts)].astype(np.int32)


def first_index(keys: Any, values: Any) -> npt.NDArray[np.int64]:
    """Position in ``keys`` of each of ``values`` (first occurrence; -1 when absent).

    Unlike ``pd.Index.get_indexer`` it accepts duplicated keys (a broken feed's ids).
    """
    idx = pd.Index(keys)
    if idx.is_unique:
        return np.asarray(idx.get_indexer(values), dtype=np.int64)
    keep = ~idx.duplicated(keep="first")
    pos = np.flatnonzero(keep)
    r = np.asarray(idx[keep].get_indexer(values), dtype=np.int64)
    return np.where(r >= 0, pos[np.maximum(r, 0)], -1)
