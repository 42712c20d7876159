"""The lock: ``constraints.txt`` pins every dependency of ``pyproject.toml`` (runtime and dev),
each pin inside its declared range, and the environment the tests run in is the pinned one —
so a fresh ``make`` install gets exactly what CI tested."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.app.conftest import REPO_ROOT_FOR_TESTS


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (REPO_ROOT_FOR_TESTS / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: not an exact pin: {raw!r}"
        key = canonicalize_name(Requirement(name).name)
        assert key not in pins, f"constraints.txt: {name} pinned twice"
        pins[key] = version.strip()
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT_FOR_TESTS / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_dependency_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for req in _declared():
        key = canonicalize_name(req.name)
        assert key in pins, f"{req.name} is in pyproject.toml but not pinned in constraints.txt"
        assert req.specifier.contains(pins[key], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[key]}, outside pyproject's {req.specifier}"
        )


def test_the_tested_environment_is_the_pinned_one() -> None:
    drift = {}
    for key, version in _pins().items():
        try:
            installed = metadata.version(key)
        except metadata.PackageNotFoundError:
            drift[key] = (version, None)
            continue
        if installed != version:
            drift[key] = (version, installed)
    assert not drift, f"installed packages differ from constraints.txt (pin, installed): {drift}"
