"""The numba kernels are compiled before the process reports ready (#10: the first /plan after
a start took 13.5 s, compiling them, while /readyz already said ready). A fresh interpreter
(kernels compiled in this test process would prove nothing) starts the app on the demo city
and, before any request but /readyz, reads which kernels have a compiled signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.app.conftest import REPO_ROOT_FOR_TESTS

SCRIPT = """
import json, sys, time
from pathlib import Path
from fastapi.testclient import TestClient
from app.main import create_app
from tests.app.conftest import settings_for
import dispatch.insertion, routing.raptor.bounds, routing.raptor.kernels, routing.raptor.mcraptor

# The planner's kernels: goal-directed RAPTOR (#15) with its lower bounds, range, McRAPTOR.
KERNELS = {
    "raptor_pruned": routing.raptor.kernels.raptor_pruned,
    "backward_dijkstra": routing.raptor.bounds.backward_dijkstra,
    "departures_in_window": routing.raptor.kernels.departures_in_window,
    "mc_kernel": routing.raptor.mcraptor.mc_kernel,
    "insertion": dispatch.insertion._kernel,
}
settings = settings_for(Path(sys.argv[1]), demo=True, demo_riders_per_hour=0.0)
with TestClient(create_app(settings)) as c:
    ready = c.get("/readyz")
    out = {
        "ready": ready.status_code,
        "kernels_check": ready.json()["checks"].get("kernels"),
        "compiled": {k: len(f.signatures) for k, f in KERNELS.items()},
    }
    t = time.perf_counter()
    r = c.get("/api/v1/plan", params={
        "fromPlace": "42.3158,140.9738", "toPlace": "42.3466,141.0240", "time": "08:00",
    })
    out["plan"] = [r.status_code, time.perf_counter() - t]
print("RESULT " + json.dumps(out))
"""


def test_kernels_are_compiled_when_readyz_says_ready(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["PYTHONPATH"] = str(REPO_ROOT_FOR_TESTS)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
        cwd=REPO_ROOT_FOR_TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["ready"] == 200, out
    assert all(n > 0 for n in out["compiled"].values()), out["compiled"]
    assert out["kernels_check"]["ok"] is True and "error" not in out["kernels_check"], out
    assert out["kernels_check"]["plans"] == 3 and out["kernels_check"]["dispatcher"], out
    status, seconds = out["plan"]
    assert status == 200 and seconds < 5.0, out
