"""Shared fixtures: throwaway databases migrated by Alembic, the demo county, connections.

`make test` starts the project's PostGIS and sets DATABASE_URL. This file makes, beside
it, a template database (migrated, the demo county loaded and committed once), and
from it:

- one session database, where each test that takes `db` runs inside a transaction that
  is rolled back (the service's own transactions become savepoints), and the API tests'
  app uses that same connection;
- a fresh copy per test that commits (`fresh_database`): concurrency, real server and
  worker processes, tampering. Such a test changes nothing another test sees.

Databases are made and migrated as the owner role (WUZHANG_MIGRATION_DATABASE_URL), and
the fixtures' URLs are the owner's, for setting up and tampering; the code under test
connects as the app role (`app_url`): the `db` connection, which the in-process app
shares, and the servers of tests/servers.py. So every test of the service runs with the
app's rights only (migration 0112).

Everything is dropped at the end (WUZHANG_KEEP_TEST_DB=1 keeps it). Async tests and
fixtures share one event loop for the whole run (pyproject.toml).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

from app.main import create_app
from app.settings import PROJECT_ROOT, Settings, get_settings, libpq_url, sqlalchemy_url
from geo import demo
from grid.db import Conn, connect, fetch_value

# --- databases ------------------------------------------------------------------


def _server_url() -> str:
    """The owner's URL (it creates the test databases and migrates them)."""
    if not get_settings().database_url:
        pytest.exit("DATABASE_URL is not set: run the tests with `make test`", returncode=2)
    return get_settings().owner_database_url


def app_url(url: str) -> str:
    """The same database as `url`, as the app role of DATABASE_URL (the owner's URL when
    there is one role only)."""
    app = make_url(sqlalchemy_url(get_settings().database_url))
    return (
        make_url(sqlalchemy_url(url))
        .set(username=app.username, password=app.password)
        .render_as_string(hide_password=False)
    )


def separate_roles() -> bool:
    return make_url(_server_url()).username != make_url(sqlalchemy_url(get_settings().database_url)).username


def _admin(url: str) -> str:
    """The same server's `postgres` database (where CREATE/DROP DATABASE run)."""
    return libpq_url(make_url(sqlalchemy_url(url)).set(database="postgres").render_as_string(hide_password=False))


