"""The validation report, serialised like gtfs-validator's ``report.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gtfs.notices import Notice, Severity


@dataclass
class ValidationReport:
    """Notices of one feed; ``has_errors`` blocks publishing."""

    notices: list[Notice]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return any(n.severity is Severity.ERROR for n in self.notices)

    def count(self, severity: Severity) -> int:
        return sum(n.total for n in self.notices if n.severity is severity)

    def codes(self) -> set[str]:
        return {n.code for n in self.notices}

    def get(self, code: str) -> Notice | None:
        return next((n for n in self.notices if n.code == code), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "notices": [n.to_json() for n in self.notices],
            "summary": {
                **self.summary,
                "counts": {
                    "errors": self.count(Severity.ERROR),
                    "warnings": self.count(Severity.WARNING),
                    "infos": self.count(Severity.INFO),
                },
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2)
