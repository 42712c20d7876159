"""All of Tsunagu's configuration, in one place.

Every value can be set by an environment variable prefixed ``TSUNAGU_`` (or ``DATABASE_URL`` /
``REDIS_URL`` unprefixed, as most platforms inject them) or by a ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from routing.street import TimeOfDaySpeeds

REPO_ROOT = Path(__file__).resolve().parent.parent


#: Settings holding a URL that may carry a password (masked wherever they are shown).
URL_SETTINGS = frozenset(
    {"database_url", "redis_url", "emissions_database_url", "health_database_url"}
)


def mask_url_password(text: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://user:***@host``; other text unchanged."""
    if "://" not in text or "@" not in text:
        return text
    scheme, _, rest = text.partition("://")
    creds, _, host = rest.rpartition("@")
    if ":" not in creds:
        return text
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


class Settings(BaseSettings):
    """Runtime settings of the Tsunagu service."""

    model_config = SettingsConfigDict(
        env_prefix="TSUNAGU_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- service -------------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = Field(
        "development", description="development | test (fast password hashing) | production."
    )
    host: str = Field("127.0.0.1", description="Address `tsunagu serve` listens on.")
    port: int = Field(8000, description="Port `tsunagu serve` listens on.")
    keep_alive_s: int = Field(
        65,
        ge=1,
        le=3600,
        description=(
            "Seconds `tsunagu serve` keeps an idle HTTP connection open. Longer than the"
            " clients' and proxies' own idle limits (httpx 5 s, browsers, load balancers 60 s),"
            " so the server never closes a connection just as a client reuses it."
        ),
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(False, description="One JSON object per log line (for log shippers).")
    max_body_bytes: int = Field(1_000_000, description="Largest JSON request body accepted.")
    max_upload_bytes: int = Field(
        100_000_000, description="Largest GTFS upload accepted (zip, compressed)."
    )
    plan_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Trip plans computed at once per process; more wait their turn (FIFO).",
    )
    gc_freeze_on_start: bool = Field(
        True,
        description="Move the start-up heap out of the garbage collector's sight once started.",
    )
    gil_switch_interval_ms: float = Field(
        1.0,
        gt=0,
        le=100,
        description="How long a thread may keep the GIL while another waits (Python: 5 ms).",
    )

    # --- persistence ---------------------------------------------------------------------
    data_dir: Path = Field(REPO_ROOT / "var", description="Artifacts: feeds, keys, caches.")
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_URL", "TSUNAGU_DATABASE_URL"),
        description="SQLAlchemy URL; empty means a SQLite file in data_dir.",
    )
    migrate_on_start: bool = Field(
        True, description="Apply Alembic migrations at start (else refuse a stale schema)."
    )

    # --- live events -----------------------------------------------------------------------
    redis_url: str = Field(
        "",
        validation_alias=AliasChoices("REDIS_URL", "TSUNAGU_REDIS_URL"),
        description="redis://host:port/db; empty means in-process events.",
    )
    event_stream_maxlen: int = Field(
        100_000, description="Entries kept per work stream (approximate trim)."
    )
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
    jwt_issuer: str = Field("tsunagu", description="`iss` of the built-in access tokens.")
    jwt_audience: str = Field(
        "tsunagu", description="`aud` of the built-in access tokens (and default OIDC audience)."
    )
    access_token_ttl_s: int = Field(900, description="Access token lifetime (s).")
    refresh_token_ttl_s: int = Field(30 * 24 * 3600, description="Refresh token lifetime (s).")
    oidc_issuer: str = Field("", description="External OIDC issuer URL; empty = built-in.")
    oidc_jwks_url: str = Field(
        "", description="JWKS of the OIDC issuer; empty = found by OpenID discovery."
    )
    oidc_audience: str = Field(
        "", description="Audience expected in OIDC tokens; empty = jwt_audience."
    )
    oidc_roles_claim: str = Field(
        "roles",
        description="Claim path of the roles in OIDC tokens (Keycloak: realm_access.roles).",
    )
    login_rate_limit_per_minute: int = Field(
        10, description="Login attempts per email and client address per minute."
    )
    admin_email: str = Field(
        "", description="Bootstrap this administrator at start (with admin_password)."
    )
    admin_password: SecretStr = Field(
        SecretStr(""), description="Password of the bootstrapped administrator."
    )

    # --- feeds & demo ----------------------------------------------------------------------
    demo: bool = Field(True, description="Load the demo city on first start.")
    demo_feed_path: Path = Field(
        REPO_ROOT / "app" / "demo_data" / "jp_donan_bus_muroran.zip",
        description="GTFS feed of the demo city.",
    )
    osm_path: Path | None = Field(
        None, description="OSM PBF for walking and driving; empty = straight-line model."
    )
    shared_data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        description="Real data sets (benchmarks, `tsunagu simulate`).",
    )
    map_tile_url: str = Field(
        "",
        description="XYZ raster tile template (for Japan, GSI's "
        "`https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png`); empty = the city drawn "
        "from local data only (stops and route lines).",
    )
    map_tile_attribution: str = Field(
        "",
        description="Credit shown on the map for the tiles (HTML allowed; for GSI: "
        '`<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>`).',
    )
    dispatch_demo_vehicles: int = Field(
        4, ge=0, description="Vans of the demo on-demand zone (besides its autonomous shuttle)."
    )
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
    dispatch_persist_interval_s: float = Field(
        10.0, gt=0, description="Seconds between saves of the dispatcher's zones and rides."
    )
    dispatch_speed_windows: str = Field(
        "",
        description="Time-of-day driving speed factors of live dispatch, zone-local, e.g. "
        "`07:00-09:00=0.7,17:00-19:00=0.7` (30 % slower); empty = free flow.",
    )
    dispatch_reply_timeout_s: float = Field(
        5.0,
        gt=0,
        description="With REDIS_URL: how long a process waits for a zone owner's answer "
        "(then 202 pending for a booking, 503 dispatch_busy otherwise).",
    )
    dispatch_lease_ttl_s: float = Field(
        6.0,
        gt=0,
        description="With REDIS_URL: lifetime of a zone lease; a crashed owner's zones are "
        "taken over after at most this long.",
    )
    dispatch_catalog_interval_s: float = Field(
        2.0, gt=0, description="With REDIS_URL: seconds between re-reads of the zone catalog."
    )
    trip_hold_s: float = Field(
        120.0,
        gt=0,
        description="How long a trip booked with confirm=false holds its on-demand seats "
        "(and how long a booking left unfinished by a crash may keep them) before it expires.",
    )
    trip_sweep_interval_s: float = Field(
        5.0, gt=0, description="Seconds between passes of the sweeper expiring held trips."
    )
    trip_idempotency_wait_s: float = Field(
        10.0,
        ge=0,
        description="How long a retried trip booking waits for the first attempt to finish "
        "(then 409 in_progress).",
    )
    idempotency_ttl_s: float = Field(
        86400.0,
        gt=0,
        description="How long the answer of a request sent with an Idempotency-Key is kept "
        "for its retries.",
    )
    idempotency_wait_s: float = Field(
        10.0,
        ge=0,
        description="How long a retry with an Idempotency-Key waits for the first attempt to "
        "finish (then 409 request_in_progress).",
    )
    idempotency_sweep_interval_s: float = Field(
        300.0, gt=0, description="Seconds between deletions of expired idempotency keys."
    )
    trip_guard_interval_s: float = Field(
        15.0,
        ge=0,
        description="Seconds between checks of booked trips' connections against realtime "
        "(a late feeder bus moves the on-demand pick-up); 0 = off.",
    )
    realtime_poll_url: str = Field(
        "", description="GTFS-RT URL(s) to poll, comma-separated; empty = off."
    )
    realtime_poll_interval_s: float = Field(30.0, description="Seconds between GTFS-RT polls.")
    realtime_poll_timeout_s: float = Field(10.0, description="Timeout of one GTFS-RT fetch (s).")
    feeds_sync_interval_s: float = Field(
        5.0, description="How often a worker adopts publishes made elsewhere; 0 = never."
    )
    calendar_mapping: Literal["auto", "off"] = Field(
        "auto",
        description="auto: when the published feeds' calendar does not cover today, dates from "
        "7 days back to 60 ahead run the trips of the same weekday nearest to their month/day in "
        "the feed (`GET /api/v1/network` lists them), so plans, realtime and on-demand rides "
        "share today's clock; off: never (the default date is then a date inside the feed).",
    )

    # --- emissions service (app/emissions) ----------------------------------------------------
    emissions_database_url: str = Field(
        "",
        description="SQLAlchemy URL of the emissions service's own tables; empty = the app's "
        "database.",
    )
    emissions_factors_path: Path | None = Field(
        None,
        description="The city's CO2 factor table (TOML or JSON, may say `extends = japan`); "
        "empty = the shipped Japanese defaults (MLIT, Ministry of the Environment).",
    )
    # --- health service (app/health) ----------------------------------------------------------
    health_database_url: str = Field(
        "",
        description="SQLAlchemy URL of the health service's own tables (checkups, consents, "
        "audit log); empty = the app's database.",
    )
    identity_jwks_url: str = Field(
        "",
        description="`tsunagu serve --service emissions|health`: the identity store's JWKS URL "
        "(e.g. http://core:8000/.well-known/jwks.json); tokens are checked against it with "
        "jwt_issuer and jwt_audience.",
    )
    core_url: str = Field(
        "",
        description="`tsunagu serve --service health`: the mobility core's base URL (e.g. "
        "http://core:8000); a watcher's booking, change or cancellation of a watched "
        "resident's ride is forwarded there (with the watcher's token and an Idempotency-Key). "
        "Empty: those answer 501 when the service runs alone.",
    )
    health_service_url: str = Field(
        "",
        description="The core: the health service's base URL when it runs as its own process "
        "(e.g. http://health:8001); the core asks it whether a watcher's watch-over consent is "
        "in force before acting on a resident's ride for them. Empty: the health service of "
        "this process.",
    )
    service_call_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of a call between the core and the health service."
    )
    service_retry_after_s: int = Field(
        5, ge=1, description="Retry-After (s) of a 503 when the other service cannot answer."
    )

    def __repr_args__(self) -> Any:
        # repr() and str() of the settings end up in logs and tracebacks: the secrets are
        # SecretStr (shown as '**********'), and a password inside a URL is masked.
        for name, value in super().__repr_args__():
            if name in URL_SETTINGS and isinstance(value, str):
                value = mask_url_password(value)
            yield name, value

    @field_validator("dispatch_speed_windows")
    @classmethod
    def _speed_windows_parse(cls, v: str) -> str:
        # Fail at start-up with the offending window named, not at the first quote.
        from dispatch.time_dependent import parse_speed_windows

        parse_speed_windows(v)
        return v

    @property
    def speed_windows(self) -> TimeOfDaySpeeds | None:
        """``dispatch_speed_windows`` parsed; None = free flow."""
        from dispatch.time_dependent import parse_speed_windows

        speeds = parse_speed_windows(self.dispatch_speed_windows)
        return speeds if speeds.windows else None

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

    @property
    def effective_emissions_database_url(self) -> str:
        """The emissions service's database: its own URL, else the app's."""
        return self._service_url(self.emissions_database_url)

    @property
    def effective_health_database_url(self) -> str:
        """The health service's database: its own URL, else the app's."""
        return self._service_url(self.health_database_url)

    def _service_url(self, url: str) -> str:
        """A secondary service's database URL (empty: the app's), with an explicit driver."""
        if not url:
            return self.effective_database_url
        for plain in ("postgres://", "postgresql://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
