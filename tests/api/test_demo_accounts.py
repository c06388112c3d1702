"""Demo accounts: made idempotently, each can log in with its role, and README lists them."""

import asyncio
import base64
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.accounts import demo as demo_accounts
from app.accounts import security
from app.main import create_app
from app.settings import PROJECT_ROOT, libpq_url
from grid.db import connect, fetch_value
from grid.leadership import demo as leadership_demo
from tests.conftest import PASSWORD, SharedConnection, asgi_client, settings_for_tests


def readme_rows():
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Demo accounts", 1)[1]
    password = re.search(r"password `([^`]+)`", section).group(1)
    first, second = section.split("### The second county and the city", 1)
    return password, _rows(first), _rows(second.split("\n## ", 1)[0])


def _rows(text):
    return re.findall(r"^\| ([^|`]+?) \| `([^`]+)` (\S+) \| `(\d{11})` \|$", text, flags=re.M)


def cli_env(url):
    """The CLI runs its own event loop, so it gets a database of the test's own."""
    return {**os.environ, "DATABASE_URL": url, "WUZHANG_ARGON2_TIME_COST": "1", "WUZHANG_ARGON2_MEMORY_KIB": "8"}


async def run_cli(cmd, limit_s=60, **kw):
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=limit_s, **kw)


@asynccontextmanager
async def app_on(url) -> AsyncIterator[httpx.AsyncClient]:
    """The app serving the database at `url` (its lifespan runs: its own pool)."""
    app = create_app(settings_for_tests(url))
    async with app.router.lifespan_context(app), asgi_client(app) as c:
        yield c


async def test_demo_accounts_are_made_once_log_in_and_match_the_readme(client, db, settings):
    accounts, created = await demo_accounts.ensure(conn=db, settings=settings, county_code="610827")
    assert created == len(accounts) == 26
    assert (await demo_accounts.ensure(conn=db, settings=settings, county_code="610827"))[1] == 0

    password, rows, _ = readme_rows()
    assert password == demo_accounts.DEMO_PASSWORD
    assert rows == [(a.title, a.node_code, a.node_name, a.phone) for a in accounts]
    titles = [a.title for a in accounts]
    assert titles == ["城区片长", "社区长", "网格长", "单元长", "楼层长", "农村片长", "分片长", "村长", "组长", "中心户长",
                      "调度员", "和事屋调解员", "和事堂调解员", "调处中心调解员", "县领导", "管理员",
                      "接访人员", "信访局工作人员", "民政局工作人员", "住建局工作人员", "纪检监督员",
                      "县委领导", "县人大领导", "县政府领导", "县政府领导", "县政协领导"]  # fmt: skip
    # Names a person reads are Chinese: no "演示dispatcher". The county leaders on the duty
    # roster have names of their own (王志刚, ...); the other staff are named after their role.
    staff = [a for a in accounts if a.grant is not None]
    named = {lead.phone for lead in leadership_demo.LEADERS}
    assert [a.name for a in staff if a.phone not in named] == [f"演示{a.title}" for a in staff if a.phone not in named]
    assert len({a.name for a in staff}) == len(staff)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]+", a.title + a.name) for a in staff)

    for a in accounts:
        r = await client.post("/api/v1/auth/token", data={"username": a.phone, "password": password})
        assert r.status_code == 200, (a.title, r.text)
        me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
        expected = [a.grant.role] if a.grant else ["chief"]
        assert me["roles"] == expected, a.title
        assert a.node_code in [s["node"]["code"] for s in me["scopes"]]


async def test_create_admin_reads_the_password_from_stdin_never_an_argument(fresh_database):
    env = cli_env(fresh_database)
    cmd = [sys.executable, "-m", "app.cli", "users", "create-admin", "--phone", "19811111111"]
    done = await run_cli(cmd, input=PASSWORD + "\n", env=env)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    async with app_on(fresh_database) as client:
        r = await client.post("/api/v1/auth/token", data={"username": "19811111111", "password": PASSWORD})
        assert r.status_code == 200, r.text
        me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
        assert me["roles"] == ["admin"]
    again = await run_cli(cmd, input=PASSWORD + "\n", env=env)
    assert again.returncode == 1 and "已经有账号" in again.stderr


