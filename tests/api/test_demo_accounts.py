"""Demo accounts: made idempotently, each can log in with its role, and README lists them."""
import os
import re
import subprocess
import sys

from app.accounts import demo as demo_accounts
from app.settings import PROJECT_ROOT
from tests.conftest import PASSWORD

TITLE_ROLES = {"dispatcher": ["dispatcher"], "county leader": ["leader"], "admin": ["admin"]}


def readme_rows():
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Demo accounts", 1)[1]
    password = re.search(r"password `([^`]+)`", section).group(1)
    rows = re.findall(r"^\| ([a-z -]+) \| `([^`]+)` (\S+) \| `(\d{11})` \|$", section, flags=re.M)
    return password, rows


def test_demo_accounts_are_made_once_log_in_and_match_the_readme(client, db, settings):
    accounts, created = demo_accounts.ensure(session=db, settings=settings, county_code="610827")
    assert created == len(accounts) == 16
    assert demo_accounts.ensure(session=db, settings=settings, county_code="610827")[1] == 0

    password, rows = readme_rows()
    assert password == demo_accounts.DEMO_PASSWORD
    assert rows == [(a.title, a.node_code, a.node_name, a.phone) for a in accounts]
    titles = [a.title for a in accounts]
    for level in ("floor", "unit", "grid", "community", "village", "group", "sub-area", "central household"):
        assert f"{level} chief" in titles
    assert {"urban area chief", "rural area chief", "harmony house mediator", "harmony hall mediator",
            "county centre mediator"} <= set(titles)  # fmt: skip

    for a in accounts:
        r = client.post("/api/v1/auth/token", data={"username": a.phone, "password": password})
        assert r.status_code == 200, (a.title, r.text)
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
        expected = ["chief"] if a.title.endswith("chief") else TITLE_ROLES.get(a.title, ["mediator"])
        assert me["roles"] == expected, a.title
        assert a.node_code in [s["node"]["code"] for s in me["scopes"]]


def test_create_admin_reads_the_password_from_stdin_never_an_argument(database_url, client):
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_ARGON2_TIME_COST": "1",
           "WUZHANG_ARGON2_MEMORY_KIB": "8"}  # fmt: skip
    cmd = [sys.executable, "-m", "app.cli", "users", "create-admin", "--phone", "19811111111"]
    done = subprocess.run(cmd, input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    r = client.post("/api/v1/auth/token", data={"username": "19811111111", "password": PASSWORD})
    assert r.status_code == 200, r.text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
    assert me["roles"] == ["admin"]
    again = subprocess.run(cmd, input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_accounts_for_a_roster_get_initial_passwords_once(client, db, settings, demo_nodes):
    from sqlalchemy import text

    from app.accounts import service

    holders = db.execute(text("""
SELECT count(DISTINCT po.person_id) FROM node root JOIN node n ON n.path <@ root.path
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL WHERE root.code = :c"""),
                         {"c": demo_nodes.village}).scalar()  # fmt: skip
    made, skipped = service.create_accounts_for_posts(session=db, settings=settings, county_code="610827",
                                                      node_code=demo_nodes.village, actor=None, ip=None)  # fmt: skip
    assert len(made) == holders > 10 and skipped == []
    again, _ = service.create_accounts_for_posts(session=db, settings=settings, county_code="610827",
                                                 node_code=demo_nodes.village, actor=None, ip=None)  # fmt: skip
    assert again == []
    sample = made[-1]
    stored = db.execute(text("SELECT password_hash FROM user_account WHERE id = :u"), {"u": sample.user_id}).scalar()
    assert sample.password not in stored
    r = client.post("/api/v1/auth/token", data={"username": sample.phone, "password": sample.password})
    assert r.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
    assert me["roles"] == ["chief"] and me["posts"][0]["node"]["code"] == sample.node_code


def test_the_roster_cli_writes_a_private_csv_and_never_overwrites_it(database_url, demo_nodes, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_ARGON2_TIME_COST": "1",
           "WUZHANG_ARGON2_MEMORY_KIB": "8"}  # fmt: skip
    out = tmp_path / "initial.csv"
    household = demo_nodes.other_household  # committed for good: keep it small and apart from other tests
    cmd = [sys.executable, "-m", "app.cli", "users", "create-for-posts", household, "-o", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "phone,name,node_code,initial_password" and len(lines) == 2
    assert lines[1].split(",")[2] == household
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert lines[1].split(",")[3] not in done.stdout + done.stderr
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr
