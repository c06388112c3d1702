"""Connections for HTTP requests: one psycopg 3 async pool per server process.

A request takes one connection when its first dependency needs it (the caller's
login, or the handler's queries) and gives it back when the handler has returned
its value and the response is built: never while its body is uploaded or its answer
sent. Connections are autocommit (see grid.db): a read is one round trip, with no
BEGIN and no reset on return. Nothing pings a connection before use.

When the database goes away, the service notices on the first failure (a connection
breaks, or none comes free in time) and tries a connection of its own once a second.
While those tries fail, requests are answered 503 at once instead of each waiting for
the pool's timeout. The first try that succeeds brings in a fresh pool: psycopg_pool's
own reconnection backs off exponentially (1, 2, 4 ... s), so after a long outage it
would take about as long again to come back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import psycopg
from fastapi import Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.settings import Settings, libpq_url
from grid.db import Conn, connect, connect_kwargs

log = logging.getLogger("wuzhang.db")


class Connections(Protocol):
    """Where a request gets its connection: the pool, or (tests) one shared connection."""

    def connection(self) -> AbstractAsyncContextManager[Conn]: ...

    def dedicated(self) -> AbstractAsyncContextManager[Conn]: ...


# How often a process whose database has gone away tries to reach it again.
PROBE_INTERVAL_S = 1.0


class DatabaseUnreachable(psycopg.OperationalError):
    """The database could not be reached a moment ago: answered 503 without waiting."""


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = self._new_pool()
        self.unreachable = False  # the last try to reach the database failed
        self._probing: asyncio.Task[None] | None = None

    def _new_pool(self) -> AsyncConnectionPool[Conn]:
        settings = self.settings
        return AsyncConnectionPool(
            libpq_url(settings.database_url),
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_size,
            timeout=settings.db_pool_timeout_s,
            kwargs=connect_kwargs(
                application_name="wuzhang-api",
                statement_timeout_ms=settings.db_statement_timeout_ms,
            ),
            name="wuzhang",
            open=False,
        )

    async def open(self) -> None:
        _ = self.settings.sqlalchemy_database_url  # no DATABASE_URL: stop here with a message that says how
        # wait=False: the API starts even while the database is down, answers 503, and
        # serves again as soon as it is back.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        if self.unreachable:
            raise DatabaseUnreachable("the database could not be reached a moment ago")
        try:
            async with self.pool.connection() as conn:
                yield conn
        except psycopg.errors.QueryCanceled:
            raise  # a statement ran too long: the database itself is fine
        except (PoolTimeout, psycopg.OperationalError):
            self._connection_failed()  # gone, or only busy: the probe tells which
            raise

    @asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Conn]:
        """A connection of its own, outside the pool and without its statement timeout:
        for work that takes long (a boundary import), so the pool stays free for requests."""
        conn = await connect(libpq_url(self.settings.database_url), application_name="wuzhang-import")
        try:
            yield conn
        finally:
            await conn.close()

    def _connection_failed(self) -> None:
        if self._probing is None or self._probing.done():
            self._probing = asyncio.get_running_loop().create_task(self._probe(), name="wuzhang-db-probe")

    async def _probe(self) -> None:
        """Try a connection of our own until one works; then, if the database had been
        out of reach, start a fresh pool, else only test the pool's idle connections
        (a restart quicker than we could see leaves broken ones behind)."""
        url, was_down = libpq_url(self.settings.database_url), False
        while True:
            try:
                conn = await AsyncConnection.connect(url, connect_timeout=5, application_name="wuzhang-probe")
                await conn.close()
                break
            except psycopg.OperationalError as exc:
                if not was_down:
                    log.warning("the database cannot be reached (%s); answering 503 until it can", exc)
                self.unreachable = was_down = True
                await asyncio.sleep(PROBE_INTERVAL_S)
        if was_down:
            old, self.pool = self.pool, self._new_pool()
            await self.pool.open(wait=False)
            self.unreachable = False
            log.warning("the database is back; a fresh pool serves the requests")
            await old.close()  # connections still in use close when given back
        else:
            try:
                await self.pool.check()
            except psycopg.Error:
                log.warning("checking the pool's connections failed", exc_info=True)


async def session(request: Request) -> AsyncIterator[Conn]:
    """The request's connection (FastAPI dependency; `app.deps.SessionDep`)."""
    async with request.app.state.db.connection() as conn:
        yield conn
