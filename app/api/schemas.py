"""What the OpenAPI schema says every operation may answer besides success.

Every failure has one body, :class:`ErrorBody` (``{"error": {"code", "message", "details"}}``,
built by :mod:`app.errors`). Routers declare the statuses they can answer with
:func:`error_responses`, at router level (``APIRouter(responses=...)``) for what every one of
their routes may answer, and per route for the rest (404, 409...).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`.")
    message: str = Field(description="Human-readable explanation (English).")
    details: Any = Field(
        None,
        description="Structured context: the offending fields of a 422 (`loc`, `type`, `msg`), "
        "`retry_after_s`, the rejected trip...",
    )


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": {
                    "code": "validation_error",
                    "message": "Request does not match the expected schema.",
                    "details": [
                        {"loc": ["query", "limit"], "type": "less_than_equal", "msg": "..."}
                    ],
                }
            }
        }
    )

    error: ErrorDetail


class OpenModel(BaseModel):
    """A response object whose main fields are declared; others are passed on as they are."""

    model_config = ConfigDict(extra="allow")


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: a body that is not valid JSON (`malformed_json`), a parameter the "
    "route cannot read (`invalid_date`, `invalid_place`...), or an invalid Idempotency-Key.",
    401: "No, malformed or expired access token (`token_missing`, `token_invalid`, "
    "`token_expired`).",
    403: "The caller lacks the role or the right (`forbidden`, `account_disabled`).",
    404: "No such resource (`not_found`, `unknown_*`).",
    409: "Conflict with the current state (the code says which), or `request_in_progress` for "
    "an Idempotency-Key still being handled.",
    413: "Request body over the size limit (`payload_too_large`).",
    415: "Body in a media type the route does not read (`unsupported_media_type`).",
    422: "Request that does not match the schema (`validation_error`, details list the "
    "fields) or that the route refuses (its code says why).",
    429: "Too many attempts (`too_many_attempts`); see Retry-After.",
    503: "A backend (database, Redis, dispatcher, feed registry) is briefly unavailable; "
    "retry after Retry-After seconds when it is sent.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries declaring :class:`ErrorBody` for ``codes``."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        text = _DESCRIPTIONS.get(code) or HTTPStatus(code).phrase
        entry: dict[str, Any] = {"model": ErrorBody, "description": text}
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        if code == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
        out[code] = entry
    return out


#: Any operation under /api/v1: bad parameters, backend outage.
PUBLIC = error_responses(400, 422, 503)
#: Operations taking a JSON body.
BODY = error_responses(400, 413, 415, 422)
#: Operations needing a signed-in caller.
AUTHED = error_responses(400, 401, 403, 422, 503)
