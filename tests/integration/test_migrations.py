"""The schema changes through Alembic only, and it can go down and up again."""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, inspect, text

import grid.case_models  # noqa: F401  (the comparison must see every table)
import app.accounts.models  # noqa: F401  (accounts' tables share grid's metadata)
import app.push_models  # noqa: F401  (device and push_counter)
from grid.models import Base
from tests.conftest import alembic_config, create_database, drop_database, migrate


def test_upgrade_downgrade_upgrade_on_an_empty_database():
    url = create_database("wuzhang_migr")
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        engine = create_engine(url)
        with engine.connect() as conn:
            assert {"node", "node_piece", "person", "post", "user_account", "grant", "refresh_token", "audit_log"} <= set(inspect(conn).get_table_names())
            exts = set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
            assert {"postgis", "ltree"} <= exts
        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
            assert "postgis" not in set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert "node" in inspect(conn).get_table_names()
        engine.dispose()
    finally:
        drop_database(url)


def test_models_and_migrations_describe_the_same_schema(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": alembic_helpers.include_object, "compare_type": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
