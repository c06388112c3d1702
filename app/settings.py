"""Settings from the environment (and `.data/db.env`, written by `scripts/dev.sh`)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    host: str = Field(default="127.0.0.1", alias="WUZHANG_HOST")
    port: int = Field(default=8000, alias="WUZHANG_PORT")
    db_pool_size: int = Field(default=10, alias="WUZHANG_DB_POOL_SIZE")
    # Lists are cut into pages of at most this many items.
    page_size_max: int = Field(default=500, alias="WUZHANG_PAGE_SIZE_MAX")
    # Uploaded boundary files above this size are refused (413) before they are read.
    import_max_bytes: int = Field(default=200 * 1024 * 1024, alias="WUZHANG_IMPORT_MAX_BYTES")

    @property
    def sqlalchemy_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. `make run` starts the project's own PostGIS and sets it; "
                "or export DATABASE_URL=postgresql://user:password@host:port/dbname"
            )
        return sqlalchemy_url(self.database_url)


@lru_cache
def get_settings() -> Settings:
    return Settings()
