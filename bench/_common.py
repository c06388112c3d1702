"""Helpers shared by the benchmarks: bench databases beside DATABASE_URL, and summaries.

The databases are made the way tests/conftest.py makes its throwaway one
(CREATE DATABASE ... TEMPLATE template0, then Alembic to head), but under a fixed
name so that `--keep-db` can leave one for the next run.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from anywhere

from app.settings import PROJECT_ROOT, get_settings, libpq_url, sqlalchemy_url  # noqa: E402

# The app's own setting (app/db.py): a point lookup must never start parallel workers.
NO_PARALLEL = "-c max_parallel_workers_per_gather=0"


def server_url() -> str:
    url = os.environ.get("DATABASE_URL") or get_settings().database_url
    if not url:
        sys.exit('DATABASE_URL is not set: eval "$(bash scripts/dev.sh db-env)" first')
    return sqlalchemy_url(url)


def database_url(name: str) -> str:
    """SQLAlchemy URL of database `name` on the DATABASE_URL server (password included)."""
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def _admin() -> psycopg.Connection:
    return psycopg.connect(libpq_url(database_url("postgres")), autocommit=True)


def database_exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(name: str) -> str:
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    return database_url(name)


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def summary(ns: list[int] | np.ndarray, wall_s: float) -> dict[str, float]:
    """p50 / p99 / mean in ms from per-call nanoseconds; calls per second over the loop's wall time."""
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "per_s": len(ms) / wall_s,
    }


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(title: str, rows: list[tuple[str, dict[str, float | None]]]) -> None:
    print(f"\n{title}")
    print(f"  {'method':<40} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'per second':>11}")
    for name, r in rows:
        print(
            f"  {name:<40} {fmt(r.get('p50'), 4):>9} {fmt(r.get('p99'), 4):>9} {fmt(r.get('mean'), 4):>9}"
            f" {fmt(r.get('per_s'), 0):>11}"
        )
