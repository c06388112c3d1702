"""`wuzhang demo history`: a year of synthetic cases walked through the real workflow in
the demo county, whose figures land near the county's own (330 settled by the houses
and halls in 2023, 99% of mediations successful, a handful at the centre)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

import pytest

from app.accounts.service import ROOMS
from app.settings import libpq_url
from geo import demo
from grid.cases import history
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.db import connect, fetch_all, fetch_value
from tests.conftest import app_url
from tests.integration.test_boundary_cli import run_cli

SIGNER = Signer.from_seed(base64.b64encode(b"h" * 32).decode())
KEYS = {SIGNER.key_id: SIGNER.public_key}
# Steps a person takes on a case they hold (the report is the reporter's; sweeps are the server's).
HOLDERS_STEPS = ("accept", "start_mediation", "resolve", "fail", "escalate", "return", "return_visit", "close",
                 "reopen", "extend")  # fmt: skip


async def generate(db, *, year=2023, cases_n=40, seed=7):
    return await history.generate(conn=db, county_code=demo.COUNTY_CODE, year=year, seed=seed, signer=SIGNER,
                                  rooms=ROOMS, now=datetime.now(UTC), cases=cases_n)  # fmt: skip


async def year_case_ids(db, year):
    start, end = history.year_bounds(year)
    rows = await fetch_all(db, "SELECT id FROM case_file WHERE reported_at >= %(s)s AND reported_at < %(e)s ORDER BY id",
                           {"s": start, "e": end})  # fmt: skip
    return [r["id"] for r in rows]


async def test_every_story_goes_through_the_real_steps_by_the_real_holders_and_the_ledger_verifies(db):
    figures = await generate(db)
    ids = await year_case_ids(db, 2023)
    assert figures.cases == len(ids) == 40 and figures.still_open == 0
    for case_id in ids:
        verdict = await cases.verify_ledger(conn=db, case_id=case_id, keys=KEYS)
        assert verdict.valid, (case_id, verdict)
    events = await fetch_all(db, "SELECT case_id, seq, action, actor_person_id, body FROM case_event"
                                 " WHERE case_id = ANY(%(ids)s) ORDER BY case_id, seq", {"ids": ids})  # fmt: skip
    # Each story's steps are there: returned, extended, reopened, failed, and warned and
    # escalated by the deadline sweep (a step with no person).
    actions = {e["action"] for e in events}
    assert {"return", "extend", "reopen", "fail", "deadline_warning", "file_investigation"} <= actions
    assert any(e["action"] == "escalate" and e["actor_person_id"] is None for e in events)
    assert any(e["action"] == "escalate" and e["actor_person_id"] is not None for e in events)
    # Whoever took a step held the case then: one of the recipients of its last assignment.
    holders: set[int] = set()
    for e in events:
        if e["action"] == "assign" and "recipients" in e["body"]:
            holders = set(e["body"]["recipients"])
        elif e["action"] == "escalate" and e["actor_person_id"] is None:
            continue  # the deadline sweep's
        elif e["action"] in HOLDERS_STEPS or e["action"].startswith("file_"):
            assert e["actor_person_id"] in holders, e
    assert figures.reached_county >= 2 and figures.fails >= 3
    # The year's notices are in the inbox, read, and left for no worker to push.
    pending = await fetch_value(db, "SELECT count(*) FROM notification WHERE case_id = ANY(%(ids)s)"
                                    " AND (delivery_state = 'pending' OR read_at IS NULL)", {"ids": ids})  # fmt: skip
    assert pending == 0


async def test_a_second_run_of_the_same_year_is_refused_and_adds_nothing(db):
    await generate(db, cases_n=25)
    with pytest.raises(history.HistoryRefused, match="2023 年已有 25 件案件"):
        await generate(db, cases_n=25)
    assert len(await year_case_ids(db, 2023)) == 25


async def test_a_year_not_over_is_refused(db):
    with pytest.raises(history.HistoryRefused, match="只能生成已经过去的年份"):
        await generate(db, year=datetime.now(UTC).year)
    assert await year_case_ids(db, datetime.now(UTC).year) == []


async def test_the_same_seed_plans_the_same_year(db):
    places = await case_sql.history_places(db, county_code=demo.COUNTY_CODE)

    def plan(seed):
        return [(p.story, p.at, p.key, p.report) for p in
                history.plan_year(random.Random(seed), year=2023, cases=60, places=places)]  # fmt: skip

    assert plan(1) == plan(1) and plan(1) != plan(2)


async def test_a_full_year_lands_near_the_county_figures_and_the_command_refuses_a_second_run(fresh_database):
    url = app_url(fresh_database)  # the command runs as the app, like every wuzhang command
    code, output = await run_cli(url, "demo", "history", "--year", "2023")
    assert code == 0, output
    assert "生成案件 │ 380" in output and "调解成功率" in output
    async with await connect(libpq_url(url)) as conn:
        figures = await history.figures(conn=conn, county_code=demo.COUNTY_CODE, year=2023)
        months = await fetch_all(conn, "SELECT DISTINCT extract(month FROM reported_at AT TIME ZONE 'Asia/Shanghai')"
                                       " AS m FROM case_file")  # fmt: skip
    assert 300 <= figures.settled_village_township <= 360, figures
    assert figures.success_share >= 0.97, figures
    assert 3 <= figures.reached_county <= 6, figures
    assert figures.still_open == 0
    assert sorted(int(r["m"]) for r in months) == list(range(1, 13))  # every Beijing-time month of the year
    code, output = await run_cli(url, "ledger", "verify")
    assert code == 0 and "380 case ledgers checked, 0 failed" in output, output
    code, output = await run_cli(url, "demo", "history", "--year", "2023")
    assert code == 2 and "已拒绝" in output and "2023 年已有 380 件案件" in output, output


async def test_the_command_refuses_a_county_that_is_not_loaded(database_url, monkeypatch):
    monkeypatch.setenv("WUZHANG_COUNTY_CODE", "999999")
    code, output = await run_cli(app_url(database_url), "demo", "history", "--year", "2023")
    assert code == 2 and "县 999999 的网格还没有载入" in output and "wuzhang demo load" in output, output
