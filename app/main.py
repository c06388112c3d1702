"""`create_app(settings)`: the FastAPI application with its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import __version__, errors, metrics, policy
from app.accounts import demo as demo_accounts
from app.accounts import security
from app.accounts.cache import PrincipalCache, TokenCache
from app.db import Database
from app.headers import SecurityHeaders
from app.limits import RequestGuard
from app.listen import InboxBell, Listener
from app.routers import (
    admin,
    auth,
    backlog,
    cases,
    centre,
    duty,
    grid,
    health,
    imports,
    leadership,
    meetings,
    publishing,
    push,
    stats,
    tiles,
    web,
)
from app.settings import PROJECT_ROOT, Settings, get_settings, libpq_url
from app.tile_cache import TileCache, TileVersions
from grid import people_time


def schema_head() -> str | None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    return ScriptDirectory.from_config(config).get_current_head()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.refuse_unsafe_production()
    security.passwords(settings)  # the hasher and its dummy hash, made now rather than on a first login
    people_time.use_zone(settings.time_zone)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.db.open()
        if settings.env == "production":
            await demo_accounts.refuse_in_production(app.state.db, settings)
        app.state.listener.start()
        try:
            yield
        finally:
            await app.state.listener.stop()
            await app.state.db.close()

    app = FastAPI(
        title="wuzhang 五长",
        summary="Grid-based conflict management: five-chief grid, three-tier mediation, signed ledger.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served by app.routers.web, from this app's own files
        redoc_url=None,
    )
    state = app.state
    state.settings = settings
    state.schema_head = schema_head()
    # Built here, opened by the lifespan: a test can hand the app one connection instead.
    state.db = Database(settings)
    state.principals = PrincipalCache(max_entries=settings.principal_cache_entries,
                                      ttl_s=settings.principal_cache_seconds)  # fmt: skip
    state.tokens = TokenCache()
    state.tile_cache = TileCache(max_entries=settings.tile_cache_entries, ttl_s=settings.tile_cache_seconds)
    state.tile_versions = TileVersions()
    state.inbox = InboxBell()
    state.listener = Listener(libpq_url(settings.database_url), principals=state.principals,
                              versions=state.tile_versions, inbox=state.inbox)  # fmt: skip
    errors.install(app)
    app.add_middleware(RequestGuard, settings=settings)
    if settings.trusted_proxies:  # else the peer is the client, whatever X-Forwarded-For says
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(SecurityHeaders)  # outermost: refusals at the door carry the headers too
    # Busiest first: a request is matched against the routers in this order, route by route.
    for router in (grid.router, tiles.router, cases.router, push.router, auth.router, health.router, admin.router,
                   imports.router, imports.roster_router, metrics.router, web.router, publishing.router,
                   publishing.public, stats.router, meetings.router, duty.router, backlog.router,
                   leadership.router, centre.router):  # fmt: skip
        app.include_router(router)
    web.mount_static(app)
    policy.check_routes(app)
    policy.document_security(app)
    return app
