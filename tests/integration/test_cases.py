"""Cases against a real PostGIS: routing, the workflow, deadlines, the signed ledger."""
from __future__ import annotations

import base64
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geo.crs import CRS, wgs84_to_gcj02
from grid import cases
from grid.case_exceptions import CaseNotFound, IdempotencyConflict, IllegalAction, MissingFields, NotResponsible
from grid.ledger import Signer

SIGNER = Signer.from_seed(base64.b64encode(b"k" * 32).decode())
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def holder(session, code, role="chief"):
    return session.execute(
        text("""SELECT po.person_id, n.path::text AS path FROM post po JOIN node n ON n.id = po.node_id
                 WHERE n.code = :c AND po.role = :r AND po.ended_at IS NULL"""), {"c": code, "r": role},
    ).mappings().one()  # fmt: skip


def actor_for(session, code):
    h = holder(session, code)
    return cases.Actor(person_id=h["person_id"], read_paths=(h["path"],))


def household_report(county, index=300, **kw):
    household = [n for n in county.nodes if n.level == "household"][index]
    p = household.geom.point_on_surface()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    fields = dict(lon=lon, lat=lat, crs=CRS.gcj02, category="neighbours", severity=2, description="两家因排水沟争吵",
                  parties=(cases.Party("张三", "13800000001", "申请人"), cases.Party("李四", None, "被申请人")))  # fmt: skip
    fields.update(kw)
    return household, cases.Report(**fields)


def test_a_gcj02_report_routes_to_the_village_house_of_the_right_village(db, loaded_county):
    household, report = household_report(loaded_county)
    reporter = actor_for(db, household.code)
    out = cases.submit_report(session=db, actor=reporter, key=uuid.uuid4(), report=report, now=T0, signer=SIGNER,
                              county_code="610827")  # fmt: skip
    case = out.case
    village_code = household.code.rsplit("-", 2)[0]
    assert out.created and case["state"] == "assigned" and case["tier"] == "village_house"
    assert case["handling_node_code"] == village_code and case["located_node_code"] == household.code
    assert case["rule_version"] == 1
    assert case["accept_by"] == T0 + timedelta(days=1) and case["resolve_by"] == T0 + timedelta(days=3)
    inbox = db.execute(text("SELECT person_id, kind, title || body AS words FROM notification WHERE case_id = :c"),
                       {"c": case["id"]}).mappings().all()  # fmt: skip
    assert {r["person_id"] for r in inbox} == {holder(db, village_code)["person_id"], holder(db, village_code, "deputy")["person_id"]}
    assert all("张三" not in r["words"] and "13800000001" not in r["words"] for r in inbox)  # no personal data


def test_the_full_path_to_closed_with_a_verified_ledger(db, loaded_county):
    household, report = household_report(loaded_county, 301)
    reporter = actor_for(db, household.code)
    case = cases.submit_report(session=db, actor=reporter, key=uuid.uuid4(), report=report, now=T0, signer=SIGNER,
                               county_code="610827").case  # fmt: skip
    village = actor_for(db, case["handling_node_code"])
    step = lambda who, action, **f: cases.act(session=db, actor=who, case_id=case["id"], action=action, fields=f,  # noqa: E731
                                              now=T0 + timedelta(hours=1), signer=SIGNER)
    step(village, "accept")
    step(village, "start_mediation")
    failed = step(village, "fail", note="双方不接受调解方案")
    assert failed["state"] == "failed" and failed["outcome"] == "failed"
    escalated = step(village, "escalate", note="提交和事堂")
    assert escalated["state"] == "assigned" and escalated["tier"] == "township_hall"
    township = actor_for(db, escalated["handling_node_code"])
    assert escalated["handling_node_code"] == household.code.split("-")[0]
    with pytest.raises(NotResponsible):
        step(village, "accept")  # no longer theirs
    step(township, "accept")
    step(township, "start_mediation")
    step(township, "resolve", agreement_text="重修排水沟，费用各半")
    step(township, "return_visit", note="双方满意", satisfaction=5)
    closed = step(township, "close")
    assert closed["state"] == "closed" and closed["satisfaction"] == 5
    events = cases.ledger_events(session=db, actor=township, case_id=case["id"])
    assert [e["action"] for e in events] == ["report", "assign", "accept", "start_mediation", "fail", "escalate",
                                             "assign", "accept", "start_mediation", "resolve", "return_visit", "close"]  # fmt: skip
    assert events[0]["actor_person_id"] == reporter.person_id and events[1]["actor_person_id"] is None
    assert events[2]["actor_person_id"] == village.person_id and events[7]["actor_person_id"] == township.person_id
    assert cases.verify_ledger(session=db, case_id=case["id"], signer=SIGNER) == (True, None)


