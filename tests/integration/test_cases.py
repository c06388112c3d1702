"""Cases against a real PostGIS: routing, the workflow, deadlines, the signed ledger."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from app.accounts.service import ROOMS
from app.settings import PROJECT_ROOT, libpq_url
from geo.crs import CRS, wgs84_to_gcj02
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.enums import State
from grid.cases.exceptions import (
    ApproverNotAllowed,
    CaseNotFound,
    IdempotencyConflict,
    IllegalAction,
    MissingFields,
    NotResponsible,
    ReturnNotAllowed,
)
from grid.cases.ledger import Signer
from grid.cases.sections import Requirements
from grid.db import connect, fetch_all, fetch_one, fetch_value

SIGNER = Signer.from_seed(base64.b64encode(b"k" * 32).decode())
KEYS = {SIGNER.key_id: SIGNER.public_key}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def holder(conn, code, role="chief"):
    row = await fetch_one(
        conn,
        """SELECT po.person_id, n.path::text AS path FROM post po JOIN node n ON n.id = po.node_id
            WHERE n.code = %(c)s AND po.role = %(r)s AND po.ended_at IS NULL""",
        {"c": code, "r": role},
    )
    assert row is not None, (code, role)
    return row


async def actor_for(conn, code):
    h = await holder(conn, code)
    return cases.Actor(person_id=h["person_id"], read_paths=(h["path"],), counties=("610827",))


def household_report(county, index=300, **kw):
    household = [n for n in county.nodes if n.level == "household"][index]
    p = household.geom.point_on_surface()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    fields = dict(lon=lon, lat=lat, crs=CRS.gcj02, category="neighbours", severity=2, description="两家因排水沟争吵",
                  parties=(cases.Party("张三", "13800000001", "申请人"), cases.Party("李四", None, "被申请人")))  # fmt: skip
    fields.update(kw)
    return household, cases.Report(**fields)


async def submit(conn, actor, report, *, key=None, now=T0):
    return await cases.submit_report(conn=conn, actor=actor, key=key or uuid.uuid4(), report=report, now=now,
                                     signer=SIGNER, rooms=ROOMS, county_code="610827")  # fmt: skip


async def test_a_gcj02_report_routes_to_the_village_house_of_the_right_village(db, loaded_county):
    household, report = household_report(loaded_county)
    reporter = await actor_for(db, household.code)
    out = await submit(db, reporter, report)
    case = out.case
    village_code = household.code.rsplit("-", 2)[0]
    assert out.created and case["state"] == "assigned" and case["tier"] == "village_house"
    assert case["handling_node_code"] == village_code and case["located_node_code"] == household.code
    assert case["rule_version"] == 1
    assert case["accept_by"] == T0 + timedelta(days=1) and case["resolve_by"] == T0 + timedelta(days=3)
    inbox = await fetch_all(db, "SELECT person_id, kind, title || body AS words FROM notification WHERE case_id = %(c)s",
                            {"c": case["id"]})  # fmt: skip
    chief, deputy = await holder(db, village_code), await holder(db, village_code, "deputy")
    assert {r["person_id"] for r in inbox} == {chief["person_id"], deputy["person_id"]}
    assert all("张三" not in r["words"] and "13800000001" not in r["words"] for r in inbox)  # no personal data


async def test_the_full_path_to_closed_with_a_verified_ledger(db, loaded_county):
    household, report = household_report(loaded_county, 301)
    reporter = await actor_for(db, household.code)
    case = (await submit(db, reporter, report)).case
    village = await actor_for(db, case["handling_node_code"])

    async def step(who, action, **f):
        # The path alone: the sections 六公开 requires are tests/api/test_publishing.py's.
        return await cases.act(conn=db, actor=who, case_id=case["id"], action=action, fields=f,
                               now=T0 + timedelta(hours=1), signer=SIGNER, rooms=ROOMS,
                               required=Requirements(rules=()))  # fmt: skip

    await step(village, "accept")
    await step(village, "start_mediation")
    failed = await step(village, "fail", note="双方不接受调解方案")
    assert failed["state"] == "failed" and failed["outcome"] == "failed"
    escalated = await step(village, "escalate", note="提交和事堂")
    assert escalated["state"] == "assigned" and escalated["tier"] == "township_hall"
    township = await actor_for(db, escalated["handling_node_code"])
    assert escalated["handling_node_code"] == household.code.split("-")[0]
    with pytest.raises(NotResponsible):
        await step(village, "accept")  # no longer theirs
    await step(township, "accept")
    await step(township, "start_mediation")
    await step(township, "resolve", agreement_text="重修排水沟，费用各半")
    await step(township, "return_visit", note="双方满意", satisfaction=5)
    closed = await step(township, "close")
    assert closed["state"] == "closed" and closed["satisfaction"] == 5
    events = await cases.ledger_events(conn=db, actor=township, case_id=case["id"])
    assert [e["action"] for e in events] == ["report", "assign", "accept", "start_mediation", "fail", "escalate",
                                             "assign", "accept", "start_mediation", "resolve", "return_visit", "close"]  # fmt: skip
    assert events[0]["actor_person_id"] == reporter.person_id and events[1]["actor_person_id"] is None
    assert events[2]["actor_person_id"] == village.person_id and events[7]["actor_person_id"] == township.person_id
    assert (await cases.verify_ledger(conn=db, case_id=case["id"], keys=KEYS)).valid


async def test_an_illegal_action_names_what_is_possible_and_changes_nothing(db, loaded_county):
    household, report = household_report(loaded_county, 302)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    village = await actor_for(db, case["handling_node_code"])
    with pytest.raises(IllegalAction) as exc:
        await cases.act(conn=db, actor=village, case_id=case["id"], action="close", fields={}, now=T0, signer=SIGNER,
                        rooms=ROOMS)  # fmt: skip
    assert exc.value.details["allowed"] == ["accept", "escalate", "return", "extend"]
    with pytest.raises(MissingFields, match="next_recipient"):
        await cases.act(conn=db, actor=village, case_id=case["id"], action="return", fields={"note": "不归我们"},
                        now=T0, signer=SIGNER, rooms=ROOMS)  # fmt: skip
    assert len(await cases.ledger_events(conn=db, actor=village, case_id=case["id"])) == 2


async def test_a_return_goes_down_inside_the_handling_area_and_a_refusal_names_the_choices(db, loaded_county):
    household, report = household_report(loaded_county, 303)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    village_code = case["handling_node_code"]
    group_code = household.code.rsplit("-", 1)[0]
    village = await actor_for(db, village_code)
    # Offered: the case's own chain below the handling node, deepest first.
    assert case["return_choices"] == [household.code, group_code]
    township = household.code.split("-")[0]
    neighbour = next(n.code for n in loaded_county.nodes if n.level == "village" and n.code != village_code
                     and n.code.startswith(township + "-"))  # fmt: skip
    elsewhere = next(n.code for n in loaded_county.nodes if n.level == "group" and not n.code.startswith(township))

    async def give_back(who, code):
        return await cases.act(conn=db, actor=who, case_id=case["id"], action="return",
                               fields={"note": "不归我们", "next_recipient": code}, now=T0, signer=SIGNER,
                               rooms=ROOMS)  # fmt: skip

    for code in (neighbour, elsewhere, village_code, township, "no-such-node"):
        with pytest.raises(ReturnNotAllowed) as refused:
            await give_back(village, code)
        assert refused.value.details["allowed"] == [household.code, group_code], code
        assert refused.value.details["within"] == village_code and group_code in refused.value.message
    assert len(await cases.ledger_events(conn=db, actor=village, case_id=case["id"])) == 2  # nothing written
    after = await give_back(village, group_code)
    assert after["state"] == "assigned" and after["handling_node_code"] == group_code
    assert after["return_choices"] == [household.code]


async def test_a_township_hall_may_return_a_case_to_another_village_of_its_township(db, loaded_county):
    household, report = household_report(loaded_county, 309, severity=3)  # the township hall's
    case = (await submit(db, await actor_for(db, household.code), report)).case
    township = household.code.split("-")[0]
    assert case["handling_node_code"] == township
    neighbour = next(n.code for n in loaded_county.nodes if n.level == "village"
                     and n.code.startswith(township + "-") and not household.code.startswith(n.code))  # fmt: skip
    after = await cases.act(conn=db, actor=await actor_for(db, township), case_id=case["id"], action="return",
                            fields={"note": "属于邻村", "next_recipient": neighbour}, now=T0, signer=SIGNER,
                            rooms=ROOMS)  # fmt: skip
    assert after["handling_node_code"] == neighbour


async def test_an_extension_is_approved_one_tier_up_and_by_nobody_else(db, loaded_county):
    household, report = household_report(loaded_county, 310, severity=1)  # the group chief's
    case = (await submit(db, await actor_for(db, household.code), report)).case
    group_code = household.code.rsplit("-", 1)[0]
    village_code, township = group_code.rsplit("-", 1)[0], household.code.split("-")[0]
    assert case["tier"] == "chief" and case["handling_node_code"] == group_code
    group = await actor_for(db, group_code)
    village_chief = (await holder(db, village_code))["person_id"]
    village_deputy = (await holder(db, village_code, "deputy"))["person_id"]

    async def extend(approver):
        return await cases.act(conn=db, actor=group, case_id=case["id"], action="extend",
                               fields={"note": "等待测量", "approver": approver, "hours": 48}, now=T0, signer=SIGNER,
                               rooms=ROOMS)  # fmt: skip

    # Two tiers up, the same tier, the actor, or a name: refused, naming who may approve.
    for wrong in ((await holder(db, township))["person_id"], group.person_id, "村主任", "0", "²", " "):
        with pytest.raises(ApproverNotAllowed) as refused:
            await extend(str(wrong))
        assert {village_chief, village_deputy} <= set(refused.value.details["allowed"]), wrong
        assert refused.value.details["tier"] == "village_house" and str(village_chief) in refused.value.message
    extended = await extend(str(village_chief))
    assert extended["accept_by"] == case["accept_by"] + timedelta(hours=48)
    events = await cases.ledger_events(conn=db, actor=group, case_id=case["id"])
    assert events[-1]["action"] == "extend" and events[-1]["body"]["approver"] == village_chief


async def test_an_extension_at_the_village_house_needs_the_township(db, loaded_county):
    household, report = household_report(loaded_county, 311)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    village = await actor_for(db, case["handling_node_code"])
    township_chief = (await holder(db, household.code.split("-")[0]))["person_id"]
    with pytest.raises(ApproverNotAllowed):
        await cases.act(conn=db, actor=village, case_id=case["id"], action="extend",
                        fields={"note": "x", "approver": str((await holder(db, case["handling_node_code"],
                                                                           "deputy"))["person_id"])},
                        now=T0, signer=SIGNER, rooms=ROOMS)  # fmt: skip
    done = await cases.act(conn=db, actor=village, case_id=case["id"], action="extend",
                           fields={"note": "x", "approver": str(township_chief)}, now=T0, signer=SIGNER,
                           rooms=ROOMS)  # fmt: skip
    assert done["deadline_no"] == case["deadline_no"] + 1


async def test_at_the_county_centre_its_own_chief_approves_but_never_their_own_extension(db, loaded_county):
    household, report = household_report(loaded_county, 312, severity=4)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    assert case["tier"] == "county_center" and case["handling_node_code"] == "610827"
    county = await holder(db, "610827")
    mediator = cases.Actor(person_id=(await holder(db, household.code))["person_id"], read_paths=(county["path"],),
                           act_paths=(county["path"],), counties=("610827",))  # a county centre mediator, as app/ builds one  # fmt: skip
    chief = cases.Actor(person_id=county["person_id"], read_paths=(county["path"],), counties=("610827",))

    async def extend(who, approver):
        return await cases.act(conn=db, actor=who, case_id=case["id"], action="extend",
                               fields={"note": "x", "approver": str(approver)}, now=T0, signer=SIGNER, rooms=ROOMS)  # fmt: skip

    with pytest.raises(ApproverNotAllowed) as refused:
        await extend(chief, county["person_id"])
    assert refused.value.details["allowed"] == []
    assert (await extend(mediator, county["person_id"]))["deadline_no"] == case["deadline_no"] + 1


async def test_out_of_scope_readers_get_not_found(db, loaded_county):
    household, report = household_report(loaded_county, 304)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    stranger = await actor_for(db, [n.code for n in loaded_county.nodes if n.level == "household"][5000])
    with pytest.raises(CaseNotFound):
        await cases.get_case(conn=db, actor=stranger, case_id=case["id"])


async def test_same_key_same_body_is_the_same_case_and_a_different_body_conflicts(db, loaded_county):
    household, report = household_report(loaded_county, 305)
    reporter, key = await actor_for(db, household.code), uuid.uuid4()
    first = await submit(db, reporter, report, key=key)
    again = await submit(db, reporter, report, key=key, now=T0 + timedelta(minutes=3))
    assert first.case["id"] == again.case["id"] and not again.created
    changed = cases.Report(**{**report.__dict__, "severity": 3})
    with pytest.raises(IdempotencyConflict):
        await submit(db, reporter, changed, key=key)


async def test_a_phone_clock_in_the_future_does_not_set_the_time(db, loaded_county):
    household, report = household_report(loaded_county, 306, occurred_at=T0 + timedelta(days=400),
                                         client_recorded_at=T0 + timedelta(days=400))  # fmt: skip
    case = (await submit(db, await actor_for(db, household.code), report)).case
    assert case["reported_at"] == T0 and case["occurred_at"] == T0
    assert {"client_clock_ahead", "occurred_at_in_future"} <= set(case["route_flags"])


async def test_a_report_outside_the_county_falls_back_to_the_reporters_post(db, loaded_county):
    household, report = household_report(loaded_county, 307, lon=116.39, lat=39.91, crs=CRS.wgs84)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    assert case["outside_county"] and "outside_county" in case["route_flags"]
    assert case["handling_node_code"] == household.code.rsplit("-", 2)[0]  # the reporter's village


async def test_the_ledger_refuses_update_and_delete(db, loaded_county):
    household, report = household_report(loaded_county, 308)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    for sql in (
        "UPDATE case_event SET note = 'x' WHERE case_id = %(c)s",
        "DELETE FROM case_event WHERE case_id = %(c)s",
    ):
        # The app's role is refused by its grants (migration 0112); one role alone, by the trigger.
        with pytest.raises(psycopg.Error, match=r"permission denied|append-only"):
            async with db.transaction():
                await db.execute(sql, {"c": case["id"]})
    assert await fetch_value(db, "SELECT count(*) FROM case_event WHERE case_id = %(c)s", {"c": case["id"]}) == 2


# --- committed data: concurrency, workers, tampering ------------------------------
# Each of these commits, so each has a database of its own (fresh_database) and opens
# connections of its own to it.


async def _report_committed(url, county, index, key=None, now=T0):
    household, report = household_report(county, index)
    async with await connect(libpq_url(url)) as conn:
        out = await submit(conn, await actor_for(conn, household.code), report, key=key, now=now)
        return out.case


async def _tamper(url, *statements):
    """Change committed ledger rows behind the append-only trigger's back, in one transaction."""
    async with await connect(libpq_url(url)) as conn, conn.transaction():
        await conn.execute("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only")
        for sql, params in statements:
            await conn.execute(sql, params)
        await conn.execute("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only")


