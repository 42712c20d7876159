"""Honest dependencies (#14): every runtime dependency declared in pyproject.toml is imported by
runtime code (gtfs, routing, dispatch, app) or named below with the reason it is needed without
an import; every third-party module runtime code imports is declared."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RUNTIME = ("gtfs", "routing", "dispatch", "app")

#: Declared, needed, never imported by name — and why.
USED_WITHOUT_IMPORT = {
    "psycopg": "SQLAlchemy's postgresql+psycopg driver (DATABASE_URL), loaded by the dialect",
    "python-multipart": "FastAPI's form parser (multipart uploads: realtime, planning files)",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_norm(re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0]) for d in deps}


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for pkg in RUNTIME:
        for path in (REPO / pkg).rglob("*.py"):
            if "migrations/versions" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module)
    return found


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    """Third-party distribution -> the runtime modules importing from it."""
    by_top = md.packages_distributions()
    out: dict[str, set[str]] = {}
    for mod in modules:
        top = mod.split(".")[0]
        if top in sys.stdlib_module_names or top in RUNTIME or top == "__future__":
            continue
        dists = by_top.get(top, [])
        if top == "google":  # a namespace shared by two distributions
            dists = ["gtfs-realtime-bindings" if mod.startswith("google.transit") else "protobuf"]
        assert dists, f"{mod} is imported by runtime code but no installed distribution has it"
        for d in dists:
            out.setdefault(_norm(d), set()).add(mod)
    return out


def test_every_declared_dependency_is_used_and_every_import_declared() -> None:
    declared = _declared()
    used = _distributions(_imported_modules())
    undeclared = set(used) - declared
    assert not undeclared, f"imported but not declared in pyproject: {sorted(undeclared)}"
    unused = declared - set(used) - {_norm(k) for k in USED_WITHOUT_IMPORT}
    assert not unused, f"declared but imported by no runtime code: {sorted(unused)}"
    # The ones this issue made honest.
    assert {"networkx", "gtfs-kit", "shapely"} <= set(used)
    assert any(m.startswith("gtfs_kit") for m in used["gtfs-kit"])
    for name in USED_WITHOUT_IMPORT:
        assert _norm(name) in declared