def test_an_illegal_action_names_what_is_possible_and_changes_nothing(db, loaded_county):
    household, report = household_report(loaded_county, 302)
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    village = actor_for(db, case["handling_node_code"])
    with pytest.raises(IllegalAction) as exc:
        cases.act(session=db, actor=village, case_id=case["id"], action="close", fields={}, now=T0, signer=SIGNER)
    assert exc.value.details["allowed"] == ["accept", "escalate", "return", "extend"]
    with pytest.raises(MissingFields, match="next_recipient"):
        cases.act(session=db, actor=village, case_id=case["id"], action="return", fields={"note": "不归我们"}, now=T0,
                  signer=SIGNER)  # fmt: skip
    assert len(cases.ledger_events(session=db, actor=village, case_id=case["id"])) == 2


def test_a_return_names_the_next_recipient_and_is_not_a_dead_end(db, loaded_county):
    household, report = household_report(loaded_county, 303)
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    village = actor_for(db, case["handling_node_code"])
    other = next(n.code for n in loaded_county.nodes if n.level == "village" and n.code != case["handling_node_code"])
    after = cases.act(session=db, actor=village, case_id=case["id"], action="return",
                      fields={"note": "属于邻村", "next_recipient": other}, now=T0, signer=SIGNER)  # fmt: skip
    assert after["state"] == "assigned" and after["handling_node_code"] == other


def test_out_of_scope_readers_get_not_found(db, loaded_county):
    household, report = household_report(loaded_county, 304)
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    stranger = actor_for(db, [n.code for n in loaded_county.nodes if n.level == "household"][5000])
    with pytest.raises(CaseNotFound):
        cases.get_case(session=db, actor=stranger, case_id=case["id"])


def test_same_key_same_body_is_the_same_case_and_a_different_body_conflicts(db, loaded_county):
    household, report = household_report(loaded_county, 305)
    reporter, key = actor_for(db, household.code), uuid.uuid4()
    first = cases.submit_report(session=db, actor=reporter, key=key, report=report, now=T0, signer=SIGNER, county_code="610827")
    again = cases.submit_report(session=db, actor=reporter, key=key, report=report, now=T0 + timedelta(minutes=3),
                                signer=SIGNER, county_code="610827")  # fmt: skip
    assert first.case["id"] == again.case["id"] and not again.created
    changed = cases.Report(**{**report.__dict__, "severity": 3})
    with pytest.raises(IdempotencyConflict):
        cases.submit_report(session=db, actor=reporter, key=key, report=changed, now=T0, signer=SIGNER, county_code="610827")


def test_a_phone_clock_in_the_future_does_not_set_the_time(db, loaded_county):
    household, report = household_report(loaded_county, 306, occurred_at=T0 + timedelta(days=400),
                                         client_recorded_at=T0 + timedelta(days=400))  # fmt: skip
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    assert case["reported_at"] == T0 and case["occurred_at"] == T0
    assert {"client_clock_ahead", "occurred_at_in_future"} <= set(case["route_flags"])


def test_a_report_outside_the_county_falls_back_to_the_reporters_post(db, loaded_county):
    household, report = household_report(loaded_county, 307, lon=116.39, lat=39.91, crs=CRS.wgs84)
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    assert case["outside_county"] and "outside_county" in case["route_flags"]
    assert case["handling_node_code"] == household.code.rsplit("-", 2)[0]  # the reporter's village


def test_the_ledger_refuses_update_and_delete(db, loaded_county):
    household, report = household_report(loaded_county, 308)
    case = cases.submit_report(session=db, actor=actor_for(db, household.code), key=uuid.uuid4(), report=report,
                               now=T0, signer=SIGNER, county_code="610827").case  # fmt: skip
    for sql in ("UPDATE case_event SET note = 'x' WHERE case_id = :c", "DELETE FROM case_event WHERE case_id = :c"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.begin_nested():
                db.execute(text(sql), {"c": case["id"]})


# --- committed data: concurrency, workers, tampering ------------------------------


def _report_committed(engine, county, index, key=None, now=T0):
    household, report = household_report(county, index)
    with Session(engine) as s:
        out = cases.submit_report(session=s, actor=actor_for(s, household.code), key=key or uuid.uuid4(),
                                  report=report, now=now, signer=SIGNER, county_code="610827")  # fmt: skip
        s.commit()
        return out.case


def test_twenty_concurrent_retries_make_exactly_one_case(database_url, engine, loaded_county):
    household, report = household_report(loaded_county, 400)
    key, ids, errors = uuid.uuid4(), [], []
    barrier = threading.Barrier(20, timeout=30)
    wide = create_engine(database_url, pool_size=20, max_overflow=0)  # one connection per phone

    def submit():
        try:
            with Session(wide) as s:
                actor = actor_for(s, household.code)
                barrier.wait()
                out = cases.submit_report(session=s, actor=actor, key=key, report=report, now=T0, signer=SIGNER,
                                          county_code="610827")  # fmt: skip
                s.commit()
                ids.append(out.case["id"])
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wide.dispose()
    assert errors == [] and len(ids) == 20 and len(set(ids)) == 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM case_file WHERE idempotency_key = :k"), {"k": key}).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM case_event WHERE case_id = :c"), {"c": ids[0]}).scalar() == 2


