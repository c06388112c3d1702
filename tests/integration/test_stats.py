"""The county's figures (grid/stats) on hand-built case histories, driven through the real
use cases with injected times, and a seeded random workflow recounted in SQL."""

from __future__ import annotations

import base64
import contextlib
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from app.accounts.service import ROOMS
from geo.crs import CRS
from grid.cases import service as cases
from grid.cases.exceptions import ApproverNotAllowed, IllegalAction
from grid.cases.ledger import Signer
from grid.cases.sections import Requirements
from grid.db import fetch_all, fetch_one, fetch_value
from grid.exceptions import InvalidInput, NodeNotFound
from grid.stats import service as stats
from grid.stats import tables
from grid.stats.definitions import Exclusions, Filters, Period
from grid.stats.exceptions import NoDataScope

SIGNER = Signer.from_seed(base64.b64encode(b"s" * 32).decode())
T0 = datetime(2030, 3, 10, 1, 0, tzinfo=UTC)  # a year no other test reports in
YEAR = Period(date(2030, 1, 1), date(2030, 12, 31))
NOTHING_REQUIRED = Requirements(rules=())  # 六公开 is tests/api/test_publishing.py's


async def path_of(db, code):
    return await fetch_value(db, "SELECT path::text FROM node WHERE code = %(c)s", {"c": code})


async def person_on(db, code, role="chief"):
    return await fetch_value(db, "SELECT po.person_id FROM post po JOIN node n ON n.id = po.node_id"
                                 " WHERE n.code = %(c)s AND po.role = %(r)s AND po.ended_at IS NULL",
                             {"c": code, "r": role})  # fmt: skip


class County:
    """Reports and steps as one county-wide dispatcher (who may act on any case)."""

    def __init__(self, db, county, nodes, county_path):
        self.db, self.county, self.nodes, self.path = db, county, nodes, county_path
        self.households = [n for n in county.nodes if n.level == "household"]

    async def actor(self):
        return cases.Actor(person_id=await person_on(self.db, self.nodes.county), read_paths=(self.path,),
                           act_paths=(self.path,), counties=("610827",))  # fmt: skip

    async def report(self, index, *, at=T0, severity=2, category="neighbours"):
        household = self.households[index]
        p = household.geom.point_on_surface()
        reporter = cases.Actor(await person_on(self.db, household.code), counties=("610827",))
        report = cases.Report(lon=p.x, lat=p.y, crs=CRS.wgs84, category=category, severity=severity,
                              description="统计测试")  # fmt: skip
        out = await cases.submit_report(conn=self.db, actor=reporter, key=uuid.uuid4(), report=report, now=at,
                                        signer=SIGNER, rooms=ROOMS, county_code="610827")  # fmt: skip
        return out.case["id"]

    async def step(self, case_id, action, at, **fields):
        return await cases.act(conn=self.db, actor=await self.actor(), case_id=case_id, action=action, fields=fields,
                               now=at, signer=SIGNER, rooms=ROOMS, required=NOTHING_REQUIRED)  # fmt: skip

    async def sweep(self, at):
        return await cases.sweep(conn=self.db, now=at, signer=SIGNER, rooms=ROOMS)

    async def figures(self, view="summary", *, period=YEAR, exclusions=Exclusions(), township=None, **kw):
        asked = stats.Asked(scope_paths=(self.path,), filters=Filters(period=period), township=township,
                            exclusions=exclusions)  # fmt: skip
        return await getattr(stats, view)(conn=self.db, asked=asked, now=T0 + timedelta(days=60), **kw)


@pytest.fixture
async def county(db, loaded_county, demo_nodes):
    return County(db, loaded_county, demo_nodes, await path_of(db, demo_nodes.county))


def h(n):
    return T0 + timedelta(hours=n)


async def actions(db, case_id):
    rows = await fetch_all(db, "SELECT action FROM case_event WHERE case_id = %(c)s ORDER BY seq", {"c": case_id})
    return [r["action"] for r in rows]


