"""The county centre's own work beside the workflow table: joint handling by several
departments (一窗受理、集成办理) and discipline inspection's notes (纪检监督). Its lawful
closure (依法终结) is a step of the table (grid.cases.workflow: `terminate`).

Each write locks its case, is a signed ledger step and tells whom it concerns (inbox and
push), in one transaction, like every case write (grid.cases.service)."""

from __future__ import annotations

from datetime import datetime

from grid.cases import repository as case_sql
from grid.cases.enums import State, Tier
from grid.cases.exceptions import CaseClosed, NotResponsible
from grid.cases.ledger import Signer
from grid.cases.service import Actor, _locked_for_actor, _not_found, _Writes, can_terminate
from grid.db import Conn, Row
from grid.glossary import UNIT_PART_NAMES, action_name, role_name, tier_name, word
from grid.leadership import departments
from grid.leadership import repository as repo
from grid.leadership.refusals import AlreadyRecorded, NotAtCentre, NotFound

ENDED = frozenset({State.closed.value, State.terminated.value})


def _centre_case(case: Row) -> None:
    if case["tier"] != Tier.county_center:
        raise NotAtCentre(
            f"案件 {case['id']} 现由{tier_name(case['tier'])}承办；{word(UNIT_PART_NAMES, 'joint')}只在"
            f"{tier_name(Tier.county_center)}安排",
            case_id=case["id"], tier=case["tier"],
        )  # fmt: skip
    if case["state"] in ENDED:
        raise CaseClosed(f"案件 {case['id']} 已办结，不能再安排{word(UNIT_PART_NAMES, 'joint')}", case_id=case["id"])


async def add_joint(
    *, conn: Conn, actor: Actor, case_id: int, department_code: str, task: str, now: datetime, signer: Signer
) -> None:
    """A co-handling department joins a case at the centre, with its part (task). Only the
    centre's mediators assign it; the department's staff are told, and may read the case
    from now on (the read rule follows case_unit)."""
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id)
        _centre_case(case)
        if not can_terminate(actor, case):
            raise NotResponsible(f"只有{tier_name(Tier.county_center)}的{role_name('mediator')}可以安排"
                                 f"{word(UNIT_PART_NAMES, 'joint')}", case_id=case_id)  # fmt: skip
        dept = await departments.by_code(conn=conn, county_code=case["county_code"], code=department_code)
        if await repo.case_department_unit(conn, case_id=case_id, department_id=dept["id"], part="joint"):
            raise AlreadyRecorded(f"{dept['name']}已是本案的{word(UNIT_PART_NAMES, 'joint')}",
                                  case_id=case_id, department=department_code)  # fmt: skip
        await repo.insert_department_unit(conn, case_id=case_id, county_code=case["county_code"],
                                          department_id=dept["id"], part="joint", task=task,
                                          person_id=actor.person_id, at=now)  # fmt: skip
        w = _Writes.for_case(case, signer)
        seq = w.event(
            actor=actor.person_id,
            action="joint_assign",
            from_state=case["state"],
            to_state=case["state"],
            at=now,
            note=task,
            extra={"department_code": dept["code"], "department_name": dept["name"]},
        )
        w.notify(person_ids=await repo.department_staff(conn, department_id=dept["id"]), kind="joint_assign", seq=seq,
                 at=now, title=f"新的{word(UNIT_PART_NAMES, 'joint')}任务",
                 body=f"案件 {case_id} 请{dept['name']}参与{action_name('joint_assign')}")  # fmt: skip
        await w.send(conn, at=now)


async def joint_done(
    *, conn: Conn, actor: Actor, case_id: int, department_code: str, note: str, now: datetime, signer: Signer
) -> None:
    """The department's part is done: its staff say so, with a note; the case's holders hear it."""
    async with conn.pipeline(), conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, **actor.scope)
        if case is None or not case["readable"]:
            raise _not_found(case_id)
        dept = await departments.by_code(conn=conn, county_code=case["county_code"], code=department_code)
        if dept["id"] not in actor.department_ids:
            raise NotResponsible(f"只有{dept['name']}的{role_name('department_staff')}可以确认本部门的办理结果",
                                 case_id=case_id, department=department_code)  # fmt: skip
        unit = await repo.case_department_unit(conn, case_id=case_id, department_id=dept["id"], part="joint")
        if unit is None:
            raise NotFound(f"{dept['name']}不是案件 {case_id} 的{word(UNIT_PART_NAMES, 'joint')}",
                           case_id=case_id, department=department_code)  # fmt: skip
        if unit["done_at"] is not None:
            raise AlreadyRecorded(f"{dept['name']}在本案的办理已确认完成", case_id=case_id, department=department_code)
        await repo.mark_unit_done(conn, unit_id=unit["id"], note=note, at=now)
        w = _Writes.for_case(case, signer)
        seq = w.event(
            actor=actor.person_id,
            action="joint_done",
            from_state=case["state"],
            to_state=case["state"],
            at=now,
            note=note,
            extra={"department_code": dept["code"], "department_name": dept["name"]},
        )
        holders = [r["person_id"] for r in await case_sql.recipients(conn, case_id=case_id)]
        w.notify(person_ids=holders, kind="joint_done", seq=seq, at=now, title=action_name("joint_done"),
                 body=f"案件 {case_id}：{dept['name']}已完成所承担的部分")  # fmt: skip
        await w.send(conn, at=now)


async def supervise(*, conn: Conn, actor: Actor, case_id: int, note: str, now: datetime, signer: Signer) -> None:
    """纪检监督: a supervision note on a case the supervisor reads (every county-centre case),
    signed onto its ledger; the holders are told a note was written (not what it says)."""
    async with conn.pipeline(), conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, **actor.scope)
        if case is None or not case["readable"]:
            raise _not_found(case_id)
        if not actor.supervises:
            raise NotResponsible(f"只有{role_name('supervisor')}可以写{action_name('supervise')}意见", case_id=case_id)
        w = _Writes.for_case(case, signer)
        seq = w.event(actor=actor.person_id, action="supervise", from_state=case["state"], to_state=case["state"],
                      at=now, note=note)  # fmt: skip
        holders = [r["person_id"] for r in await case_sql.recipients(conn, case_id=case_id)]
        w.notify(person_ids=holders, kind="supervise", seq=seq, at=now, title=f"新的{action_name('supervise')}意见",
                 body=f"案件 {case_id} 有新的{action_name('supervise')}意见，请查看台账")  # fmt: skip
        await w.send(conn, at=now)
