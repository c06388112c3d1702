"""The leadership figures (grid/stats/leadership.py) on hand-built histories, driven through
the real use cases with injected times in a year no other test uses: a case that failed at
the county centre and was closed lawfully, a visit taken as 包案 and concluded 事心双结, a
backlog batch cleared then reflowed, tasks done in time and late, a referral approved."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from app.accounts.service import ROOMS
from grid.cases import service as cases
from grid.db import fetch_value
from grid.leadership import assistance, backlog, duty, meetings, ownership, visits
from grid.leadership.sheets import SheetRow
from grid.stats import leadership, service, tables
from grid.stats.definitions import Exclusions, Filters, Period
from tests.integration.test_stats import NOTHING_REQUIRED, SIGNER, County, path_of

T = datetime(2032, 4, 1, 1, 0, tzinfo=UTC)  # 09:00 on 1 April 2032 in the county
YEAR = Period(date(2032, 1, 1), date(2032, 12, 31))
NOW = T + timedelta(days=60)  # when the figures are asked for


def d(days: float) -> datetime:
    return T + timedelta(days=days)


async def person_of(db, account) -> int:
    return int(await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": account.user_id}))


@pytest.fixture
async def county(db, loaded_county, demo_nodes):
    return County(db, loaded_county, demo_nodes, await path_of(db, demo_nodes.county))


async def figures(county, *, period=YEAR, scope=None, township=None, now=NOW):
    asked = service.Asked(scope_paths=scope or (county.path,), filters=Filters(period=period), township=township)
    return await leadership.leadership(conn=county.db, asked=asked, now=now)


async def test_failed_at_the_county_centre_then_closed_lawfully(county):
    cid = await county.report(700, at=d(0), severity=4)  # severity 4: straight to the county centre
    for action in ("accept", "start_mediation"):
        await county.step(cid, action, d(1))
    await county.step(cid, "fail", d(2), note="双方各执一词")
    await county.step(cid, "terminate", d(3), note="引导诉讼", channel="litigation")
    # In the success rate: concluded with a failed mediation, settled nowhere; the lawful
    # closure is not a second outcome, and a terminated case is not "open" for the exclusions.
    s = await county.figures(period=YEAR)
    assert (s["concluded"], s["succeeded"], s["settled"], s["success_rate"].value) == (1, 0, 0, 0.0)
    assert s["settled_below_county"] == 0
    ended = await county.figures(period=YEAR, exclusions=Exclusions(open_failures=True))
    assert (ended["concluded"], ended["excluded"]) == (1, 0)
    f = await figures(county)
    assert f["closures"]["lawful_closures"] == 1
    assert {c["channel"]: c["lawful_closures"] for c in f["closures"]["items"]} == {
        "litigation": 1, "arbitration": 0, "administrative_review": 0}  # fmt: skip
    # Reaching the centre marked it hard (by rule), with no owners yet; it ended lawfully.
    o = f["ownership"]
    assert (o["hard"], o["owned"], o["unowned"], o["terminated"], o["open"]) == (1, 0, 1, 1, 0)
    # Dated by the closure: April's figures have it, March's do not.
    march = await figures(county, period=Period(date(2032, 3, 1), date(2032, 3, 31)))
    assert march["closures"]["lawful_closures"] == 0


async def test_a_visit_taken_as_hard_case_and_concluded_heart_settled(county, db, make_account, demo_nodes):
    leader = await person_of(db, await make_account("leader"))
    reception = await person_of(db, await make_account("reception"))
    await duty.set_day(conn=db, county_code="610827", on=date(2032, 4, 1), leader_person_id=leader,
                       body="government", note=None, by_person_id=reception, now=d(-1))  # fmt: skip
    visit = visits.Visit(visitor_name="来访群众乙", visitor_phone="13912345670", category="neighbours", severity=2,
                         description="宅基地纠纷多年未决", node_code=demo_nodes.village)  # fmt: skip
    out = await visits.register_visit(conn=db, actor=cases.Actor(reception, counties=("610827",)), key=uuid.uuid4(), visit=visit, now=d(0),
                                      signer=SIGNER, county_code="610827")  # fmt: skip
    cid = out.case["id"]
    f = await figures(county)
    mine = next(v for v in f["visits"]["items"] if v["leader_person_id"] == leader)
    assert (mine["visits"], mine["undecided"], mine["own"]) == (1, 1, 0)

    owner = cases.Actor(leader, counties=("610827",))
    await visits.decide(conn=db, actor=owner, case_id=cid, now=d(0.1), signer=SIGNER, rooms=ROOMS,
                        decision=visits.Decision(action="take_ownership", township_code=demo_nodes.township))  # fmt: skip
    for what in ("know", "educate", "solve"):
        await ownership.tick_duty(conn=db, actor=owner, case_id=cid, duty=what, note="已落实", now=d(1), signer=SIGNER)
    await cases.act(conn=db, actor=owner, case_id=cid, action="conclude", now=d(5), signer=SIGNER, rooms=ROOMS,
                    required=NOTHING_REQUIRED, fields={"note": "矛盾化解，当事人心服", "hard_outcome": "heart_settled"})  # fmt: skip
    f = await figures(county)
    mine = next(v for v in f["visits"]["items"] if v["leader_person_id"] == leader)
    assert (mine["visits"], mine["own"], mine["undecided"], mine["resolved_later"]) == (1, 1, 0, 1)
    o = f["ownership"]
    assert (o["hard"], o["owned"], o["heart_settled"], o["concluded"], o["open"]) == (1, 1, 1, 1, 0)
    assert [x["cases"] for x in o["duties"]] == [0, 0, 0, 1, 0, 0]  # three of the five ticked
    # The visit's place is the village: its township's dispatcher sees it, another township's does not.
    township = await path_of(db, demo_nodes.township)
    assert (await figures(county, scope=(township,)))["visits"]["visits"] == 1
    elsewhere = await figures(county, scope=(await path_of(db, demo_nodes.other_township),))
    assert (elsewhere["visits"]["visits"], elsewhere["ownership"]["hard"]) == (0, 0)
    # A referral of the visitor, approved with an amount, in the period it was made.
    staff = await make_account("department_staff", department_code="civil_affairs")
    civil = int(await fetch_value(db, "SELECT id FROM department WHERE code = 'civil_affairs'"))
    referral = await assistance.refer(conn=db, actor=cases.Actor(leader, act_paths=(county.path,), counties=("610827",)), case_id=cid,
                                      party="1", type="medical", note="因病致贫", now=d(2), signer=SIGNER)  # fmt: skip
    await assistance.decide(conn=db, actor=cases.Actor(await person_of(db, staff), department_ids=(civil,), counties=("610827",)),
                            county_code="610827", referral_id=referral["id"], outcome="approved", amount=1200,
                            note="符合条件", now=d(3), signer=SIGNER)  # fmt: skip
    r = (await figures(county))["referrals"]
    medical = next(t for t in r["types"] if t["type"] == "medical")
    assert (medical["referred"], medical["approved"], medical["declined"], medical["amount"]) == (1, 1, 0, 1200.0)
    assert (r["referred"], r["amount"]) == (1, 1200.0)
    assert (await figures(county, period=Period(date(2032, 5, 1), date(2032, 5, 31))))["referrals"]["referred"] == 0


async def test_a_backlog_batch_cleared_then_reflowed(county, db, make_account, demo_nodes):
    leader = await make_account("leader")
    rows = [SheetRow(row=i + 2, values={"description": f"积案{i}", "category": "neighbours", "place": demo_nodes.village,
                                        "leader_phone": leader.phone, "unit": demo_nodes.township})
            for i in range(2)]  # fmt: skip
    imported = await backlog.import_batch(conn=db, county_code="610827", label="统计测试批", handed_down_on=None,
                                          rows=rows, source="test.xlsx", by_person_id=await person_of(db, leader),
                                          now=d(0), signer=SIGNER, rooms=ROOMS)  # fmt: skip
    assert not imported.errors, imported.errors
    ids = imported.case_ids

    async def batch():
        f = await figures(county)
        return f, next(b for b in f["batches"]["items"] if b["label"] == "统计测试批")

    f0, b = await batch()
    assert (b["total"], b["resolved"], b["cleared"], b["owned"]) == (2, 0, False, 2)
    for cid in ids:
        for action in ("accept", "start_mediation"):
            await county.step(cid, action, d(1))
        await county.step(cid, "resolve", d(2), agreement_text="协议")
    f1, b = await batch()
    assert (b["resolved"], b["open"], b["cleared"], b["reflows"]) == (2, 0, True, 0)
    assert f1["batches"]["batches_cleared"] == f0["batches"]["batches_cleared"] + 1
    await county.step(ids[0], "reopen", d(10), note="群众反映问题反弹")
    f2, b = await batch()
    assert (b["resolved"], b["cleared"], b["reflows"]) == (1, False, 1)
    assert f2["batches"]["batches_cleared"] == f0["batches"]["batches_cleared"]
    assert (f2["reflows"]["reflows"], f2["reflows"]["reopen"], f2["reflows"]["linked"]) == (1, 1, 0)
    # Reflows are dated by when they were recorded; the batch is counted for its cases in scope.
    assert (await figures(county, period=Period(date(2032, 4, 1), date(2032, 4, 5))))["reflows"]["reflows"] == 0
    elsewhere = await figures(county, scope=(await path_of(db, demo_nodes.other_township),))
    assert "统计测试批" not in [x["label"] for x in elsewhere["batches"]["items"]]


async def test_tasks_done_in_time_and_late_by_the_county_calendar(county, db, make_account, demo_nodes):
    chair = await person_of(db, await make_account("leader"))
    county_id = int(await fetch_value(db, "SELECT id FROM node WHERE code = '610827'"))
    member = meetings.Member(person_id=chair, county_code="610827", grants=(("leader", None, county_id),),
                             read_paths=(county.path,), cases=cases.Actor(chair, read_paths=(county.path,), counties=("610827",)))  # fmt: skip
    due = date(2032, 4, 10)
    owner = meetings.Owner(township_code=demo_nodes.township)
    met = await meetings.record_meeting(conn=db, member=member, now=d(0), meeting=meetings.MeetingIn(
        level="county", node_code="610827", held_on=date(2032, 4, 1), title="县级联席会议（统计）",
        tasks=tuple(meetings.TaskIn(title=f"督办{i}", owner=owner, due_on=due) for i in range(3))))  # fmt: skip
    ids = [t["id"] for t in met.tasks]
    township_id = int(await fetch_value(db, "SELECT id FROM node WHERE code = %(c)s", {"c": demo_nodes.township}))
    township = await path_of(db, demo_nodes.township)
    worker = meetings.Member(person_id=chair, county_code="610827", grants=(("dispatcher", None, township_id),),
                             read_paths=(township,))  # fmt: skip
    # 23:59 on the due day in Beijing (15:59 UTC) is in time; 00:30 the next morning (16:30 UTC) is late.
    await meetings.complete(conn=db, member=worker, task_id=ids[0], note="已办结",
                            now=datetime(2032, 4, 10, 15, 59, tzinfo=UTC))  # fmt: skip
    await meetings.complete(conn=db, member=worker, task_id=ids[1], note="已办结",
                            now=datetime(2032, 4, 10, 16, 30, tzinfo=UTC))  # fmt: skip
    t = (await figures(county))["tasks"]
    assert (t["due"], t["done"], t["on_time"], t["late"], t["overdue"], t["open"]) == (3, 2, 1, 1, 1, 0)
    assert (t["on_time_rate"].numerator, t["on_time_rate"].denominator) == (1, 3)
    before = (await figures(county, now=datetime(2032, 4, 5, tzinfo=UTC)))["tasks"]
    assert (before["open"], before["overdue"]) == (1, 0)  # on 5 April the third is not due yet
    # Owned by the township: its dispatcher's figures have them, another township's not.
    assert (await figures(county, scope=(township,)))["tasks"]["due"] == 3
    assert (await figures(county, scope=(await path_of(db, demo_nodes.other_township),)))["tasks"]["due"] == 0
    export = tables.table("leadership", await figures(county))
    assert export.headers[:4] == ["分项", "对象", "指标", "数值"]
    assert ["督办落实", "", "按期办结率", round(1 / 3, 4), 1, 3] in export.rows
