"""Serves the built single-page frontend (``frontend/dist``) at ``/``.

Unknown non-API paths fall back to ``index.html`` so client-side routes survive a reload. API,
probe and discovery paths are never shadowed: unknown ones answer a 404 in the error shape.
Without a build, ``/`` explains how to build it and links to the API docs.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import Match, Route

from app.errors import ApiError
from app.settings import REPO_ROOT, Settings

DEFAULT_DIST = REPO_ROOT / "frontend" / "dist"
RESERVED_PREFIXES = ("api", "healthz", "readyz", ".well-known")
CATCH_ALL = "/{path:path}"

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


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route serves at ``path`` (for ``Allow``), the frontend's catch-all
    aside unless nothing else serves it and the path is not reserved (then GET)."""
    methods: set[str] = set()
    fallback: set[str] = set()
    for method in _METHODS:
        scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        for route in app.router.routes:
            if route.matches(dict(scope))[0] == Match.FULL:
                catch_all = isinstance(route, Route) and route.path == CATCH_ALL
                (fallback if catch_all else methods).add(method)
                break
    if not methods and not _reserved(path):
        methods = fallback
    return [m for m in _METHODS if m in methods]


def method_not_allowed(app: Any, path: str) -> ApiError:
    """405 with ``Allow`` naming every method of ``path``, or 404 when no route serves it."""
    allowed = allowed_methods(app, path)
    if not allowed:
        return ApiError(404, "not_found", f"No route for {path}.")
    return ApiError(
        405,
        "method_not_allowed",
        f"{path} answers {', '.join(allowed)}.",
        {"allowed_methods": allowed},
        headers={"Allow": ", ".join(allowed)},
    )


# Swagger UI's files, copied by the frontend build from the swagger-ui-dist npm package
# (frontend/vite.config.js): the API docs need no CDN, so they render offline.
SWAGGER_DIR = "swagger-ui"

_DOCS_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tsunagu API</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Tsunagu API</h1>
<p>The interactive documentation is part of the web frontend build, which is missing: run
<code>make install</code> (or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>).</p>
<p>The OpenAPI description is at <a href="{openapi}">{openapi}</a>.</p>
</body></html>
"""


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="/{d}/favicon-32x32.png">
<link rel="stylesheet" href="/{d}/swagger-ui.css">
<link rel="stylesheet" href="/{d}/tsunagu-docs.css">
</head><body>
<main id="swagger-ui"></main>
<script src="/{d}/swagger-ui-bundle.js"></script>
<script src="/{d}/tsunagu-docs.js" data-openapi="{openapi}"></script>
</body></html>
"""


def docs_html(openapi_url: str, title: str) -> str:
    """Swagger UI's page from this server's own files: Swagger UI (swagger-ui-dist) and
    ``tsunagu-docs.css`` / ``tsunagu-docs.js`` (frontend/public/swagger-ui), which bring its
    contrast and control names to WCAG 2.2 AA. FastAPI's page loads from a CDN and has no
    ``lang``; nothing here leaves the server."""
    return _DOCS_PAGE.format(
        title=html.escape(title), openapi=html.escape(openapi_url, quote=True), d=SWAGGER_DIR
    )


def mount_api_docs(app: FastAPI, dist: Path | None = None) -> None:
    """Serve Swagger UI at ``<openapi dir>/docs`` from the built frontend's local copy.

    The app is created with ``docs_url=None``: FastAPI's own page loads Swagger UI from a CDN
    and is blank without internet.
    """
    root = (dist or DEFAULT_DIST).resolve()
    openapi_url = app.openapi_url or "/openapi.json"
    docs_url = openapi_url.rsplit("/", 1)[0] + "/docs"

    assets = root / SWAGGER_DIR

    @app.get(f"/{SWAGGER_DIR}/{{name}}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        # Only the build's own files of that folder (no sub-paths: {name} holds no "/").
        path = (assets / name).resolve()
        if not (path.is_file() and path.is_relative_to(assets.resolve())):
            raise ApiError(404, "not_found", f"No file /{SWAGGER_DIR}/{name}.")
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    @app.get(docs_url, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        if not (root / SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(_DOCS_NOT_BUILT.format(openapi=openapi_url))
        return HTMLResponse(docs_html(openapi_url, f"{app.title} API"))


def mount_frontend(app: FastAPI, settings: Settings, dist: Path | None = None) -> None:
    """Add the frontend routes last, after every API router (the API docs among them)."""
    root = (dist or DEFAULT_DIST).resolve()
    index = root / "index.html"
    mount_api_docs(app, root)

    @app.get("/", include_in_schema=False, response_model=None)
    def home() -> FileResponse | HTMLResponse:
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_NOT_BUILT)

    @app.get(CATCH_ALL, include_in_schema=False, response_model=None)
    def spa(path: str, request: Request) -> FileResponse | HTMLResponse:
        if _reserved(path):
            # A GET on a path served with other methods only (POST /api/v1/rides/quote).
            raise method_not_allowed(request.app, f"/{path}")
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