def test_an_unaccepted_case_escalates_exactly_once_with_two_workers(engine, loaded_county):
    case = _report_committed(engine, loaded_county, 401)
    later = T0 + timedelta(days=1, minutes=1)  # past the village house's accept-by
    barrier, results = threading.Barrier(2, timeout=30), []

    def worker():
        with Session(engine) as s:
            barrier.wait()
            results.append(cases.sweep(session=s, now=later, signer=SIGNER))
            s.commit()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.escalated.count(case["id"]) for r in results) == 1
    with Session(engine) as s:
        again = cases.sweep(session=s, now=later + timedelta(minutes=5), signer=SIGNER)
        s.commit()
        assert case["id"] not in again.escalated
        events = [e["action"] for e in cases.ledger_events(session=s, actor=cases.Actor(case["reporter_person_id"]), case_id=case["id"])]
        now_case = cases.get_case(session=s, actor=cases.Actor(case["reporter_person_id"]), case_id=case["id"])
    assert events.count("escalate") == 1 and now_case["tier"] == "township_hall"


def test_a_deadline_warning_comes_once_before_the_deadline(engine, loaded_county):
    case = _report_committed(engine, loaded_county, 402)
    warn_time = T0 + timedelta(hours=19)  # inside the last quarter of the 24 h accept window
    with Session(engine) as s:
        first = cases.sweep(session=s, now=warn_time, signer=SIGNER)
        second = cases.sweep(session=s, now=warn_time + timedelta(minutes=1), signer=SIGNER)
        s.commit()
    assert case["id"] in first.warned and case["id"] not in second.warned and case["id"] not in first.escalated


def test_changing_an_event_by_sql_is_caught_and_named(engine, loaded_county):
    case = _report_committed(engine, loaded_county, 403)
    with engine.begin() as c:
        target = c.execute(text("SELECT id FROM case_event WHERE case_id = :c AND seq = 2"), {"c": case["id"]}).scalar()
        c.execute(text("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only"))
        c.execute(text("UPDATE case_event SET body = jsonb_set(body, '{note}', '\"改过\"') WHERE id = :id"), {"id": target})
        c.execute(text("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only"))
    with Session(engine) as s:
        assert cases.verify_ledger(session=s, case_id=case["id"], signer=SIGNER) == (False, target)


def test_the_cli_verifies_ledgers_and_names_a_broken_one(engine, database_url, loaded_county):
    import os
    import subprocess
    import sys

    good = _report_committed(engine, loaded_county, 404)
    broken = _report_committed(engine, loaded_county, 405)
    with engine.begin() as c:
        c.execute(text("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only"))
        c.execute(text("UPDATE case_event SET actor_person_id = NULL WHERE case_id = :c AND seq = 1"), {"c": broken["id"]})
        c.execute(text("UPDATE case_event SET body = body - 'actor_person_id' WHERE case_id = :c AND seq = 1"),
                  {"c": broken["id"]})  # fmt: skip
        c.execute(text("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only"))
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_LEDGER_KEY": base64.b64encode(b"k" * 32).decode()}
    run = lambda *ids: subprocess.run([sys.executable, "-m", "app.cli", "ledger", "verify", *[f"--case={i}" for i in ids]],  # noqa: E731
                                      env=env, capture_output=True, text=True)  # fmt: skip
    ok = run(good["id"])
    assert ok.returncode == 0 and "1 case ledgers checked, 0 failed" in ok.stderr
    failed = run(good["id"], broken["id"])
    assert failed.returncode == 1 and f"case {broken['id']}" in failed.stderr


def test_overdue_means_the_same_in_python_and_in_sql_for_every_state(db):
    from grid.case_models import CASE_STATES

    now = T0
    for state in CASE_STATES:
        for accept_by, resolve_by in [(now - timedelta(hours=1), now + timedelta(days=1)),
                                      (now + timedelta(hours=1), now - timedelta(hours=1)),
                                      (now + timedelta(hours=1), now + timedelta(days=1))]:  # fmt: skip
            row = {"state": state, "accept_by": accept_by, "resolve_by": resolve_by}
            in_sql = db.execute(
                text(f"SELECT {cases.OVERDUE_SQL} FROM (SELECT CAST(:state AS text) AS state, "
                     "CAST(:accept_by AS timestamptz) AS accept_by, CAST(:resolve_by AS timestamptz) AS resolve_by) c"),
                {**row, "now": now},
            ).scalar()  # fmt: skip
            assert bool(in_sql) == cases.is_overdue(row, now), (state, accept_by, resolve_by)
