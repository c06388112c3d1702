"""Alembic environment. The URL is the owner role's: WUZHANG_MIGRATION_DATABASE_URL, else
DATABASE_URL (or `-x url=...`), never alembic.ini."""

from __future__ import annotations

from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

import app.accounts.models
import app.push_models  # noqa: F401  (device tokens and push counters)
import grid.cases.models
import grid.leadership.models  # departments, batches, case units
import grid.stats.models  # noqa: F401  (the figures' roll-ups)
from app.settings import sqlalchemy_url
from grid.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if x_url:
        return sqlalchemy_url(x_url)
    configured = config.get_main_option("sqlalchemy.url")
    if configured:
        return sqlalchemy_url(configured)
    from app.settings import get_settings

    return get_settings().owner_database_url  # the owner role's, not the service's


def _configure(**kw: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        **kw,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:  # a caller (tests) handed us a connection
        _configure(connection=connectable)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
