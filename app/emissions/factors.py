"""CO2 factors with provenance: loading, checking and using a city's factor table.

A factor table is a TOML or JSON document (``app/emissions/data/japan.toml`` is shipped and is
the default). Every factor carries its value, unit, source and year, and the API shows them
(``GET /api/v1/emissions/factors``). A city's own file (``TSUNAGU_EMISSIONS_FACTORS_PATH``)
either stands alone or says ``extends = "japan"`` (any shipped table's name) and lists only
what it changes; tables are merged key by key.

Sections: ``modes`` (grams per passenger-km: CAR, BUS, RAIL, TAXI, AIR, WALK, BICYCLE...),
``transit_modes`` (each OTP transit mode -> a key of ``modes``), ``fuels`` (kg of CO2 per litre,
kg or Nm3 burnt), ``electricity`` (kg per kWh, national average and per utility, with their
basis), ``vehicles`` (on-demand vehicle types: energy source and use per km),
``road_circuity`` and the scalars ``timezone``, ``electricity_supplier``, ``default_vehicle``,
``on_demand_riders``.

The company features (Scope 1/2 from fuel and electricity use, Scope 3 Cat. 7 average-data
method) price with :meth:`FactorTable.fuel`, :meth:`FactorTable.electricity` and
:meth:`FactorTable.mode` so every line of a report can state the factor it used.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from routing.co2 import Co2Factors

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_TABLE = "japan"


class FactorError(ValueError):
    """A factor table that cannot be read or does not hold together."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Factor(_Strict):
    """One factor and where it comes from.

    ``verified`` says whether the value was found in a published source (``check`` names it,
    with its address, and says what was and was not confirmed); False: as written by hand,
    to be checked before anyone reports with it.
    """

    value: float = Field(ge=0)
    unit: str
    source: str
    year: str
    note: str = ""
    verified: bool = False
    check: str = ""


class EnergyFactor(Factor):
    """kg of CO2 per unit of a fuel or of electricity (``per``: L, kg, Nm3, kWh)."""

    per: Literal["L", "kg", "Nm3", "kWh"]
    basis: str = ""


class VehicleEnergy(_Strict):
    """What an on-demand vehicle type burns per km (``energy``: a fuel or ``electricity``)."""

    energy: str
    energy_per_km: float = Field(gt=0)
    unit: str
    source: str
    year: str
    note: str = ""


