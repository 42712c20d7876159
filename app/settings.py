"""All of Tsunagu's configuration, in one place.

Every value can be set by an environment variable prefixed ``TSUNAGU_`` (or ``DATABASE_URL`` /
``REDIS_URL`` unprefixed, as most platforms inject them) or by a ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime settings of the Tsunagu service."""

    model_config = SettingsConfigDict(
        env_prefix="TSUNAGU_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- service -------------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    max_body_bytes: int = Field(1_000_000, description="Largest JSON request body accepted.")
    max_upload_bytes: int = Field(
        100_000_000, description="Largest GTFS upload accepted (zip, compressed)."
    )

    # --- persistence ---------------------------------------------------------------------
    data_dir: Path = Field(REPO_ROOT / "var", description="Artifacts: feeds, keys, caches.")
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_URL", "TSUNAGU_DATABASE_URL"),
        description="SQLAlchemy URL; empty means a SQLite file in data_dir.",
    )
    migrate_on_start: bool = True

    # --- live events -----------------------------------------------------------------------
    redis_url: str = Field(
        "",
        validation_alias=AliasChoices("REDIS_URL", "TSUNAGU_REDIS_URL"),
        description="redis://host:port/db; empty means in-process events.",
    )
    event_stream_maxlen: int = 100_000
    redis_prefix: str = Field(
        default="tsunagu:", description="Prefix of every Redis key and channel."
    )
    event_subscriber_queue: int = Field(
        default=1000, description="Undelivered events kept per subscriber (oldest dropped beyond)."
    )
    event_keepalive_s: float = Field(default=15.0, description="SSE keep-alive comment interval.")

    # --- identity --------------------------------------------------------------------------
    jwt_private_key_path: Path | None = Field(
        None, description="PEM RSA private key; generated in data_dir when absent."
    )
    jwt_issuer: str = "tsunagu"
    jwt_audience: str = "tsunagu"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    oidc_issuer: str = Field("", description="External OIDC issuer URL; empty = built-in.")
    oidc_jwks_url: str = ""
    oidc_audience: str = ""
    oidc_roles_claim: str = "roles"
    login_rate_limit_per_minute: int = 10
    admin_email: str = ""
    admin_password: str = ""

    # --- feeds & demo ----------------------------------------------------------------------
    demo: bool = Field(True, description="Load the demo city on first start.")
    demo_feed_path: Path = REPO_ROOT / "app" / "demo_data" / "jp_donan_bus_muroran.zip"
    osm_path: Path | None = None
    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    map_tile_url: str = Field("", description="XYZ tile template; empty = local GeoJSON only.")
    dispatch_demo_vehicles: int = Field(6, ge=0, description="Vans of the demo on-demand zone.")
    demo_fleet: bool = Field(
        True, description="With demo: an on-demand zone and fleet in the demo city (Muroran)."
    )
    demo_riders_per_hour: float = Field(
        30.0, ge=0, description="Simulated riders' requests per hour of demo time; 0 = none."
    )
    demo_time_scale: float = Field(
        1.0, gt=0, le=3600, description="Demo seconds per wall second (1 = real time)."
    )
    demo_tick_s: float = Field(1.0, gt=0, description="Wall seconds between simulation steps.")
    demo_seed: int = Field(7, description="Seed of the simulated riders.")
    dispatch_reopt_interval_s: float = Field(
        60.0, ge=0, description="Seconds between re-optimisations of the live plans; 0 = off."
    )
    dispatch_reopt_time_limit_s: float = Field(2.0, gt=0, description="Solver time per zone.")
    realtime_poll_url: str = Field(
        "", description="GTFS-RT URL(s) to poll, comma-separated; empty = off."
    )
    realtime_poll_interval_s: float = 30.0
    realtime_poll_timeout_s: float = 10.0
    feeds_sync_interval_s: float = Field(
        5.0, description="How often a worker adopts publishes made elsewhere; 0 = never."
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Platforms hand out postgres:// URLs; SQLAlchemy wants an explicit driver.
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.data_dir / 'tsunagu.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
