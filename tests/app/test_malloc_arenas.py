"""The app caps glibc's malloc arenas unless the environment chose (#10)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from app.main import MALLOC_ARENAS, limit_malloc_arenas


def test_environment_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capped where mallopt(M_ARENA_MAX) exists (glibc: Debian, as CI and deployments run);
    elsewhere the call says it did nothing rather than pretend."""
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas(MALLOC_ARENAS) is glibc


def test_no_c_library_means_no_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert limit_malloc_arenas() is False
