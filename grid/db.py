"""How the domain talks to PostgreSQL: psycopg 3, async, every row a dict.

Every SQL function takes a `Conn` first. Connections are in autocommit mode, so a lone
statement is its own transaction and a read costs one round trip (no BEGIN, no
ROLLBACK). A use case that writes several statements wraps them in
`async with conn.transaction():`, which is a savepoint when a transaction is already
open (the tests run each test inside one that is rolled back).

Parameters are psycopg's `%(name)s`; a literal `%` in SQL is written `%%`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row

Conn: TypeAlias = AsyncConnection[DictRow]
Row: TypeAlias = dict[str, Any]
Query: TypeAlias = str | sql.Composable
Params: TypeAlias = Mapping[str, Any] | Sequence[Any] | None

# Every connection of the service, pooled or not, gets these session settings.
# Parallel query turns a 0.3 ms point lookup into 13 ms at a million polygons (the
# planner misjudges ST_Covers), and JIT compiles costly-looking tile queries for
# longer than they run: this is an OLTP service, so both are off.
SESSION_OPTIONS = "-c max_parallel_workers_per_gather=0 -c jit=off"


def connect_kwargs(*, application_name: str = "wuzhang", statement_timeout_ms: int | None = None) -> dict[str, Any]:
    """Keyword arguments for `AsyncConnection.connect` (and the pool's `kwargs`)."""
    options = SESSION_OPTIONS
    if statement_timeout_ms:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    return {"autocommit": True, "row_factory": dict_row, "application_name": application_name, "options": options}


async def connect(url: str, *, application_name: str = "wuzhang") -> Conn:
    """A connection of its own (the CLI, the worker, a long import): not from the pool."""
    return await AsyncConnection.connect(url, **connect_kwargs(application_name=application_name))


async def fetch_all(conn: Conn, query: Query, params: Params = None, *, prepare: bool | None = None) -> list[Row]:
    cur = await conn.execute(query, params, prepare=prepare)  # type: ignore[arg-type]
    return await cur.fetchall()


async def fetch_one(conn: Conn, query: Query, params: Params = None, *, prepare: bool | None = None) -> Row | None:
    cur = await conn.execute(query, params, prepare=prepare)  # type: ignore[arg-type]
    return await cur.fetchone()


async def fetch_value(conn: Conn, query: Query, params: Params = None, *, prepare: bool | None = None) -> Any:
    """The first column of the first row, or None when there is no row."""
    row = await fetch_one(conn, query, params, prepare=prepare)
    return None if row is None else next(iter(row.values()))


async def execute(conn: Conn, query: Query, params: Params = None) -> int:
    """Run a statement; returns the number of rows it touched."""
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return cur.rowcount


async def execute_many(conn: Conn, query: Query, params_seq: Iterable[Params]) -> None:
    """One statement for many parameter sets (psycopg pipelines them: one round trip)."""
    async with conn.cursor() as cur:
        await cur.executemany(query, params_seq)  # type: ignore[arg-type]


class ReadAudit(Protocol):
    """Who read personal data, recorded by the same statement that reads it.

    A read that may show personal data returns rows with two extra columns:
    `audit_target` (text, what was read, e.g. 'node:610827001') and `audit_item`
    (jsonb, NULL when the row shows nothing personal). `wrap` turns that read into one
    statement that also inserts the audit row (when any item is not NULL); its
    parameters are `params`. The accounts package implements it: the grid only knows
    that a read may be audited, not where the audit log lives.
    """

    @property
    def params(self) -> Mapping[str, Any]: ...

    def wrap(self, query: str) -> str: ...


async def fetch_read(conn: Conn, query: str, params: Mapping[str, Any], audit: ReadAudit | None) -> list[Row]:
    """A read, audited in the same round trip when `audit` is given."""
    if audit is None:
        return await fetch_all(conn, query, params)
    return await fetch_all(conn, audit.wrap(query), {**params, **audit.params})
