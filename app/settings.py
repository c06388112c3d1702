"""Settings from the environment (and `.data/db.env`, written by `scripts/dev.sh`)."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from grid import people_time
from grid.cases.ledger import Signer, key_id_of, public_key_from_b64
from grid.cases.sections import REQUIRED, Requirements, rules_from_json
from grid.stats.definitions import Exclusions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Good enough on a laptop; `create_app` refuses it when WUZHANG_ENV=production.
DEFAULT_JWT_SECRET = "wuzhang-development-secret-do-not-use-in-production"
# The development ledger key, made once when WUZHANG_LEDGER_KEY is unset.
DEV_LEDGER_KEY_FILE = PROJECT_ROOT / ".data" / "ledger.key"


def sqlalchemy_url(url: str) -> str:
    """Accept plain libpq URLs too; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _database_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


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
    # The owner role's URL, for migrations only; the service connects with DATABASE_URL, as
    # the role `wuzhang_app` (migration 0112). Unset: migrations use DATABASE_URL (one role).
    migration_database_url: str = Field(default="", alias="WUZHANG_MIGRATION_DATABASE_URL")
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
    # A roster file with a data row past this row is refused: 9,000 chiefs with room to spare.
    import_max_rows: int = Field(default=50_000, ge=1, alias="WUZHANG_IMPORT_MAX_ROWS")

    # Ed25519 seed (32 bytes, base64) that signs the case ledger. Unset in development:
    # a key is made once under .data/ and kept there.
    ledger_key: str = Field(default="", alias="WUZHANG_LEDGER_KEY")
    # The ledger's other trusted public keys (retired ones, after `wuzhang ledger rotate-key`):
    # a file, one base64 public key a line. Configuration, never the database: whoever
    # controls the database must not be able to add a key the ledger trusts. A missing file
    # is an empty keyring.
    ledger_keyring: Path = Field(default=PROJECT_ROOT / ".data" / "ledger-keyring", alias="WUZHANG_LEDGER_KEYRING")
    # Also how long a new notification may wait before push: keep it short.
    worker_interval_s: float = Field(default=2.0, alias="WUZHANG_WORKER_INTERVAL_S")
    # 督办: days past its due day a task not done escalates to its meeting's chair.
    task_escalate_after_days: int = Field(default=7, ge=0, le=3650, alias="WUZHANG_TASK_ESCALATE_AFTER_DAYS")
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

    # 六公开: the sections required before resolve and close (grid/cases/sections.py,
    # docs/workflow.md). Empty: the table in the code; else a JSON list that replaces it.
    required_sections: str = Field(default="", alias="WUZHANG_REQUIRED_SECTIONS")
    # The address residents reach this service at: the public notices' and agreements' QR
    # codes and links point here.
    public_base_url: str = Field(default="http://127.0.0.1:8000", alias="WUZHANG_PUBLIC_BASE_URL")
    # A TrueType font with Chinese glyphs for the PDFs (.ttf or .ttc). Empty: the first of
    # Debian's CJK fonts found (fonts-wqy-microhei, fonts-noto-cjk, ...).
    pdf_font: str = Field(default="", alias="WUZHANG_PDF_FONT")

    @field_validator("required_sections")
    @classmethod
    def _check_required_sections(cls, value: str) -> str:
        if value.strip():
            rules_from_json(value)  # a ValueError stops the start, naming the rule
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"WUZHANG_PUBLIC_BASE_URL must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    def section_requirements(self) -> Requirements:
        return _requirements(self.required_sections)

    def ledger_signer(self) -> Signer:
        # Every report and action signs: build the key once per process, not per request.
        return _ledger_signer(self.ledger_key, str(DEV_LEDGER_KEY_FILE))

    def ledger_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key the ledger trusts, by key id: the signing key's and the keyring's.
        The file is read again when it changes (a rotation appends to it)."""
        signer = self.ledger_signer()
        try:
            stat = self.ledger_keyring.stat()
            version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            version = None
        return {**_keyring(str(self.ledger_keyring), version), signer.key_id: signer.public_key}

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
    # A person still unreachable on the same case within this long of the run's first
    # push_unreachable event is counted, not signed again (docs/push.md).
    push_unreachable_fold_s: float = Field(default=24 * 3600, ge=0, alias="WUZHANG_PUSH_UNREACHABLE_FOLD_S")

    # Accounts and tokens.
    # A Literal, so a typo such as "prod" stops the service instead of running it as development.
    env: Literal["development", "production"] = Field(default="development", alias="WUZHANG_ENV")
    jwt_secret: SecretStr = Field(default=SecretStr(DEFAULT_JWT_SECRET), alias="WUZHANG_JWT_SECRET")
    access_token_minutes: int = Field(default=15, ge=1, alias="WUZHANG_ACCESS_TOKEN_MINUTES")
    refresh_token_days: int = Field(default=30, ge=1, alias="WUZHANG_REFRESH_TOKEN_DAYS")
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory). Tests lower them.
    argon2_time_cost: int = Field(default=3, ge=1, alias="WUZHANG_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(default=65536, ge=8, alias="WUZHANG_ARGON2_MEMORY_KIB")
    # Failed logins (docs/accounts.md, "Failed logins"). Per phone *and* address: after
    # this many in a row that phone is locked for that address only, `login_lockout_seconds`
    # doubled by each further failure, up to a day.
    login_max_failures_pair: int = Field(default=5, ge=1, alias="WUZHANG_LOGIN_MAX_FAILURES_PAIR")
    login_lockout_seconds: int = Field(default=60, ge=1, alias="WUZHANG_LOGIN_LOCKOUT_SECONDS")
    # Per phone from every address: past this many failures in a row each further try waits
    # a cool-down (1 s, doubled each time, at most `login_slowdown_max_seconds`), never a lockout.
    login_slow_after_failures_phone: int = Field(default=20, ge=1, alias="WUZHANG_LOGIN_SLOW_AFTER_FAILURES_PHONE")
    login_slowdown_max_seconds: int = Field(default=30, ge=1, alias="WUZHANG_LOGIN_SLOWDOWN_MAX_SECONDS")
    # Per address, whatever the phone: a burst of this many failures, then one for every
    # `login_ip_leak_seconds` (100 and 36 s: 100 an hour). High, because a township office
    # shares one address behind NAT, and each person's typos stop at their own pair lock.
    login_max_failures_ip: int = Field(default=100, ge=1, alias="WUZHANG_LOGIN_MAX_FAILURES_IP")
    login_ip_leak_seconds: float = Field(default=36.0, gt=0, alias="WUZHANG_LOGIN_IP_LEAK_SECONDS")
    # Only from these peers (addresses or CIDRs, comma-separated) is X-Forwarded-For believed;
    # from anyone else the peer's own address is the client. Empty: no proxy is trusted.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="WUZHANG_TRUSTED_PROXIES")
    # A new password must score at least this on zxcvbn's 0-4 scale (3: "safely unguessable").
    password_min_score: int = Field(default=3, ge=0, le=4, alias="WUZHANG_PASSWORD_MIN_SCORE")
    # GET /metrics wants `Authorization: Bearer <this>`; unset, /metrics answers 404.
    metrics_token: SecretStr = Field(default=SecretStr(""), alias="WUZHANG_METRICS_TOKEN")
    # The database's figures behind /metrics are read again at most this often, in the background.
    metrics_refresh_s: float = Field(default=30.0, gt=0, alias="WUZHANG_METRICS_REFRESH_S")
    # The county's figures (docs/statistics.md): what the success rate leaves out of its
    # denominator. Categories (comma-separated codes), and failures whose case is still
    # being handled further up (counted once settled). Default: nothing left out.
    stats_exclude_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="WUZHANG_STATS_EXCLUDE_CATEGORIES"
    )
    stats_exclude_open_failures: bool = Field(default=False, alias="WUZHANG_STATS_EXCLUDE_OPEN_FAILURES")

    @field_validator("stats_exclude_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value

    def stats_exclusions(self) -> Exclusions:
        return Exclusions(categories=tuple(self.stats_exclude_categories),
                          open_failures=self.stats_exclude_open_failures)  # fmt: skip

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
        for part in parts if isinstance(parts, list) else []:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"WUZHANG_TRUSTED_PROXIES: {part!r} is not an IP address or a CIDR network") from None
        return parts

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
        self.ledger_keys()  # a malformed key or keyring stops the start, not the first report

    @property
    def sqlalchemy_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. `make run` starts the project's own PostGIS and sets it; "
                "or export DATABASE_URL=postgresql://user:password@host:port/dbname"
            )
        return sqlalchemy_url(self.database_url)

    @property
    def owner_database_url(self) -> str:
        """Where migrations run: WUZHANG_MIGRATION_DATABASE_URL, else DATABASE_URL."""
        app = self.sqlalchemy_database_url
        if not self.migration_database_url:
            return app
        owner = sqlalchemy_url(self.migration_database_url)
        # Both come from the environment or .data/db.env: a DATABASE_URL exported for another
        # server beside a db.env of the local cluster must not migrate the wrong database.
        if _database_of(owner) != _database_of(app):
            raise RuntimeError(
                "WUZHANG_MIGRATION_DATABASE_URL and DATABASE_URL name different databases "
                f"({_database_of(owner)} and {_database_of(app)}); set both for the same database"
            )
        return owner


@lru_cache(maxsize=4)
def _requirements(text: str) -> Requirements:
    return Requirements(rules_from_json(text)) if text.strip() else REQUIRED


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


def forget_ledger_signer() -> None:
    """After a rotation in this process: the next signature uses the new key."""
    _ledger_signer.cache_clear()


@lru_cache(maxsize=8)
def _keyring(path: str, version: tuple[int, int] | None) -> dict[str, Ed25519PublicKey]:
    return {} if version is None else read_keyring(Path(path))


def read_keyring(path: Path) -> dict[str, Ed25519PublicKey]:
    """Lines `<base64 public key> [anything]`; blank lines and `#` comments are skipped."""
    keys: dict[str, Ed25519PublicKey] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            key = public_key_from_b64(words[0])
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: not a ledger public key ({exc})") from None
        keys[key_id_of(key)] = key
    return keys


@lru_cache
def get_settings() -> Settings:
    return Settings()