async def test_accounts_for_a_roster_get_initial_passwords_once(client, db, settings, demo_nodes):
    from app.accounts import service

    holders = await fetch_value(db, """
SELECT count(DISTINCT po.person_id) FROM node root JOIN node n ON n.path <@ root.path
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL WHERE root.code = %(c)s""",
                                {"c": demo_nodes.village})  # fmt: skip
    made, skipped = await service.create_accounts_for_posts(conn=db, settings=settings, county_code="610827",
                                                            node_code=demo_nodes.village, actor=None, ip=None)  # fmt: skip
    assert len(made) == holders > 10 and skipped == []
    again, _ = await service.create_accounts_for_posts(conn=db, settings=settings, county_code="610827",
                                                       node_code=demo_nodes.village, actor=None, ip=None)  # fmt: skip
    assert again == []
    sample = made[-1]
    stored = await fetch_value(db, "SELECT password_hash FROM user_account WHERE id = %(u)s", {"u": sample.user_id})
    assert sample.password not in stored
    r = await client.post("/api/v1/auth/token", data={"username": sample.phone, "password": sample.password})
    assert r.status_code == 200
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
    assert me["roles"] == ["chief"] and me["posts"][0]["node"]["code"] == sample.node_code


async def test_the_roster_cli_writes_a_private_csv_and_never_overwrites_it(fresh_database, demo_nodes, tmp_path):
    env = cli_env(fresh_database)
    out = tmp_path / "initial.csv"
    household = demo_nodes.other_household  # one holder: one line
    cmd = [sys.executable, "-m", "app.cli", "users", "create-for-posts", household, "-o", str(out)]
    done = await run_cli(cmd, env=env)
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "phone,name,node_code,initial_password" and len(lines) == 2
    assert lines[1].split(",")[2] == household
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert lines[1].split(",")[3] not in done.stdout + done.stderr
    again = await run_cli(cmd, env=env)
    assert again.returncode == 1 and "已存在" in again.stderr


def production(url):
    ledger_key = base64.b64encode(b"k" * 32).decode()
    return settings_for_tests(url, WUZHANG_ENV="production", WUZHANG_LEDGER_KEY=ledger_key)


async def test_production_refuses_to_start_while_a_demo_account_has_the_published_password(fresh_database):
    async with await connect(libpq_url(fresh_database)) as conn:
        accounts, _ = await demo_accounts.ensure(conn=conn, settings=settings_for_tests(fresh_database),
                                                 county_code="610827")  # fmt: skip
        # A demo account given a password of its own is no longer a demo credential.
        leader = next(a for a in accounts if a.grant is not None and a.grant.role == "leader")
        new_hash = security.passwords(settings_for_tests(fresh_database)).hash(PASSWORD)
        await conn.execute("UPDATE user_account SET password_hash = %(h)s WHERE phone = %(p)s",
                           {"h": new_hash, "p": leader.phone})  # fmt: skip
    app = create_app(production(fresh_database))
    with pytest.raises(RuntimeError) as refused:
        async with app.router.lifespan_context(app):
            pass
    message = str(refused.value)
    assert "19100000006" in message and "wuzhang users disable-demo" in message
    assert leader.phone not in message and f"{len(accounts) - 1} account(s)" in message

    done = await run_cli([sys.executable, "-m", "app.cli", "users", "disable-demo"], env=cli_env(fresh_database))
    assert done.returncode == 0 and "19100000006" in done.stderr, done.stderr
    app = create_app(production(fresh_database))
    async with app.router.lifespan_context(app), asgi_client(app) as client:  # it starts now
        r = await client.post("/api/v1/auth/token", data={"username": "19100000006", "password": "wuzhang-demo"})
        assert r.status_code == 401
        r = await client.post("/api/v1/auth/token", data={"username": leader.phone, "password": PASSWORD})
        assert r.status_code == 200


async def test_in_production_the_demo_password_never_logs_in_even_if_the_start_check_was_skipped(db, settings):
    # The start-up check needs the database; a service started while it was down skips it,
    # and a login with the published password is refused all the same.
    await demo_accounts.ensure(conn=db, settings=settings, county_code="610827")
    app = create_app(production(settings.database_url))
    app.state.db = SharedConnection(db)
    async with asgi_client(app) as client:
        r = await client.post("/api/v1/auth/token", data={"username": "19100000006", "password": "wuzhang-demo"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    action = await fetch_value(db, "SELECT action FROM audit_log ORDER BY id DESC LIMIT 1")
    assert action == "auth.login_demo_refused"
