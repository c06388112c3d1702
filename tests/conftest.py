"""Shared fixtures: a throwaway database migrated by Alembic, the demo county, sessions.

`make test` starts the project's PostGIS and sets DATABASE_URL; this file makes a
fresh database beside it (wuzhang_test_<random>), migrates it to head, loads the
demo county once, and drops it at the end. Each test that takes `db` runs inside a
transaction that is rolled back.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session

from app.db import get_session
from app.main import create_app
from app.settings import PROJECT_ROOT, Settings, get_settings, libpq_url, sqlalchemy_url
from geo import demo


def _server_url() -> str:
    url = get_settings().database_url
    if not url:
        pytest.exit("DATABASE_URL is not set: run the tests with `make test`", returncode=2)
    return url


def create_database(prefix: str = "wuzhang_test") -> str:
    """A new empty database on the same server; returns its SQLAlchemy URL."""
    server = make_url(sqlalchemy_url(_server_url()))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server.render_as_string(hide_password=False)), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    target = make_url(url)
    server = target.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = create_database()
    try:
        migrate(url)
        yield url
    finally:
        if not os.environ.get("WUZHANG_KEEP_TEST_DB"):
            drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, connect_args={"options": "-c max_parallel_workers_per_gather=0"})
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_county() -> demo.DemoCounty:
    return demo.generate(scale=1)


@pytest.fixture(scope="session")
def loaded_county(engine: Engine, demo_county: demo.DemoCounty) -> demo.DemoCounty:
    """The demo county, committed once for the whole run; tests must not change it."""
    from grid import service

    with Session(engine) as session:
        service.load_county(
            session=session, county_code=demo.COUNTY_CODE, nodes=demo_county.nodes, posts=demo_county.posts
        )
        session.commit()
    return demo_county


@pytest.fixture
def db(engine: Engine, loaded_county: demo.DemoCounty) -> Iterator[Session]:
    """A session whose every change is rolled back after the test (commits become savepoints)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(settings: Settings, db: Session) -> Iterator[TestClient]:
    """The real app over HTTP (in-process), sharing the test's rolled-back session."""
    app = create_app(settings)
    app.dependency_overrides[get_session] = lambda: db
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
