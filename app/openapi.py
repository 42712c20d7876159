"""The OpenAPI schema as clients generate code from it.

* Stable operation ids, ``<tag>_<function>`` (``rides_quote``, ``trips_book_trip``), instead of
  FastAPI's ids that spell the path and method and change when a path does.
* The real error body: FastAPI's default 422 (``HTTPValidationError``, ``{"detail": [...]}``) is
  never what the API answers; every error answer, including those other parts of the app add
  with an empty schema, refers to :class:`app.api.schemas.ErrorBody`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api.schemas import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def operation_id(route: APIRoute) -> str:
    """``<first tag>_<function name>``: stable across path changes, unique per app."""
    tag = str(route.tags[0]) if route.tags else "default"
    return f"{tag.replace('-', '_')}_{route.name}"


def _fix_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        defs = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in defs.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components["ErrorBody"] = defs
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for code, resp in op.get("responses", {}).items():
                if code[:1] not in ("4", "5"):
                    continue
                media = resp.setdefault("content", {}).setdefault("application/json", {})
                current = media.get("schema") or {}
                if not current or current.get("$ref") == _FASTAPI_422:
                    media["schema"] = dict(ERROR_REF)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def install_openapi(app: FastAPI) -> None:
    """Post-process the schema FastAPI builds (after every other ``app.openapi`` wrapper)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if done and app.openapi_schema is done[0]:
            return done[0]
        schema = build()
        _fix_errors(schema)
        done[:] = [schema]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