async def test_twenty_concurrent_retries_make_exactly_one_case(fresh_database, loaded_county):
    household, report = household_report(loaded_county, 400)
    key = uuid.uuid4()
    barrier = asyncio.Barrier(20)

    async def phone():  # one connection per phone, all sending the same key at once
        async with await connect(libpq_url(fresh_database)) as conn:
            actor = await actor_for(conn, household.code)
            await barrier.wait()
            return await submit(conn, actor, report, key=key)

    outcomes = await asyncio.gather(*(phone() for _ in range(20)), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    ids = [o.case["id"] for o in outcomes]
    assert len(ids) == 20 and len(set(ids)) == 1
    assert sum(o.created for o in outcomes) == 1
    async with await connect(libpq_url(fresh_database)) as c:
        assert await fetch_value(c, "SELECT count(*) FROM case_file WHERE idempotency_key = %(k)s", {"k": key}) == 1
        assert await fetch_value(c, "SELECT count(*) FROM case_event WHERE case_id = %(c)s", {"c": ids[0]}) == 2


async def test_an_action_that_waited_for_another_builds_on_its_ledger_entry(fresh_database, loaded_county):
    """Two steps on one case at the same moment: the second waits for the first's lock,
    and must then see the event the first committed (else it reuses its sequence number)."""
    case = await _report_committed(fresh_database, loaded_county, 406)
    url = libpq_url(fresh_database)
    async with await connect(url) as first, await connect(url) as second:
        village = await actor_for(first, case["handling_node_code"])
        pid = await fetch_value(second, "SELECT pg_backend_pid()")
        async with first.transaction():  # the first step holds the case until it commits
            await cases.write_section(conn=first, actor=village, case_id=case["id"], section="facts", body="事实",
                                      now=T0, signer=SIGNER)  # fmt: skip
            waiting = asyncio.create_task(cases.act(conn=second, actor=village, case_id=case["id"], action="accept",
                                                    fields={}, now=T0, signer=SIGNER, rooms=ROOMS))  # fmt: skip
            while await fetch_value(first, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %(p)s",
                                    {"p": pid}) != "Lock":  # fmt: skip
                assert not waiting.done(), waiting.exception()
                await asyncio.sleep(0.01)
        accepted = await waiting
        assert accepted["state"] == "accepted"
        events = await cases.ledger_events(conn=second, actor=village, case_id=case["id"])
        assert [(e["seq"], e["action"]) for e in events] == [(1, "report"), (2, "assign"), (3, "file_facts"),
                                                             (4, "accept")]  # fmt: skip
        assert (await cases.verify_ledger(conn=second, case_id=case["id"], keys=KEYS)).valid


async def test_two_simultaneous_retries_of_one_step_with_one_key_take_it_once(fresh_database, loaded_county):
    case = await _report_committed(fresh_database, loaded_county, 407)
    once = cases.Once(uuid.uuid4(), cases.fingerprint(case_id=case["id"], what="action", body={"action": "escalate"}))
    barrier = asyncio.Barrier(2)

    async def phone():
        async with await connect(libpq_url(fresh_database)) as conn:
            village = await actor_for(conn, case["handling_node_code"])
            await barrier.wait()
            return await cases.act_once(conn=conn, actor=village, case_id=case["id"], action="escalate",
                                        fields={}, now=T0, signer=SIGNER, rooms=ROOMS, once=once,
                                        render=lambda row: {"tier": row["tier"], "seq": row["deadline_no"]})  # fmt: skip

    first, second = await asyncio.gather(phone(), phone())
    assert first.body == second.body == {"tier": "township_hall", "seq": 2}
    assert sorted([first.replayed, second.replayed]) == [False, True]
    async with await connect(libpq_url(fresh_database)) as conn:
        actions = await fetch_all(conn, "SELECT action FROM case_event WHERE case_id = %(c)s ORDER BY seq",
                                  {"c": case["id"]})  # fmt: skip
    assert [a["action"] for a in actions] == ["report", "assign", "escalate", "assign"]


async def test_an_unaccepted_case_escalates_exactly_once_with_two_workers(fresh_database, loaded_county):
    case = await _report_committed(fresh_database, loaded_county, 401)
    later = T0 + timedelta(days=1, minutes=1)  # past the village house's accept-by
    barrier = asyncio.Barrier(2)

    async def worker():
        async with await connect(libpq_url(fresh_database)) as conn:
            await barrier.wait()
            return await cases.sweep(conn=conn, now=later, signer=SIGNER, rooms=ROOMS)

    results = await asyncio.gather(worker(), worker())
    assert sum(r.escalated.count(case["id"]) for r in results) == 1
    reporter = cases.Actor(case["reporter_person_id"], counties=("610827",))
    async with await connect(libpq_url(fresh_database)) as conn:
        again = await cases.sweep(conn=conn, now=later + timedelta(minutes=5), signer=SIGNER, rooms=ROOMS)
        assert case["id"] not in again.escalated
        events = [e["action"] for e in await cases.ledger_events(conn=conn, actor=reporter, case_id=case["id"])]
        now_case = await cases.get_case(conn=conn, actor=reporter, case_id=case["id"])
    assert events.count("escalate") == 1 and now_case["tier"] == "township_hall"


async def test_a_deadline_warning_comes_once_before_the_deadline(fresh_database, loaded_county):
    case = await _report_committed(fresh_database, loaded_county, 402)
    warn_time = T0 + timedelta(hours=19)  # inside the last quarter of the 24 h accept window
    async with await connect(libpq_url(fresh_database)) as conn:
        first = await cases.sweep(conn=conn, now=warn_time, signer=SIGNER, rooms=ROOMS)
        second = await cases.sweep(conn=conn, now=warn_time + timedelta(minutes=1), signer=SIGNER, rooms=ROOMS)
    assert case["id"] in first.warned and case["id"] not in second.warned and case["id"] not in first.escalated


async def test_changing_an_event_by_sql_is_caught_and_named(fresh_database, loaded_county):
    case = await _report_committed(fresh_database, loaded_county, 403)
    async with await connect(libpq_url(fresh_database)) as conn:
        target = await fetch_value(conn, "SELECT id FROM case_event WHERE case_id = %(c)s AND seq = 2",
                                   {"c": case["id"]})  # fmt: skip
        assert (await cases.verify_ledger(conn=conn, case_id=case["id"], keys=KEYS)).valid
    await _tamper(fresh_database, ("""UPDATE case_event SET body = jsonb_set(body, '{note}', '"改过"') WHERE id = %(id)s""",
                                   {"id": target}))  # fmt: skip
    async with await connect(libpq_url(fresh_database)) as conn:
        assert (await cases.verify_ledger(conn=conn, case_id=case["id"], keys=KEYS)).first_bad_event == target


async def test_the_cli_verifies_ledgers_and_names_a_broken_one(fresh_database, loaded_county):
    good = await _report_committed(fresh_database, loaded_county, 404)
    broken = await _report_committed(fresh_database, loaded_county, 405)
    await _tamper(
        fresh_database,
        ("UPDATE case_event SET actor_person_id = NULL WHERE case_id = %(c)s AND seq = 1", {"c": broken["id"]}),
        (
            "UPDATE case_event SET body = body - 'actor_person_id' WHERE case_id = %(c)s AND seq = 1",
            {"c": broken["id"]},
        ),
    )
    env = {**os.environ, "DATABASE_URL": fresh_database, "WUZHANG_LEDGER_KEY": base64.b64encode(b"k" * 32).decode()}

    async def run(*ids):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "ledger", "verify", *[f"--case={i}" for i in ids],
            env=env, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await proc.communicate()
        return proc.returncode, stderr.decode()

    code, stderr = await run(good["id"])
    assert code == 0 and "1 case ledgers checked, 0 failed" in stderr, stderr
    code, stderr = await run(good["id"], broken["id"])
    assert code == 1 and f"case {broken['id']}" in stderr, stderr


async def test_overdue_means_the_same_in_python_and_in_sql_for_every_state(db):
    now = T0
    for state in State:
        for accept_by, resolve_by in [(now - timedelta(hours=1), now + timedelta(days=1)),
                                      (now + timedelta(hours=1), now - timedelta(hours=1)),
                                      (now + timedelta(hours=1), now + timedelta(days=1))]:  # fmt: skip
            row = {"state": state.value, "accept_by": accept_by, "resolve_by": resolve_by}
            in_sql = await case_sql.is_late(db, state=state.value, accept_by=accept_by, resolve_by=resolve_by, now=now)
            assert in_sql == cases.is_overdue(row, now), (state, accept_by, resolve_by)


async def test_a_late_case_at_the_county_centre_is_reminded_once_per_deadline_and_never_loops(db, loaded_county):
    """The centre has no tier above it: a late case stays as it is (no escalation back to
    `assigned`), its lateness is a signed step, and its holders are told once per deadline."""
    household, report = household_report(loaded_county, 313, severity=4)
    case = (await submit(db, await actor_for(db, household.code), report)).case
    assert case["tier"] == "county_center"
    centre = await actor_for(db, "610827")
    for action in ("accept", "start_mediation"):
        await cases.act(conn=db, actor=centre, case_id=case["id"], action=action, fields={}, now=T0, signer=SIGNER,
                        rooms=ROOMS)  # fmt: skip
    late = T0 + timedelta(days=20)
    ticks = [await cases.sweep(conn=db, now=late + timedelta(seconds=s), signer=SIGNER, rooms=ROOMS) for s in (0, 2, 4)]
    assert [case["id"] in t.reminded for t in ticks] == [True, False, False]
    assert not any(case["id"] in t.escalated for t in ticks)
    after = await fetch_one(db, "SELECT state, tier, resolve_by FROM case_file WHERE id = %(c)s", {"c": case["id"]})
    assert after is not None and after["state"] == "mediating" and after["tier"] == "county_center"
    assert after["resolve_by"] > late
    actions = [e["action"] for e in await case_sql.events(db, case_id=case["id"])]
    assert actions[-1] == "centre_overdue" and "escalate" not in actions and actions.count("assign") == 1
    told = await fetch_one(db, "SELECT count(*) AS n, min(body) AS body FROM notification"
                               " WHERE case_id = %(c)s AND kind = 'overdue'", {"c": case["id"]})  # fmt: skip
    assert told is not None and told["n"] >= 1 and "依法终结" in told["body"]
    assert (await cases.verify_ledger(conn=db, case_id=case["id"], keys=KEYS)).valid
