"""Base class of every API request body: unknown fields are an error (422), not ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Subclass this for request bodies: ``extra="forbid"`` rejects misspelt or unexpected
    fields, and strings are stripped of surrounding whitespace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