async def test_a_mediation_settled_in_the_village(county):
    cid = await county.report(500)
    for action in ("accept", "start_mediation"):
        await county.step(cid, action, h(1))
    await county.step(cid, "resolve", h(5), agreement_text="赔偿")
    await county.step(cid, "return_visit", h(30), note="满意", satisfaction=5)
    f = await county.figures()
    assert (f["received"], f["concluded"], f["succeeded"], f["settled_in_village"]) == (1, 1, 1, 1)
    assert f["success_rate"].value == 1.0 and f["settled_in_village_rate"].denominator == 1
    assert (f["visited"], f["satisfaction_mean"], f["satisfied"]) == (1, 5.0, 1)
    assert f["accept_hours_median"] == 1.0 and f["resolve_hours_median"] == 4.0
    assert f["late_cases"] == 0 and f["escalations"] == 0


async def test_a_reopened_case_has_no_outcome_until_it_is_settled_again(county):
    cid = await county.report(501)
    await county.step(cid, "accept", h(1))
    await county.step(cid, "start_mediation", h(1))
    await county.step(cid, "resolve", h(2), agreement_text="和解")
    await county.step(cid, "reopen", h(10), note="群众反映未解决")
    f = await county.figures()
    assert (f["concluded"], f["succeeded"], f["settled"]) == (0, 0, 0)
    assert (f["reopens"], f["reopened_cases"]) == (1, 1)
    await county.step(cid, "accept", h(11))
    await county.step(cid, "start_mediation", h(11))
    await county.step(cid, "fail", h(12), note="仍不接受")
    f = await county.figures()
    assert (f["concluded"], f["succeeded"], f["success_rate"].value) == (1, 0, 0.0)


async def test_escalated_then_resolved_counts_where_it_was_settled(county):
    cid = await county.report(502)
    await county.step(cid, "accept", h(1))
    await county.step(cid, "start_mediation", h(1))
    await county.step(cid, "fail", h(2), note="双方不接受")
    await county.step(cid, "escalate", h(3), note="提交上级")
    f = await county.figures()
    # The failure is the latest outcome, and no success followed yet: it counts, unless excluded.
    assert (f["concluded"], f["succeeded"]) == (1, 0)
    excluded = await county.figures(exclusions=Exclusions(open_failures=True))
    assert (excluded["concluded"], excluded["excluded"]) == (0, 1)
    await county.step(cid, "accept", h(4))
    await county.step(cid, "start_mediation", h(4))
    await county.step(cid, "resolve", h(10), agreement_text="协议")
    f = await county.figures()
    assert (f["concluded"], f["succeeded"], f["settled_in_village"], f["settled_in_township"]) == (1, 1, 0, 1)
    assert (f["escalations"], f["escalations_by_person"], f["escalations_by_deadline"]) == (1, 1, 0)
    funnel = {r["tier"]: r for r in (await county.figures("tiers"))["items"]}
    assert (funnel["village_house"]["failed"], funnel["village_house"]["escalated"]) == (1, 1)
    assert (funnel["township_hall"]["cases"], funnel["township_hall"]["settled"]) == (1, 1)
    assert funnel["township_hall"]["resolve_hours_median"] == 6.0


async def test_a_returned_case_is_counted_and_settled_at_its_tier(county, db):
    cid = await county.report(503)
    detail = await cases.get_case(conn=db, actor=await county.actor(), case_id=cid)
    target = detail["return_choices"][0]
    await county.step(cid, "return", h(1), note="应由组里处理", next_recipient=target)
    await county.step(cid, "accept", h(2))
    await county.step(cid, "start_mediation", h(2))
    await county.step(cid, "resolve", h(3), agreement_text="协议")
    f = await county.figures()
    assert (f["returns"], f["returned_cases"], f["settled_in_village"]) == (1, 1, 1)


async def test_an_extended_case_is_not_late_at_its_first_deadline(county):
    cid = await county.report(504)
    with pytest.raises(ApproverNotAllowed) as refused:
        await county.step(cid, "extend", h(2), note="当事人外出", approver="0", hours=48)
    await county.step(cid, "extend", h(2), note="当事人外出", approver=str(refused.value.details["allowed"][0]),
                      hours=48)  # fmt: skip
    swept = await county.sweep(h(25))  # past the first accept-by, before the extended one
    assert cid not in swept.escalated
    f = await county.figures()
    assert (f["extensions"], f["late_cases"], f["missed_deadlines"]) == (1, 0, 0)


