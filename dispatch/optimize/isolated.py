"""OR-Tools' routing search in a worker process, for the live service.

OR-Tools' Python routing wrapper holds the GIL for the whole search (measured: a 2 s pass froze
the calling process's other threads for 1.9 s), so a zone owner re-optimising in a background
thread stopped answering quotes and bookings for that long: the event loop could not run.
The live re-optimisation loop therefore solves in one long-lived worker process (spawned once,
reused; a :class:`~dispatch.problem.Problem` and its :class:`~dispatch.problem.
Solution` are plain numpy data and pickle in milliseconds). Benchmarks and tests call
:func:`dispatch.optimize.ortools_model.solve_ortools` directly.

The worker runs at the lowest CPU priority (:data:`WORKER_NICE`). Its search keeps a core busy
for the whole time limit, and on a small machine that core was the one the service's requests
needed: every ~60 s, as a pass began, bookings, cancellations and plans on both app processes
waited ~0.5-2 s behind it (bench.load, #10). Re-optimisation improves plans already in force,
so it should use the CPU that requests leave idle, not compete with them.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from dispatch.optimize.ortools_model import solve_ortools
from dispatch.problem import Problem, Solution

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None

#: Beyond the solver's own time limit: the worker's start (imports) and the model's build.
GRACE_S = 120.0
#: The worker's niceness, added to the service's (19 is the lowest priority on Linux).
WORKER_NICE = 19


def _lower_priority() -> None:
    """The worker's initialiser: lowest CPU priority (where the platform has ``os.nice``)."""
    import contextlib
    import os

    with contextlib.suppress(AttributeError, OSError):
        os.nice(WORKER_NICE)


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: the owner process runs threads (an event loop, Redis clients)
            # that a forked child would inherit in whatever state they were.
            _pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
            )
        return _pool


def shutdown() -> None:
    """Stop the worker process (at the app's stop; the next solve starts a new one)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def solve_ortools_isolated(
    problem: Problem, time_limit_s: float, warm_start: Solution | None = None
) -> Solution:
    """:func:`~dispatch.optimize.ortools_model.solve_ortools` in the worker process.

    Raises what the solver raises there; a worker that died (out of memory, killed) is
    replaced for the next call and this one raises ``BrokenProcessPool``.
    """
    fut = _executor().submit(solve_ortools, problem, time_limit_s, warm_start)
    try:
        return fut.result(timeout=time_limit_s + GRACE_S)
    except BrokenProcessPool:
        shutdown()
        raise
