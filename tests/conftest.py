"""Shared fixtures: a throwaway database migrated by Alembic, the demo county, sessions.

`make test` starts the project's PostGIS and sets DATABASE_URL; this file makes a
fresh database beside it (wuzhang_test_<random>), migrates it to head, loads the
demo county once, and drops it at the end. Each test that takes `db` runs inside a
transaction that is rolled back.
"""
from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


TEST_JWT_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct-horse-battery-staple"


def settings_for_tests(database_url: str) -> Settings:
    # Cheap argon2 keeps a login at a millisecond; production keeps the library's defaults.
    return Settings(
        database_url=database_url, WUZHANG_JWT_SECRET=TEST_JWT_SECRET,
        WUZHANG_ARGON2_TIME_COST=1, WUZHANG_ARGON2_MEMORY_KIB=8,
    )  # fmt: skip


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for_tests(database_url)


@pytest.fixture
def client(settings: Settings, db: Session) -> Iterator[TestClient]:
    """The real app over HTTP (in-process), sharing the test's rolled-back session."""
    app = create_app(settings)
    app.dependency_overrides[get_session] = lambda: db
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# --- accounts -------------------------------------------------------------------

_phones = itertools.count(1)


@dataclass
class Account:
    """A logged-in test user: `headers` carry the access token from a real login."""

    user_id: int
    phone: str
    role: str
    node_code: str
    access_token: str
    refresh_token: str
    password: str = PASSWORD
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoNodes:
    """Fixed places of the demo county for scope tests: one rural line and one urban line."""

    county: str
    township: str  # rural; `village` and `household` lie in it
    other_township: str  # shares nothing with `township`
    village: str
    household: str
    other_village: str  # in `other_township`
    other_household: str  # in `other_village`
    urban_unit: str
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # household code -> a point inside


@pytest.fixture(scope="session")
def demo_nodes(loaded_county: demo.DemoCounty) -> DemoNodes:
    by_code = {n.code: n for n in loaded_county.nodes}

    def township_of(code: str) -> str:
        while by_code[code].level != "township":
            code = by_code[code].parent_code  # type: ignore[assignment]
        return code

    villages = [n for n in loaded_county.nodes if n.level == "village"]
    village = villages[0]
    other = next(v for v in villages if township_of(v.code) != township_of(village.code))
    households = [n for n in loaded_county.nodes if n.level == "household"]
    household = next(n for n in households if n.code.startswith(village.code + "-"))
    other_household = next(n for n in households if n.code.startswith(other.code + "-"))
    unit = next(n for n in loaded_county.nodes if n.level == "unit")
    points = {h.code: (p.x, p.y) for h in (household, other_household) for p in [h.geom.point_on_surface()]}
    return DemoNodes(county=demo.COUNTY_CODE, township=township_of(village.code),
                     other_township=township_of(other.code), village=village.code, household=household.code,
                     other_village=other.code, other_household=other_household.code, urban_unit=unit.code,
                     points=points)  # fmt: skip


def current_chief_phone(county: demo.DemoCounty, node_code: str) -> str:
    return next(p.phone for p in county.posts if p.node_code == node_code and p.role == "chief" and p.ended_at is None)


# A role's default node (and mediator tier) in the demo county.
ROLE_SETUPS: dict[str, tuple[str, str | None]] = {
    "chief": ("village", None),
    "mediator_village_house": ("village", "village_house"),
    "mediator_township_hall": ("township", "township_hall"),
    "mediator_county_center": ("county", "county_center"),
    "dispatcher": ("township", None),
    "leader": ("county", None),
    "admin": ("county", None),
}


@pytest.fixture
def make_account(
    db: Session, settings: Settings, client: TestClient, demo_nodes: DemoNodes, loaded_county: demo.DemoCounty
) -> Callable[..., Account]:
    """make_account("dispatcher") or make_account("chief", node_code=...): a user made
    through the accounts service, then logged in through POST /api/v1/auth/token."""
    from app.accounts import service

    def make(kind: str, *, node_code: str | None = None, disabled: bool = False) -> Account:
        where, tier = ROLE_SETUPS[kind]
        role = kind.split("_")[0]
        node_code = node_code or getattr(demo_nodes, where)
        if role == "chief":  # a chief is whoever holds the post: the account links to that person
            phone, grants = current_chief_phone(loaded_county, node_code), []
        else:
            phone = f"199{next(_phones):08d}"
            grants = [service.GrantIn(role=role, node_code=node_code, tier=tier)]
        user_id, _ = service.create_user(
            session=db, settings=settings, county_code=demo.COUNTY_CODE, phone=phone, name=f"测试{kind}",
            password=PASSWORD, grants=grants, actor=None, ip=None,
        )  # fmt: skip
        r = client.post("/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(user_id=user_id, phone=phone, role=kind, node_code=node_code,
                       access_token=body["access_token"], refresh_token=body["refresh_token"],
                       headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip

    return make


@pytest.fixture(scope="session")
def committed_admin_headers(engine: Engine, database_url: str, loaded_county: demo.DemoCounty) -> dict[str, str]:
    """For clients on their own app and connections (no rolled-back session): an admin,
    committed once. An admin sees no phone numbers, so reads by it write no audit rows."""
    from app.accounts import security, service

    settings = settings_for_tests(database_url)
    with Session(engine) as session:
        user_id, _ = service.create_user(
            session=session, settings=settings, county_code=demo.COUNTY_CODE, phone="19899999999", name="测试管理员",
            password=PASSWORD, grants=[service.GrantIn(role="admin", node_code=demo.COUNTY_CODE)], actor=None, ip=None,
        )  # fmt: skip
    token, _ = security.issue_access_token(settings=settings, user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth_headers(make_account: Callable[..., Account]) -> Callable[..., dict[str, str]]:
    """auth_headers("leader") -> {"Authorization": "Bearer ..."} of a fresh, logged-in user."""
    return lambda kind, **kw: make_account(kind, **kw).headers


@pytest.fixture
def api(client: TestClient, auth_headers: Callable[..., dict[str, str]]) -> TestClient:
    """The app as a county leader (scope: the whole county) sees it."""
    client.headers.update(auth_headers("leader"))
    return client
