"""`create_app(settings)`: the FastAPI application with its lifespan."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import Depends, FastAPI, Request

from app import errors, metrics, policy
from app.db import make_engine, make_sessionmaker
from app.routers import admin, auth, cases, grid, health, imports, push, tiles, web
from app.settings import PROJECT_ROOT, Settings, get_settings
from geo.tiles import TileCache
from grid.exceptions import InvalidInput


def schema_head() -> str | None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    return ScriptDirectory.from_config(config).get_current_head()


def reject_nul(request: Request) -> None:
    """PostgreSQL text cannot hold NUL; refuse it at the door rather than fail deep inside."""
    if "\x00" in request.url.path or any("\x00" in v for v in request.query_params.values()):
        raise InvalidInput("a parameter contains a NUL character (\\x00); remove it and try again")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.refuse_unsafe_production()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="wuzhang 五长",
        summary="Grid-based conflict management: five-chief grid, three-tier mediation, signed ledger.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(reject_nul)],
    )
    app.state.settings = settings
    app.state.schema_head = schema_head()
    app.state.tile_cache = TileCache(max_entries=settings.tile_cache_entries, ttl_s=settings.tile_cache_seconds)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(grid.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(cases.router)
    app.include_router(imports.router)
    app.include_router(imports.roster_router)
    app.include_router(push.router)
    app.include_router(metrics.router)
    app.include_router(tiles.router)
    app.include_router(web.router)
    web.mount_static(app)
    policy.check_routes(app)
    return app
