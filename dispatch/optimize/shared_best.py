"""The best plan of searches running in parallel processes, in shared memory.

Parallel ALNS searches of one instance (:func:`dispatch.optimize.hybrid.solve` with
``workers > 1``) publish their best plan here every so often and take the other's when it is
better (cooperative multi-start: the searches stay apart between exchanges, then all go on
from the best one found).

The board is plain shared memory under a lock (the standard library's ``multiprocessing``
types: nothing to write but the exchange itself), inherited by forked processes or handed to
spawned ones when they start.
"""

from __future__ import annotations

import math
from multiprocessing.context import BaseContext
from typing import Any

import numpy as np


class SharedBest:
    """A plan (``routes int64[K, L]``, ``rlen int64[K]`` as in the ALNS state) and its objective.

    Parameters
    ----------
    ctx
        The multiprocessing context of the processes sharing it (``fork``: they inherit it).
    n_vehicles, width
        Shape of the routes array.
    """

    def __init__(self, ctx: BaseContext, n_vehicles: int, width: int) -> None:
        self._shared = (
            ctx.Lock(),
            ctx.RawValue("d", math.inf),
            ctx.RawArray("q", n_vehicles * width),
            ctx.RawArray("q", n_vehicles),
            (n_vehicles, width),
        )
        self._views()

    def _views(self) -> None:
        self._lock, self._obj, routes, rlen, shape = self._shared
        self._routes = np.frombuffer(routes, dtype=np.int64).reshape(shape)
        self._rlen = np.frombuffer(rlen, dtype=np.int64)

    # A spawned process gets the shared objects themselves (numpy views would be copied).
    def __getstate__(self) -> tuple[Any, ...]:
        return self._shared

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._shared = state
        self._views()

    @property
    def objective(self) -> float:
        """The objective of the plan on the board (``inf`` while it is empty)."""
        return float(self._obj.value)

    def exchange(self, objective: float, routes: np.ndarray, rlen: np.ndarray) -> float | None:
        """Publish the caller's plan if it beats the board's; take the board's if it is better.

        Returns the board's objective when its plan was copied into ``routes`` and ``rlen``
        (in place), ``None`` when the caller keeps its own (better, equal, or published).
        """
        if routes.shape != self._routes.shape or rlen.shape != self._rlen.shape:
            raise ValueError(
                f"plan of shape {routes.shape} / {rlen.shape}, board of "
                f"{self._routes.shape} / {self._rlen.shape}"
            )
        with self._lock:
            board = float(self._obj.value)
            if objective < board - 1e-9:
                self._routes[...] = routes
                self._rlen[...] = rlen
                self._obj.value = objective
                return None
            if board < objective - 1e-9:
                routes[...] = self._routes
                rlen[...] = self._rlen
                return board
            return None