async def test_late_then_resolved_is_on_record_before_the_escalation(county, db):
    cid = await county.report(505)
    swept = await county.sweep(h(24) + timedelta(seconds=3))  # the village house's accept-by was h(24)
    assert cid in swept.escalated
    assert (await actions(db, cid))[-3:] == ["deadline_missed", "escalate", "assign"]
    row = await fetch_one(db, "SELECT late_count, first_late_at FROM case_file WHERE id = %(c)s", {"c": cid})
    assert row == {"late_count": 1, "first_late_at": h(24)}
    late = await fetch_one(db, "SELECT deadline_no, step, tier, due_at FROM case_lateness WHERE case_id = %(c)s",
                           {"c": cid})  # fmt: skip
    assert late == {"deadline_no": 1, "step": "accept", "tier": "village_house", "due_at": h(24)}
    f = await county.figures()
    assert (f["late_cases"], f["missed_deadlines"], f["still_late"]) == (1, 1, 1)
    await county.step(cid, "accept", h(27))  # the hall accepts three hours after the village's deadline
    await county.step(cid, "start_mediation", h(27))
    await county.step(cid, "resolve", h(30), agreement_text="协议")
    f = await county.figures()
    assert (f["still_late"], f["late_hours_median"], f["escalations_by_deadline"]) == (0, 3.0, 1)
    assert (f["succeeded"], f["settled_in_township"]) == (1, 1)
    funnel = {r["tier"]: r for r in (await county.figures("tiers"))["items"]}
    assert funnel["village_house"]["missed_deadlines"] == 1


async def test_a_step_taken_after_a_deadline_records_the_lateness_first(county, db):
    cid = await county.report(506)
    await county.step(cid, "accept", h(26))  # before the worker saw it
    assert (await actions(db, cid))[-2:] == ["deadline_missed", "accept"]
    await county.step(cid, "start_mediation", h(27))
    swept = await county.sweep(h(24 * 4))  # past resolve-by: noticed once, then escalated
    assert cid in swept.escalated
    assert (await actions(db, cid)).count("deadline_missed") == 2
    late = await fetch_all(db, "SELECT step FROM case_lateness WHERE case_id = %(c)s ORDER BY id", {"c": cid})
    assert [r["step"] for r in late] == ["accept", "resolve"]


async def test_a_report_at_half_past_eleven_beijing_time_counts_on_that_day_and_month(county):
    at = datetime(2030, 1, 31, 15, 30, tzinfo=UTC)  # 23:30 on 31 January in Beijing; 1 February is UTC's next
    await county.report(507, at=at)
    jan = await county.figures(period=Period(date(2030, 1, 31), date(2030, 1, 31)))
    feb = await county.figures(period=Period(date(2030, 2, 1), date(2030, 2, 1)))
    assert (jan["received"], feb["received"]) == (1, 0)
    months = (await county.figures("monthly", period=Period(date(2030, 1, 1), date(2030, 2, 28))))["items"]
    assert [(m["month"], m["received"]) for m in months] == [("2030-01", 1), ("2030-02", 0)]
    rows = await county.figures("nodes", period=Period(date(2030, 1, 1), date(2030, 1, 31)), level="village")
    export = tables.table("nodes", rows)
    assert "2030-01-31 23:30" in [r[5] for r in export.rows]  # the export shows the county's time


async def test_exclusions_leave_a_category_out_of_the_success_rate(county):
    cid = await county.report(508, category="homestead")
    await county.step(cid, "accept", h(1))
    await county.step(cid, "start_mediation", h(1))
    await county.step(cid, "fail", h(2), note="不成")
    f = await county.figures(exclusions=Exclusions(categories=("homestead",)))
    assert (f["concluded"], f["excluded"], f["success_rate"].value) == (0, 1, None)


async def test_a_township_outside_the_scope_is_not_found_and_no_scope_is_refused(county, db, demo_nodes):
    township_path = await path_of(db, demo_nodes.township)
    asked = stats.Asked(scope_paths=(township_path,), filters=Filters(period=YEAR), township=demo_nodes.other_township)
    with pytest.raises(NodeNotFound):
        await stats.summary(conn=db, asked=asked, now=T0)
    with pytest.raises(NoDataScope):
        await stats.summary(conn=db, asked=stats.Asked(scope_paths=(), filters=Filters(period=YEAR)), now=T0)
    with pytest.raises(InvalidInput):  # a village is not a township
        await stats.summary(conn=db, asked=stats.Asked(scope_paths=(township_path,), filters=Filters(period=YEAR),
                                                        township=demo_nodes.village), now=T0)  # fmt: skip


