"""Feed validation modelled on MobilityData's gtfs-validator (same codes, severities, JSON)."""

from gtfs.validation.report import ValidationReport
from gtfs.validation.validate import validate_feed

__all__ = ["ValidationReport", "validate_feed"]
