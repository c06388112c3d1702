"""Connections for HTTP requests: one psycopg 3 async pool per server process.

A request takes one connection when its first dependency needs it (the caller's
login, or the handler's queries) and gives it back when the handler has returned
its value and the response is built: never while its body is uploaded or its answer
sent. Connections are autocommit (see grid.db): a read is one round trip, with no
BEGIN and no reset on return. Nothing pings a connection before use; one that broke
(the database restarted) fails its request with a 503 and makes the pool check the
others at once, so the service recovers by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from app.settings import Settings, libpq_url
from grid.db import Conn, connect, connect_kwargs

log = logging.getLogger("wuzhang.db")


class Connections(Protocol):
    """Where a request gets its connection: the pool, or (tests) one shared connection."""

    def connection(self) -> AbstractAsyncContextManager[Conn]: ...

    def dedicated(self) -> AbstractAsyncContextManager[Conn]: ...

    def connection_failed(self) -> None: ...


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
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
        self._checking: asyncio.Task[None] | None = None

    async def open(self) -> None:
        _ = self.settings.sqlalchemy_database_url  # no DATABASE_URL: stop here with a message that says how
        # wait=False: the API starts even while the database is down, answers 503, and
        # serves again as soon as it is back.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Conn]:
        """A connection of its own, outside the pool and without its statement timeout:
        for work that takes long (a boundary import), so the pool stays free for requests."""
        conn = await connect(libpq_url(self.settings.database_url), application_name="wuzhang-import")
        try:
            yield conn
        finally:
            await conn.close()

    def connection_failed(self) -> None:
        """A connection broke mid-request: have the pool test its idle ones now, so the
        next requests do not each find another broken one."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        try:
            await self.pool.check()
        except Exception:  # the database may still be down: the next failure checks again
            log.warning("checking the pool's connections failed", exc_info=True)


async def session(request: Request) -> AsyncIterator[Conn]:
    """The request's connection (FastAPI dependency; `app.deps.SessionDep`)."""
    async with request.app.state.db.connection() as conn:
        yield conn
