"""Structured logging (key=value for humans, JSON lines in production).

Both structlog loggers and the standard library's (uvicorn, alembic, the feed registry, ...)
go through the same processors, so with ``log_json`` every line is one JSON object — a log
shipper never meets a plain-text line.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from app.settings import Settings

_HANDLER_MARK = "_tsunagu_handler"


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    renderer: Any
    if settings.log_json:
        # Tracebacks as a string field of the JSON object, not as extra lines.
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    # Replace only our own handler (an app built twice, tests' capture handlers stay).
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's default dictConfig gives its loggers their own plain-text handlers and stops
    # propagation; route them through ours so every line has one format.
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # Its access log stays off: app.middleware logs each request once, query secrets redacted
    # (uvicorn logs access whenever "uvicorn.access" has a handler, its own or the root's, and
    # would write an SSE ?access_token= in clear).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
