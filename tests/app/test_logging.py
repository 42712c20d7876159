"""Structured logs: with ``log_json`` every line — structlog's and the standard library's
(uvicorn, alembic, the feed registry) — is one JSON object; tracebacks stay inside it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.logging import configure_logging
from tests.app.conftest import settings_for


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """Restore the root logger after the test (configure_logging adds its handler)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _ours() -> logging.Handler:
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_tsunagu_handler", 0)]
    return handler


def test_standard_library_records_are_json_lines(tmp_path: Path, root_handlers: None) -> None:
    configure_logging(settings_for(tmp_path, log_json=True, log_level="debug"))
    configure_logging(settings_for(tmp_path, log_json=True, log_level="debug"))  # idempotent
    stream = io.StringIO()
    handler = _ours()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("app.feeds.registry").info("published network generation %d", 2)
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logging.getLogger("tsunagu.errors").exception("unhandled error on %s", "/x")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "published network generation 2"
    assert first["logger"] == "app.feeds.registry" and first["level"] == "info"
    assert "timestamp" in first
    assert second["level"] == "error" and "ZeroDivisionError: boom" in second["exception"]


def test_console_format_for_humans(tmp_path: Path, root_handlers: None) -> None:
    configure_logging(settings_for(tmp_path, log_json=False, log_level="warning"))
    stream = io.StringIO()
    handler = _ours()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("tsunagu.test").info("not shown below the level")
    logging.getLogger("tsunagu.test").warning("shown %s", "here")
    (line,) = stream.getvalue().splitlines()
    assert "shown here" in line and "[tsunagu.test]" in line and not line.startswith("{")
