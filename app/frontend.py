"""Serves the built single-page frontend (``frontend/dist``) at ``/``.

Unknown non-API paths fall back to ``index.html`` so client-side routes survive a reload. API,
probe and discovery paths are never shadowed: unknown ones answer a 404 in the error shape.
Without a build, ``/`` explains how to build it and links to the API docs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from app.errors import ApiError
from app.settings import REPO_ROOT, Settings

DEFAULT_DIST = REPO_ROOT / "frontend" / "dist"
RESERVED_PREFIXES = ("api", "healthz", "readyz", ".well-known")

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tsunagu</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Tsunagu</h1>
<p>The web frontend is not built. Build it with <code>make install</code>
(or <code>cd frontend &amp;&amp; npm install &amp;&amp; npm run build</code>) and reload.</p>
<p>The API is running: see the <a href="/api/v1/docs">API documentation</a>.</p>
</body></html>
"""


def _reserved(path: str) -> bool:
    first = path.lstrip("/").split("/", 1)[0]
    return first in RESERVED_PREFIXES


def mount_frontend(app: FastAPI, settings: Settings, dist: Path | None = None) -> None:
    """Add the frontend routes last, after every API router."""
    root = (dist or DEFAULT_DIST).resolve()
    index = root / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    def home() -> FileResponse | HTMLResponse:
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_NOT_BUILT)

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def spa(path: str) -> FileResponse | HTMLResponse:
        if _reserved(path):
            raise ApiError(404, "not_found", f"No route for /{path}.")
        if not index.is_file():
            raise ApiError(404, "not_found", f"No route for /{path} (frontend not built).")
        candidate = (root / path).resolve()
        # Resolved path must stay inside dist: no ../ escapes.
        if candidate.is_file() and candidate.is_relative_to(root):
            cache = (
                "public, max-age=31536000, immutable" if "/assets/" in f"/{path}" else "no-cache"
            )
            return FileResponse(candidate, headers={"Cache-Control": cache})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
