"""Settings from the environment (and `.data/db.env`, written by `scripts/dev.sh`)."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from grid import people_time
from grid.cases.ledger import Signer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Good enough on a laptop; `create_app` refuses it when WUZHANG_ENV=production.
DEFAULT_JWT_SECRET = "wuzhang-development-secret-do-not-use-in-production"


def sqlalchemy_url(url: str) -> str:
    """Accept plain libpq URLs too; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL for psycopg, psql and pgbench."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=str(PROJECT_ROOT / ".data" / "db.env"), env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="",
        description="PostgreSQL+PostGIS URL; `make run` starts a project-local cluster and sets it.",
    )
    county_code: str = Field(default="610827", alias="WUZHANG_COUNTY_CODE")
    county_name: str = Field(default="米脂县", alias="WUZHANG_COUNTY_NAME")
    # The county's time zone: every time written for a person (inbox, push, exports, the
    # map page) is shown in it; storage and the API stay UTC / ISO 8601 with an offset.
    time_zone: str = Field(default=people_time.DEFAULT_ZONE, alias="WUZHANG_TIME_ZONE")
    host: str = Field(default="127.0.0.1", alias="WUZHANG_HOST")
    port: int = Field(default=8000, alias="WUZHANG_PORT")
    # Per server process. A request holds a connection only while its handler runs, so a
    # few serve many: 10 per process keep a 2-core machine's database busy.
    db_pool_size: int = Field(default=10, ge=1, alias="WUZHANG_DB_POOL_SIZE")
    db_pool_min_size: int = Field(default=2, ge=0, alias="WUZHANG_DB_POOL_MIN_SIZE")
    # How long a request waits for a free connection before it is answered 503.
    db_pool_timeout_s: float = Field(default=5.0, gt=0, alias="WUZHANG_DB_POOL_TIMEOUT_S")
    # A statement of the API running longer than this is cancelled (503); imports and
    # the CLI use connections of their own, without this limit.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, alias="WUZHANG_DB_STATEMENT_TIMEOUT_MS")
    # Request bodies above this are refused (413) before they are read; uploads have
    # their own limits (attachment_max_bytes, import_max_bytes).
    json_max_bytes: int = Field(default=256 * 1024, ge=1024, alias="WUZHANG_JSON_MAX_BYTES")
    # Callers' principals kept per process (dropped by NOTIFY on every change).
    principal_cache_entries: int = Field(default=20_000, ge=0, alias="WUZHANG_PRINCIPAL_CACHE_ENTRIES")
    principal_cache_seconds: float = Field(default=300.0, gt=0, alias="WUZHANG_PRINCIPAL_CACHE_SECONDS")
    # An open inbox stream looks for new notifications this often even without a NOTIFY.
    inbox_poll_s: float = Field(default=15.0, gt=0, alias="WUZHANG_INBOX_POLL_S")
    # `wuzhang serve`: HTTP worker processes (0: one per CPU) and uvicorn's access log.
    workers: int = Field(default=0, ge=0, alias="WUZHANG_WORKERS")
    access_log: bool = Field(default=False, alias="WUZHANG_ACCESS_LOG")
    # Lists are cut into pages of at most this many items.
    page_size_max: int = Field(default=500, alias="WUZHANG_PAGE_SIZE_MAX")
    # Uploaded boundary files above this size are refused (413) before they are read.
    import_max_bytes: int = Field(default=200 * 1024 * 1024, alias="WUZHANG_IMPORT_MAX_BYTES")

    # Ed25519 seed (32 bytes, base64) that signs the case ledger. Unset in development:
    # a key is made once under .data/ and kept there.
    ledger_key: str = Field(default="", alias="WUZHANG_LEDGER_KEY")
    # Also how long a new notification may wait before push: keep it short.
    worker_interval_s: float = Field(default=2.0, alias="WUZHANG_WORKER_INTERVAL_S")
    media_dir: Path = Field(default=PROJECT_ROOT / ".data" / "media", alias="WUZHANG_MEDIA_DIR")
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, alias="WUZHANG_ATTACHMENT_MAX_BYTES")

    # Map and tiles. Grid tiles are cached in-process (entries; seconds before one expires).
    tile_cache_entries: int = Field(default=2048, ge=0, alias="WUZHANG_TILE_CACHE_ENTRIES")
    tile_cache_seconds: float = Field(default=60.0, ge=0, alias="WUZHANG_TILE_CACHE_SECONDS")
    # Optional raster base map under the grid on /map, e.g. a Tianditu or intranet tile
    # server: a URL template with {z}/{x}/{y}. Empty: no base map, no outside request.
    map_basemap_url: str = Field(default="", alias="WUZHANG_MAP_BASEMAP_URL")
    map_basemap_attribution: str = Field(default="", alias="WUZHANG_MAP_BASEMAP_ATTRIBUTION")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        """A typo stops the start instead of showing people the wrong hour."""
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"WUZHANG_TIME_ZONE={v!r} is not a time zone name, e.g. Asia/Shanghai") from None
        return v

    def ledger_signer(self) -> Signer:
        # Every report and action signs: build the key once per process, not per request.
        return _ledger_signer(self.ledger_key, str(PROJECT_ROOT / ".data" / "ledger.key"))

    # Push (FCM through firebase-admin). Unset credentials: a logging sender, so the demo
    # needs no Firebase project.
    fcm_credentials: str = Field(
        default="", alias="WUZHANG_FCM_CREDENTIALS", description="path to a Firebase service-account JSON"
    )
    # Only for tests and drills against a fake FCM server: replaces the send URL
    # (https://fcm.googleapis.com/v1/projects/{0}/messages:send; {0} is the project).
    fcm_url: str = Field(default="", alias="WUZHANG_FCM_URL")
    # A sync send must not block the worker for minutes (urllib3 honours Retry-After).
    fcm_http_timeout_s: float = Field(default=10.0, gt=0, alias="WUZHANG_FCM_HTTP_TIMEOUT_S")
    push_claim: int = Field(default=1000, ge=1, alias="WUZHANG_PUSH_CLAIM")  # notifications per round
    push_ttl_s: int = Field(default=24 * 3600, ge=0, le=28 * 24 * 3600, alias="WUZHANG_PUSH_TTL_S")
    # A claimed row is someone else's to retry after this long (a worker died mid-batch).
    push_lease_s: float = Field(default=120.0, gt=0, alias="WUZHANG_PUSH_LEASE_S")
    push_backoff_base_s: float = Field(default=10.0, ge=0, alias="WUZHANG_PUSH_BACKOFF_BASE_S")
    push_backoff_max_s: float = Field(default=1800.0, ge=0, alias="WUZHANG_PUSH_BACKOFF_MAX_S")
    # Past this age a notification that still cannot be pushed is marked failed (it
    # stays in the inbox).
    push_give_up_after_s: float = Field(default=24 * 3600, gt=0, alias="WUZHANG_PUSH_GIVE_UP_AFTER_S")
    # Whom to ring when a person has no reachable phone: the next chief up the case's
    # chain (recorded in the ledger), or nobody ("off"; the inbox still holds it).
    push_fallback: Literal["chain", "off"] = Field(default="chain", alias="WUZHANG_PUSH_FALLBACK")

    # Accounts and tokens.
    # A Literal, so a typo such as "prod" stops the service instead of running it as development.
    env: Literal["development", "production"] = Field(default="development", alias="WUZHANG_ENV")
    jwt_secret: SecretStr = Field(default=SecretStr(DEFAULT_JWT_SECRET), alias="WUZHANG_JWT_SECRET")
    access_token_minutes: int = Field(default=15, ge=1, alias="WUZHANG_ACCESS_TOKEN_MINUTES")
    refresh_token_days: int = Field(default=30, ge=1, alias="WUZHANG_REFRESH_TOKEN_DAYS")
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory). Tests lower them.
    argon2_time_cost: int = Field(default=3, ge=1, alias="WUZHANG_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(default=65536, ge=8, alias="WUZHANG_ARGON2_MEMORY_KIB")
    # Failed logins before a lockout, per phone and per address; each further
    # failure doubles the lockout, from `login_lockout_seconds` up to a day.
    login_max_failures_phone: int = Field(default=5, ge=1, alias="WUZHANG_LOGIN_MAX_FAILURES_PHONE")
    login_max_failures_ip: int = Field(default=30, ge=1, alias="WUZHANG_LOGIN_MAX_FAILURES_IP")
    login_lockout_seconds: int = Field(default=60, ge=1, alias="WUZHANG_LOGIN_LOCKOUT_SECONDS")

    def refuse_unsafe_production(self) -> None:
        """Production must not sign tokens with a secret that is published in the source."""
        if self.env != "production":
            return
        secret = self.jwt_secret.get_secret_value()
        if secret == DEFAULT_JWT_SECRET or len(secret) < 32:
            raise RuntimeError(
                "WUZHANG_ENV=production needs WUZHANG_JWT_SECRET set to a random string of at least 32 "
                'characters, e.g. the output of: python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if not self.ledger_key:
            raise RuntimeError(
                "WUZHANG_ENV=production needs WUZHANG_LEDGER_KEY (32 random bytes, base64), e.g. the output of: "
                'python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"'
            )
        self.ledger_signer()  # a malformed key stops the start, not the first report

    @property
    def sqlalchemy_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. `make run` starts the project's own PostGIS and sets it; "
                "or export DATABASE_URL=postgresql://user:password@host:port/dbname"
            )
        return sqlalchemy_url(self.database_url)


@lru_cache
def _ledger_signer(ledger_key: str, dev_key_file: str) -> Signer:
    if ledger_key:
        return Signer.from_seed(ledger_key)
    key_file = Path(dev_key_file)
    if not key_file.exists():  # development only: a key made once and kept under .data/
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return Signer.from_seed(key_file.read_text().strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
