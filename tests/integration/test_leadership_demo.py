"""`wuzhang demo load` gives the demo county its leadership records through the real use
cases: a 30-day duty roster of named county leaders, the county's third backlog batch (27
cases, every one owned by a leader and a unit), social-assistance referrals with one
outcome; the new demo accounts log in; and a second run changes nothing."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from app.accounts import demo as demo_accounts
from app.settings import libpq_url
from grid import people_time
from grid.db import connect, fetch_all, fetch_one
from grid.leadership import demo as leadership_demo
from tests.api.test_demo_accounts import app_on, cli_env, run_cli
from tests.conftest import app_url

# What a second run must leave as it was.
COUNTS = """
SELECT (SELECT count(*) FROM duty_day) AS duty_days, (SELECT count(*) FROM backlog_batch) AS batches,
       (SELECT count(*) FROM case_file) AS cases, (SELECT count(*) FROM case_event) AS events,
       (SELECT count(*) FROM case_duty) AS duties, (SELECT count(*) FROM assistance_referral) AS referrals,
       (SELECT count(*) FROM user_account) AS accounts, (SELECT count(*) FROM notification) AS notices
"""


async def demo_load(url: str) -> str:
    # It loads the second county (绥德县) too: about 9,000 nodes, so a longer leash than 60 s.
    done = await run_cli([sys.executable, "-m", "app.cli", "demo", "load"], env=cli_env(app_url(url)), limit_s=600)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stderr.split())


async def test_demo_load_records_the_roster_the_third_batch_and_referrals_once(fresh_database):
    output = await demo_load(fresh_database)
    assert "30 duty days added" in output and "27 cases imported now" in output, output
    async with await connect(libpq_url(fresh_database)) as conn:
        first = await fetch_one(conn, COUNTS)
        today = people_time.local_date(datetime.now(UTC))
        roster = await fetch_all(conn, """
SELECT d.day, d.body, u.phone FROM duty_day d JOIN user_account u ON u.person_id = d.leader_person_id
 WHERE d.day BETWEEN %(a)s AND %(b)s ORDER BY d.day""", {"a": today, "b": today + timedelta(days=29)})  # fmt: skip
        batch = await fetch_all(conn, """
SELECT c.id, c.hard, c.owner_leader_person_id, u.department_id, u.node_id,
       (SELECT count(*) FROM case_party p WHERE p.case_id = c.id) AS parties
  FROM backlog_batch b JOIN case_file c ON c.batch_id = b.id
  LEFT JOIN case_unit u ON u.case_id = c.id AND u.part = 'owner'
 WHERE b.label = %(l)s""", {"l": leadership_demo.BATCH_LABEL})  # fmt: skip
        referrals = await fetch_all(conn, "SELECT case_id, outcome, amount FROM assistance_referral ORDER BY id")

    # 30 days from the county's today, each with a named leader of their own body, all of them taking turns.
    leaders = {lead.phone: lead for lead in leadership_demo.roster_leaders()}
    assert [r["day"] for r in roster] == [today + timedelta(days=i) for i in range(30)]
    assert all(r["phone"] in leaders and r["body"] == leaders[r["phone"]].body for r in roster)
    assert {r["phone"] for r in roster} == set(leaders)
    assert {r["body"] for r in roster} == {"party_committee", "peoples_congress", "government", "cppcc"}
    # One batch of 27, every case hard, with a leader and a unit, and a party.
    assert first["batches"] == 1 and len(batch) == 27
    assert all(c["hard"] and c["owner_leader_person_id"] for c in batch)
    assert all((c["department_id"] is None) != (c["node_id"] is None) for c in batch)
    assert {c["department_id"] is None for c in batch} == {True, False}  # townships and departments both own some
    assert all(c["parties"] == 1 for c in batch)
    assert first["duties"] > 0
    # Referrals on the batch's cases; 民政局 decided one.
    assert 2 <= len(referrals) <= 4 and {r["case_id"] for r in referrals} <= {c["id"] for c in batch}
    assert [r["outcome"] for r in referrals].count("approved") == 1

    # The new accounts log in with the shared password, each with its role.
    accounts = {a.phone: a for a in await _plan(fresh_database)}
    async with app_on(fresh_database) as client:
        for phone, role in [("19100000007", "reception"), ("19100000008", "department_staff"),
                            ("19100000009", "department_staff"), ("19100000010", "department_staff"),
                            ("19100000011", "supervisor"), *((lead.phone, "leader") for lead in leadership_demo.LEADERS)]:  # fmt: skip
            r = await client.post("/api/v1/auth/token", data={"username": phone, "password": "wuzhang-demo"})
            assert r.status_code == 200, (phone, r.text)
            me = (
                await client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            ).json()
            assert me["roles"] == [role] and me["name"] == accounts[phone].name, me
        # 民政局's staff see the referrals as their task list.
        r = await client.post("/api/v1/auth/token", data={"username": "19100000009", "password": "wuzhang-demo"})
        listed = await client.get("/api/v1/referrals", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert listed.status_code == 200 and len(listed.json()["items"]) == len(referrals), listed.text

    # Again: nothing new.
    output = await demo_load(fresh_database)
    assert "0 duty days added" in output and "0 cases imported now" in output, output
    async with await connect(libpq_url(fresh_database)) as conn:
        assert await fetch_one(conn, COUNTS) == first


async def _plan(url: str) -> list[demo_accounts.DemoAccount]:
    async with await connect(libpq_url(url)) as conn:
        return await demo_accounts.plan(conn, "610827")


def test_the_named_leaders_are_chinese_names_from_all_four_bodies():
    assert {lead.body for lead in leadership_demo.LEADERS} == {"party_committee", "peoples_congress", "government",
                                                               "cppcc"}  # fmt: skip
    assert len({lead.name for lead in leadership_demo.LEADERS}) == len(leadership_demo.LEADERS) >= 4