class FactorTable(_Strict):
    """A city's factor table (see the module docstring)."""

    name: str
    timezone: str = "Asia/Tokyo"
    electricity_supplier: str
    default_vehicle: str
    on_demand_riders: float = Field(gt=0)
    road_circuity: Factor
    modes: dict[str, Factor]
    transit_modes: dict[str, str]
    fuels: dict[str, EnergyFactor]
    electricity: dict[str, EnergyFactor]
    vehicles: dict[str, VehicleEnergy]

    @model_validator(mode="after")
    def _consistent(self) -> FactorTable:
        for needed in ("CAR", "WALK"):
            if needed not in self.modes:
                raise ValueError(f"modes lacks {needed}")
        for otp, key in self.transit_modes.items():
            if key not in self.modes:
                raise ValueError(f"transit_modes.{otp} names unknown mode {key!r}")
        if self.electricity_supplier not in self.electricity:
            raise ValueError(f"electricity_supplier {self.electricity_supplier!r} not listed")
        if self.default_vehicle not in self.vehicles:
            raise ValueError(f"default_vehicle {self.default_vehicle!r} not in vehicles")
        for name, v in self.vehicles.items():
            if v.energy != "electricity" and v.energy not in self.fuels:
                raise ValueError(f"vehicles.{name}: unknown energy {v.energy!r}")
            per = self.energy(v.energy).per
            if v.unit != f"{per}/km":
                raise ValueError(f"vehicles.{name}: unit {v.unit!r}, expected '{per}/km'")
        if self.road_circuity.value < 1:
            raise ValueError("road_circuity is at least 1")
        return self

    # --- look-ups ------------------------------------------------------------------------
    def mode(self, name: str) -> Factor:
        """The passenger-km factor of a mode (``CAR``, ``BUS``...) or of an OTP transit mode;
        ``KeyError`` when neither."""
        key = name.upper()
        if key in self.modes:
            return self.modes[key]
        return self.modes[self.transit_modes[key]]

    def fuel(self, name: str) -> EnergyFactor:
        """A fuel's factor (``gasoline``, ``diesel``, ``lpg``, ``city_gas``, ``kerosene``)."""
        return self.fuels[name]

    def electricity_factor(self, supplier: str | None = None) -> EnergyFactor:
        """The electricity factor of ``supplier`` (the city's supplier when None)."""
        return self.electricity[supplier or self.electricity_supplier]

    def energy(self, name: str) -> EnergyFactor:
        """A fuel's factor, or the city's electricity factor for ``electricity``."""
        return self.electricity_factor() if name == "electricity" else self.fuel(name)

    def vehicle_g_per_km(self, vehicle_type: str) -> float:
        """Grams of CO2 per vehicle-km of an on-demand vehicle type: energy per km x the
        energy's kg-CO2 per unit x 1000 (the default vehicle's for an unknown type)."""
        v = self.vehicles.get(vehicle_type) or self.vehicles[self.default_vehicle]
        return v.energy_per_km * self.energy(v.energy).value * 1000.0

    def to_routing(self) -> Co2Factors:
        """The factors the planner takes as data (:class:`routing.co2.Co2Factors`)."""
        return Co2Factors(
            transit_g_per_pkm={m: self.mode(m).value for m in self.transit_modes},
            car_g_per_pkm=self.modes["CAR"].value,
            road_circuity=self.road_circuity.value,
            vehicle_g_per_km={t: self.vehicle_g_per_km(t) for t in self.vehicles},
            default_vehicle_g_per_km=self.vehicle_g_per_km(self.default_vehicle),
            on_demand_riders=self.on_demand_riders,
            label=self.name,
        )


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FactorError(f"cannot read the factor table {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise FactorError(f"the factor table {path} is not valid TOML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FactorError(f"the factor table {path} is not a table")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def shipped_table_path(name: str) -> Path:
    """The path of a shipped table (``japan``); ``FactorError`` when there is none."""
    path = DATA_DIR / f"{name}.toml"
    if not name.isidentifier() or not path.is_file():
        raise FactorError(f"no shipped factor table named {name!r}")
    return path


def load_factor_table(path: Path | str | None = None) -> FactorTable:
    """The factor table at ``path`` (the shipped Japanese defaults when None or empty).

    Raises
    ------
    FactorError
        The file is missing, unreadable, extends an unknown table, or is inconsistent.
    """
    data = _read(Path(path) if path else shipped_table_path(DEFAULT_TABLE))
    seen: set[str] = set()
    while "extends" in data:
        parent = str(data.pop("extends"))
        if parent in seen:
            raise FactorError(f"factor tables extend each other in a loop ({parent})")
        seen.add(parent)
        data = _merge(_read(shipped_table_path(parent)), data)
    try:
        return FactorTable.model_validate(data)
    except ValidationError as exc:
        raise FactorError(f"the factor table {path or DEFAULT_TABLE} is invalid: {exc}") from exc


@lru_cache(maxsize=8)
def cached_factor_table(path: str) -> FactorTable:
    """:func:`load_factor_table`, once per path per process (``""``: the defaults)."""
    return load_factor_table(path or None)


def city_factors(settings: Any) -> FactorTable:
    """The factor table configured by ``settings.emissions_factors_path``."""
    path = getattr(settings, "emissions_factors_path", None)
    return cached_factor_table(str(path) if path else "")


def planner_factors(settings: Any) -> Co2Factors:
    """The city's factors as the planner and the on-demand quotes take them."""
    return city_factors(settings).to_routing()