# --- a random workflow, recounted independently in SQL --------------------------------

RECOUNT_SQL = """
WITH c AS (SELECT * FROM case_file WHERE reported_at >= %(start)s AND reported_at < %(end)s),
last_outcome AS (
  SELECT c.id, (SELECT e.action FROM case_event e WHERE e.case_id = c.id AND e.action IN ('resolve', 'fail', 'reopen')
                 ORDER BY e.seq DESC LIMIT 1) AS action,
         (SELECT e.seq FROM case_event e WHERE e.case_id = c.id AND e.action IN ('resolve', 'fail', 'reopen')
           ORDER BY e.seq DESC LIMIT 1) AS seq
    FROM c
), settled AS (
  SELECT o.id, (SELECT a.body->>'tier' FROM case_event a WHERE a.case_id = o.id AND a.action = 'assign'
                   AND a.body ? 'tier' AND a.seq < o.seq ORDER BY a.seq DESC LIMIT 1) AS tier
    FROM last_outcome o WHERE o.action = 'resolve'
)
SELECT (SELECT count(*) FROM c) AS received,
       (SELECT count(*) FROM last_outcome WHERE action IN ('resolve', 'fail')) AS concluded,
       (SELECT count(*) FROM last_outcome WHERE action = 'resolve') AS succeeded,
       (SELECT count(*) FROM settled WHERE tier IN ('chief', 'village_house')) AS settled_in_village,
       (SELECT count(*) FROM settled WHERE tier <> 'county_center') AS settled_below_county,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id WHERE e.action = 'escalate') AS escalations,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id
         WHERE e.action = 'escalate' AND e.actor_person_id IS NULL) AS escalations_by_deadline,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id WHERE e.action = 'return') AS returns,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id WHERE e.action = 'reopen') AS reopens,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id WHERE e.action = 'extend') AS extensions,
       (SELECT count(*) FROM case_event e JOIN c ON c.id = e.case_id
         WHERE e.action = 'deadline_missed') AS missed_deadlines,
       (SELECT count(DISTINCT l.case_id) FROM case_lateness l JOIN c ON c.id = l.case_id) AS late_cases
"""
RECOUNTED = ("received", "concluded", "succeeded", "settled_in_village", "settled_below_county", "escalations",
             "escalations_by_deadline", "returns", "reopens", "extensions", "missed_deadlines", "late_cases")  # fmt: skip
CHOICES = ("accept", "start_mediation", "resolve", "fail", "escalate", "return_visit", "close", "reopen", "sweep")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_workflows_agree_with_a_recount_in_sql(county, db, seed):
    rng = random.Random(seed)
    ids = [await county.report(520 + seed * 10 + i, severity=rng.choice((1, 2, 3)),
                               at=T0 + timedelta(hours=rng.randint(0, 24 * 30))) for i in range(5)]  # fmt: skip
    clock = T0 + timedelta(days=31)
    for _ in range(40):
        clock += timedelta(hours=rng.choice((1, 5, 30, 80)))
        action = rng.choice(CHOICES)
        if action == "sweep":
            await county.sweep(clock)
            continue
        cid = rng.choice(ids)
        fields = {"note": "说明", "agreement_text": "协议", "satisfaction": rng.randint(1, 5)}
        with contextlib.suppress(IllegalAction):  # not possible in this state: the random walk goes on
            await county.step(cid, action, clock, **fields)
    start, end = YEAR.bounds()
    want = await fetch_one(db, RECOUNT_SQL, {"start": start, "end": end})
    got = await county.figures()
    assert want is not None
    assert {k: got[k] for k in RECOUNTED} == {k: want[k] for k in RECOUNTED}, seed
    assert got["received"] == len(ids)
    assert want["concluded"] + want["escalations"] + want["missed_deadlines"] > 0, "the walk did something"