def create_database(prefix: str = "wuzhang_test", *, template: str | None = None) -> str:
    """A new database on the same server (empty, or a copy of `template`'s); its URL."""
    server = make_url(sqlalchemy_url(_server_url()))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if citus_workers():
        _citus_create_database(name, template)
        return server.set(database=name).render_as_string(hide_password=False)
    source = f'"{make_url(template).database}"' if template else "template0"
    with psycopg.connect(_admin(_server_url()), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE {source} ENCODING 'UTF8'")  # type: ignore[arg-type]
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database or ""
    for node in [url, *(citus_node_url(url, worker) for worker in citus_workers())]:
        with psycopg.connect(_admin(node), autocommit=True) as conn:
            if citus_workers():
                _when_unused(conn, name, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


# --- Citus (make test-citus: scripts/citus.sh sets WUZHANG_CITUS and the workers) ---------
# A database is a Citus cluster of its own: it exists on every node with the same name,
# with the extension (before PostGIS) on each, and the coordinator's copy knows the workers.


def citus_workers() -> list[str]:
    """The workers' host:port when the tests run on Citus, else none."""
    if not os.environ.get("WUZHANG_CITUS"):
        return []
    return [w for w in os.environ.get("WUZHANG_CITUS_WORKERS", "").split(",") if w]


def citus_node_url(url: str, host_port: str) -> str:
    """`url` (same database and owner) on the node at host:port."""
    host, port = host_port.rsplit(":", 1)
    return make_url(sqlalchemy_url(url)).set(host=host, port=int(port)).render_as_string(hide_password=False)


def _citus_create_database(name: str, template: str | None) -> None:
    coordinator = _server_url()
    nodes = [coordinator, *(citus_node_url(coordinator, w) for w in citus_workers())]
    for node in nodes:
        with psycopg.connect(_admin(node), autocommit=True) as conn:
            if template is None:
                conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")  # type: ignore[arg-type]
            else:
                source = make_url(template).database or ""
                _when_unused(conn, source, f'CREATE DATABASE "{name}" TEMPLATE "{source}" ENCODING \'UTF8\'')
    if template is not None:
        return  # each node's copy is its template's: the same extension, nodes and shards
    for node in reversed(nodes):  # the workers' extension first: adding a node needs it there
        with psycopg.connect(
            libpq_url(make_url(node).set(database=name).render_as_string(False)), autocommit=True
        ) as c:
            c.execute("CREATE EXTENSION citus")
    coord = make_url(coordinator)
    with psycopg.connect(libpq_url(coord.set(database=name).render_as_string(False)), autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host(%s, %s)", (coord.host, coord.port))
        for worker in citus_workers():
            host, port = worker.rsplit(":", 1)
            conn.execute("SELECT citus_add_node(%s, %s)", (host, int(port)))


def _when_unused(conn: psycopg.Connection, database: str, sql: str) -> None:
    """`sql` (copying or dropping `database`), which needs nobody in `database`. Citus keeps
    sessions in a database that has it (its maintenance daemon, restarted when ended; the
    coordinator's connections to the workers): end them, and again if one came back."""
    for attempt in itertools.count(1):
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        try:
            conn.execute(sql)  # type: ignore[arg-type]
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 5:
                raise


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def _keep() -> bool:
    return bool(os.environ.get("WUZHANG_KEEP_TEST_DB"))


@pytest.fixture(scope="session")
def demo_county() -> demo.DemoCounty:
    return demo.generate(scale=1)


@pytest.fixture(scope="session")
async def template_url(demo_county: demo.DemoCounty) -> AsyncIterator[str]:
    """Migrated, with the demo county committed; nothing connects to it after this."""
    from grid import service
    from grid.leadership import departments

    url = create_database("wuzhang_tmpl")
    try:
        migrate(url)
        async with await connect(libpq_url(url)) as conn, conn.transaction():
            await service.load_county(
                conn=conn, county_code=demo.COUNTY_CODE, nodes=demo_county.nodes, posts=demo_county.posts
            )
            await departments.ensure_standard(conn=conn, county_code=demo.COUNTY_CODE)
        async with await connect(libpq_url(url)) as conn:
            await conn.execute("VACUUM ANALYZE")
        yield url
    finally:
        if not _keep():
            drop_database(url)


@pytest.fixture(scope="session")
def database_url(template_url: str) -> Iterator[str]:
    """The session database: the template's copy that rolled-back tests share."""
    url = create_database(template=template_url)
    try:
        yield url
    finally:
        if not _keep():
            drop_database(url)


@pytest.fixture(scope="session")
def loaded_county(database_url: str, demo_county: demo.DemoCounty) -> demo.DemoCounty:
    """The demo county (committed in every test database); tests must not change it."""
    return demo_county


@pytest.fixture
def fresh_database(template_url: str) -> Iterator[str]:
    """A database of the test's own, with the demo county, for a test that commits."""
    url = create_database("wuzhang_fresh", template=template_url)
    try:
        yield url
    finally:
        if not _keep():
            drop_database(url)


@pytest.fixture
async def db(database_url: str, loaded_county: demo.DemoCounty) -> AsyncIterator[Conn]:
    """A connection, as the app role, whose every change is rolled back after the test (the
    use cases' own transactions become savepoints inside the test's)."""
    conn = await connect(libpq_url(app_url(database_url)))
    try:
        async with conn.transaction(force_rollback=True):
            yield conn
    finally:
        await conn.close()


TEST_JWT_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct-horse-battery-staple"


def settings_for_tests(database_url: str, **overrides: object) -> Settings:
    # Cheap argon2 keeps a login at a millisecond; production keeps the library's defaults.
    values: dict[str, object] = {
        "database_url": database_url, "WUZHANG_JWT_SECRET": TEST_JWT_SECRET,
        "WUZHANG_ARGON2_TIME_COST": 1, "WUZHANG_ARGON2_MEMORY_KIB": 8,
    }  # fmt: skip
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for_tests(app_url(database_url))


class SharedConnection:
    """What the app gets its connections from in a rolled-back test: the test's own
    connection, for every request (app.db.Connections)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        yield self.conn

    dedicated = connection


def asgi_client(app: object, *, peer: str = "testclient", **kw: object) -> httpx.AsyncClient:
    """The app over HTTP in this process; the caller's address is `peer` ('testclient')."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", **kw)  # type: ignore[arg-type]


@pytest.fixture
async def client(settings: Settings, db: Conn) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over HTTP (in-process), sharing the test's rolled-back connection.

    Its lifespan does not run: no pool and no LISTEN connection, so its caches are not
    live and every request reads afresh (tests/api/test_request_path.py covers the caches
    with committed data and real server processes)."""
    app = create_app(settings)
    app.state.db = SharedConnection(db)
    async with asgi_client(app) as c:
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


async def holder_person_id(conn: Conn, node_code: str, role: str = "chief") -> int:
    """The person holding the node's current post (its chief by default)."""
    return int(
        await fetch_value(
            conn,
            "SELECT po.person_id FROM post po JOIN node n ON n.id = po.node_id"
            " WHERE n.code = %(c)s AND po.role = %(r)s AND po.ended_at IS NULL",
            {"c": node_code, "r": role},
        )
    )


# A role's default node (and mediator tier) in the demo county.
ROLE_SETUPS: dict[str, tuple[str, str | None]] = {
    "chief": ("village", None),
    "mediator_village_house": ("village", "village_house"),
    "mediator_township_hall": ("township", "township_hall"),
    "mediator_county_center": ("county", "county_center"),
    "dispatcher": ("township", None),
    "leader": ("county", None),
    "admin": ("county", None),
    # The leadership mechanisms' roles: no node scope of their own (app/accounts/scope.py).
    "department_staff": ("county", None),  # of 信访局 unless make_account names another department
    "reception": ("county", None),
    "supervisor": ("county", None),
}

MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(
    db: Conn, settings: Settings, client: httpx.AsyncClient, demo_nodes: DemoNodes, loaded_county: demo.DemoCounty
) -> MakeAccount:
    """await make_account("dispatcher") or await make_account("chief", node_code=...): a user
    made through the accounts service, then logged in through POST /api/v1/auth/token."""
    from app.accounts import service

    async def make(kind: str, *, node_code: str | None = None, department_code: str | None = None) -> Account:
        where, tier = ROLE_SETUPS[kind]
        role = "mediator" if kind.startswith("mediator_") else kind
        node_code = node_code or getattr(demo_nodes, where)
        if role == "department_staff":
            department_code = department_code or "petition"
        if role == "chief":  # a chief is whoever holds the post: the account links to that person
            phone, grants = current_chief_phone(loaded_county, node_code), []
        else:
            phone = f"199{next(_phones):08d}"
            grants = [service.GrantIn(role=role, node_code=node_code, tier=tier, department_code=department_code)]
        user_id, _ = await service.create_user(
            conn=db, settings=settings, county_code=demo.COUNTY_CODE, phone=phone, name=f"测试{kind}",
            password=PASSWORD, grants=grants, actor=None, ip=None,
        )  # fmt: skip
        r = await client.post("/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(user_id=user_id, phone=phone, role=kind, node_code=node_code,
                       access_token=body["access_token"], refresh_token=body["refresh_token"],
                       headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip

    return make


async def committed_admin_token(url: str) -> str:
    """An admin committed in the database at `url`, and an access token for them (an admin
    sees no phone numbers, so reads by it write no audit rows)."""
    from app.accounts import security, service

    settings = settings_for_tests(url)
    async with await connect(libpq_url(url)) as conn:
        user_id, _ = await service.create_user(
            conn=conn, settings=settings, county_code=demo.COUNTY_CODE, phone="19899999999", name="测试管理员",
            password=PASSWORD, grants=[service.GrantIn(role="admin", node_code=demo.COUNTY_CODE)], actor=None, ip=None,
        )  # fmt: skip
    token, _ = security.issue_access_token(settings=settings, user_id=user_id)
    return token


@pytest.fixture
def auth_headers(make_account: MakeAccount) -> Callable[..., Awaitable[dict[str, str]]]:
    """await auth_headers("leader") -> {"Authorization": "Bearer ..."} of a fresh, logged-in user."""

    async def headers(kind: str, **kw: object) -> dict[str, str]:
        return (await make_account(kind, **kw)).headers

    return headers


@pytest.fixture
async def api(client: httpx.AsyncClient, auth_headers: Callable[..., Awaitable[dict[str, str]]]) -> httpx.AsyncClient:
    """The app as a county leader (scope: the whole county) sees it."""
    client.headers.update(await auth_headers("leader"))
    return client
