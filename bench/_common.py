"""Helpers shared by the benchmarks: bench databases beside DATABASE_URL, connections,
pgbench scripts and summaries.

The databases are made the way tests/conftest.py makes its throwaway ones
(CREATE DATABASE ... TEMPLATE template0, then Alembic to head), but under a fixed
name so that `--keep-db` can leave one for the next run. The benchmarks talk to them
as the service does: async psycopg 3 connections from `grid.db.connect`, with the
service's session settings (`grid.db.SESSION_OPTIONS`).

Import this module before anything else that is not the standard library: see below.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# `python bench/x.py` puts bench/ first on sys.path, where bench/http.py would stand in
# for the standard library's `http` package (urllib, httpx, PyJWT and firebase-admin
# import http.client). Put the project root there instead, so that `app`, `grid`,
# `geo` and `tests` are this checkout's, from anywhere.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from psycopg import AsyncConnection, sql  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from app.settings import PROJECT_ROOT, get_settings, libpq_url, sqlalchemy_url  # noqa: E402
from grid.db import SESSION_OPTIONS, Conn, connect_kwargs  # noqa: E402


def server_url() -> str:
    """The owner's URL (WUZHANG_MIGRATION_DATABASE_URL, else DATABASE_URL): it creates the
    bench databases, migrates and loads them."""
    if not (os.environ.get("DATABASE_URL") or get_settings().database_url):
        sys.exit('DATABASE_URL is not set: eval "$(bash scripts/dev.sh db-env)" first')
    return sqlalchemy_url(get_settings().owner_database_url)


def database_url(name: str) -> str:
    """SQLAlchemy URL of database `name` on that server, as the owner (password included)."""
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def app_database_url(name: str) -> str:
    """The same database as the service connects to it: DATABASE_URL's role (wuzhang_app)."""
    app = make_url(sqlalchemy_url(get_settings().database_url))
    return (
        make_url(database_url(name))
        .set(username=app.username, password=app.password)
        .render_as_string(hide_password=False)
    )


def demo_phones(accounts: Any) -> dict[str, str]:
    """The demo accounts' phones under the benchmarks' English keys (the titles are Chinese)."""
    from app.accounts.demo import chief_title

    chiefs = {
        chief_title("rural", "household"): "central household chief",
        chief_title("urban", "floor"): "floor chief",
    }
    roles = {"admin": "admin", "dispatcher": "dispatcher", "leader": "county leader"}
    phones = {}
    for a in accounts:
        key = chiefs.get(a.title) if a.grant is None else roles.get(a.grant.role)
        if key and key not in phones:
            phones[key] = a.phone
    return phones


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(database_url("postgres")), autocommit=True)


def database_exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(name: str) -> str:
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    return database_url(name)


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


async def connect(url: str, *, options: str = SESSION_OPTIONS) -> Conn:
    """A connection as the service opens one (autocommit, dict rows, its session
    settings), to the database at `url`; `options` replaces the session settings."""
    kwargs = {**connect_kwargs(application_name="wuzhang-bench"), "options": options}
    return await AsyncConnection.connect(libpq_url(url), **kwargs)


async def vacuum_analyze(url: str) -> None:
    """Fresh tables have no statistics; the planner needs them to pick the GiST indexes."""
    async with await connect(url) as conn:
        await conn.execute("VACUUM ANALYZE")


def pgbench_script(conn: psycopg.Connection[Any], query: str, params: dict[str, Any], numeric: set[str]) -> str:
    """The statement for pgbench: the `numeric` parameters as pgbench variables (so they
    are bound, as the app binds them), the others as SQL literals of the same values.

    A variable is set by `\\set name value`, so its value may also be a pgbench
    expression (`random(...)`), drawn again for every transaction.
    """
    lines = [f"\\set {k} {params[k]}" for k in sorted(numeric)]

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in numeric:
            return f":{name}"
        return sql.Literal(params[name]).as_string(conn)

    body = re.sub(r"%\((\w+)\)s", value, query).replace("%%", "%")
    # One line, as pgbench reads a command: comments go first, or they would swallow the rest.
    body = "\n".join(line.split("--", 1)[0] for line in body.splitlines())
    return "\n".join(lines) + "\n" + " ".join(body.split()) + ";\n"


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


def print_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    print(f"\n{title}")
    print(f"  {'method':<40} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'per second':>11}")
    for name, r in rows:
        print(
            f"  {name:<40} {fmt(r.get('p50'), 4):>9} {fmt(r.get('p99'), 4):>9} {fmt(r.get('mean'), 4):>9}"
            f" {fmt(r.get('per_s'), 0):>11}"
        )
