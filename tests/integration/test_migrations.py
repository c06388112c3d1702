"""The schema changes through Alembic only, and it can go down and up again.

Alembic is synchronous and works through SQLAlchemy: these tests give it (and the
inspector) a SQLAlchemy engine of their own; the application itself uses none.
"""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, inspect, pool, text

import app.accounts.models  # accounts' tables share grid's metadata
import app.push_models  # noqa: F401  (device and push_counter)
import grid.cases.models
import grid.leadership.models  # departments, batches, case units
import grid.stats.models  # noqa: F401  (the figures' roll-ups)
from app.settings import sqlalchemy_url
from grid.models import Base
from tests.conftest import alembic_config, create_database, drop_database


@pytest.fixture
def engine_for():
    """engine_for(url): a SQLAlchemy engine (no pool), disposed after the test."""
    engines = []

    def make(url):
        engines.append(create_engine(sqlalchemy_url(url), poolclass=pool.NullPool))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(engine_for):
    url = create_database("wuzhang_migr")
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        engine = engine_for(url)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {
                "node",
                "node_piece",
                "person",
                "post",
                "user_account",
                "grant",
                "refresh_token",
                "audit_log",
            } <= tables
            exts = set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
            assert {"postgis", "ltree"} <= exts
        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
            assert "postgis" not in set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert "node" in inspect(conn).get_table_names()
    finally:
        drop_database(url)


def test_models_and_migrations_describe_the_same_schema(database_url, engine_for):
    # The session database was migrated to head by Alembic (tests/conftest.py); only read here.
    with engine_for(database_url).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": alembic_helpers.include_object, "compare_type": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
