"""Engine and per-request sessions."""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings


def make_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.sqlalchemy_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        # Bound values are personal data (phones, names); keep them out of error logs.
        hide_parameters=True,
        connect_args={
            "application_name": "wuzhang",
            # Parallel query turns a 0.3 ms point lookup into 13 ms at a million
            # polygons (shared/notes/performance.md); this is an OLTP service.
            "options": "-c max_parallel_workers_per_gather=0",
        },
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; use cases commit, anything else is rolled back."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()
