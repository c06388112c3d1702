"""包案: a hard case owned by one county leader and one responsible unit (a department or a
township). Who may mark a case and what the owners may do with it are decided by the
callers (the county centre, the petition office, a duty leader taking a visit); this module
records the ownership itself: on the case, as its owning unit, and as a signed ledger step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.enums import State
from grid.cases.exceptions import CaseClosed, CaseNotFound, NotResponsible
from grid.cases.ledger import Signer
from grid.cases.service import Actor, _Writes
from grid.db import Conn, Row
from grid.exceptions import InvalidInput
from grid.glossary import FIVE_DUTY_NAMES, UNIT_PART_NAMES, role_name, tier_name, word
from grid.leadership import departments
from grid.leadership import repository as repo

# A case that has ended cannot be taken on.
ENDED = frozenset({State.closed.value, State.terminated.value})


@dataclass(frozen=True)
class Unit:
    """The responsible unit (责任单位): a department by code, or a township by node code."""

    department_code: str | None = None
    township_code: str | None = None

    def __post_init__(self) -> None:
        if (self.department_code is None) == (self.township_code is None):
            raise InvalidInput(
                f"{word(UNIT_PART_NAMES, 'owner')}须是一个部门（department_code）或一个乡镇（township_code），二选一",
                department_code=self.department_code, township_code=self.township_code,
            )  # fmt: skip


async def resolve_unit(
    conn: Conn, *, county_code: str, unit: Unit, case_path: str | None = None
) -> dict[str, Any]:  # fmt: skip
    """{department_id, node_id, code, name} of the unit; InvalidInput if it does not exist.
    A township owns only a case in its own area (`case_path`: where the case lies), so its
    dispatchers and hall mediators, who act for it, can read it."""
    if unit.department_code is not None:
        d = await departments.by_code(conn=conn, county_code=county_code, code=unit.department_code)
        return {"department_id": d["id"], "node_id": None, "code": d["code"], "name": d["name"]}
    node = await repo.township_by_code(conn, code=str(unit.township_code))
    if node is None:
        raise InvalidInput(f"没有编码为“{unit.township_code}”的乡镇（街道）", township_code=unit.township_code)
    if case_path is not None and not (case_path == node["path"] or case_path.startswith(node["path"] + ".")):
        raise InvalidInput(
            f"案件不在{node['name']}（{node['code']}）辖区内，不能由它作{word(UNIT_PART_NAMES, 'owner')}；"
            "请选案件所在的乡镇（街道），或一个部门", township_code=unit.township_code,
        )  # fmt: skip
    return {"department_id": None, "node_id": node["id"], "code": node["code"], "name": node["name"]}


async def own_case(
    *, conn: Conn, case_id: int, by_person_id: int, leader_person_id: int, unit: Unit, now: datetime,
    signer: Signer, note: str | None = None,
) -> Row:  # fmt: skip
    """Mark the case hard and give it its owning leader and unit (again, if it had them): the
    case row, its owning unit and a signed `take_ownership` step, in one transaction; the
    leader is told in their inbox. Returns the case as locked before the change, with
    `owner_leader` ({id, name}) and `owner_unit` ({department_id, node_id, code, name}) added."""
    async with conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, person_id=by_person_id)
        if case is None:
            raise CaseNotFound(f"没有编号为 {case_id} 的案件", case_id=case_id)
        if case["state"] in ENDED:
            raise InvalidInput(f"案件 {case_id} 已经办结，不能再包案", case_id=case_id, state=case["state"])
        leader = await repo.live_leader(conn, person_id=leader_person_id)
        if leader is None:
            leaders = await repo.live_leaders(conn)
            listed = "、".join(f"{r['id']}（{r['name']}）" for r in leaders) or "无（请管理员先建县级领导账号）"
            raise InvalidInput(f"包案领导须是在职的县级{role_name('leader')}（有{role_name('leader')}账号），"
                               f"填其人员编号（leader_person_id）。可选：{listed}",
                               leader_person_id=leader_person_id, allowed=[r["id"] for r in leaders])  # fmt: skip
        found = await resolve_unit(conn, county_code=case["county_code"], unit=unit,
                                   case_path=case["located_path"] or case["handling_path"])  # fmt: skip
        w = _Writes.for_case(case, signer)
        w.values.update({"hard": True, "owner_leader_person_id": leader_person_id})
        seq = w.event(
            actor=by_person_id, action="take_ownership", from_state=case["state"], to_state=case["state"], at=now,
            note=note or f"包案领导：{leader['name']}；{word(UNIT_PART_NAMES, 'owner')}：{found['name']}",
            extra={"leader_person_id": leader_person_id, "unit": {k: found[k] for k in ("code", "name")},
                   "unit_kind": "department" if found["department_id"] else "township"},
        )  # fmt: skip
        w.notify(person_ids=[leader_person_id], kind="take_ownership", seq=seq, at=now, title="新的包案案件",
                 body=f"案件 {case_id} 由您包案，{word(UNIT_PART_NAMES, 'owner')}：{found['name']}")  # fmt: skip
        await repo.set_owner_unit(conn, case_id=case_id, county_code=case["county_code"],
                                  department_id=found["department_id"],
                                  node_id=found["node_id"], person_id=by_person_id, at=now)  # fmt: skip
        await w.send(conn, at=now)
    return {**case, "owner_leader": leader, "owner_unit": found}


# --- who marks a case hard, the five duties, the owners' list ---------------------------


async def take_on(
    *, conn: Conn, actor: Actor, may_mark: bool, case_id: int, leader_person_id: int, unit: Unit, now: datetime,
    signer: Signer, note: str | None = None,
) -> Row:  # fmt: skip
    """包案 by someone who may mark hard cases (`may_mark`: the county centre's mediators
    and the petition office, which app/ tells from the caller's grants). A case the actor
    may not read is 'not found'; one they read but may not mark is NotResponsible. Returns
    what `own_case` returns."""
    async with conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, **actor.scope)
        if case is None or not case["readable"]:
            raise cases._not_found(case_id)
        if not may_mark:
            raise NotResponsible(
                f"只有{tier_name('county_center')}的{role_name('mediator')}和信访局可以把案件列为包案案件、"
                "确定包案领导和责任单位", case_id=case_id,
            )  # fmt: skip
        return await own_case(conn=conn, case_id=case_id, by_person_id=actor.person_id,
                              leader_person_id=leader_person_id, unit=unit, now=now, signer=signer,
                              note=note)  # fmt: skip


async def tick_duty(
    *, conn: Conn, actor: Actor, case_id: int, duty: str, note: str, now: datetime, signer: Signer
) -> int:
    """One of the five duties (五包) ticked with its note by an owner of the hard case
    (grid.cases.service.owns), and signed onto the ledger. Returns how many of the five
    are ticked now."""
    if duty not in FIVE_DUTY_NAMES:
        names = "、".join(f"{name}（{code}）" for code, name in FIVE_DUTY_NAMES.items())
        raise InvalidInput(f"不认识的五包事项“{duty}”；可选：{names}", duty=duty)
    if not note.strip():
        raise InvalidInput(f"{word(FIVE_DUTY_NAMES, duty)}须写明落实情况（note）", duty=duty)
    async with conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, **actor.scope)
        if case is None or not case["readable"]:
            raise cases._not_found(case_id)
        if not cases.owns(actor, case):
            why = "的包案领导和责任单位不包括你" if case["hard"] else "还不是包案案件"
            raise NotResponsible(f"五包只能由包案领导或责任单位勾选；案件 {case_id} {why}", case_id=case_id)
        if case["state"] in ENDED:
            raise CaseClosed(f"案件 {case_id} 已经办结，五包不能再改；如确需修改，请先重新开启案件", case_id=case_id)
        w = _Writes.for_case(case, signer)
        w.event(actor=actor.person_id, action="five_duty", from_state=case["state"], to_state=case["state"], at=now,
                note=f"{word(FIVE_DUTY_NAMES, duty)}：{note}", extra={"duty": duty})  # fmt: skip
        await repo.tick_duty(conn, case_id=case_id, county_code=case["county_code"], duty=duty, note=note,
                             person_id=actor.person_id, at=now)  # fmt: skip
        await w.send(conn, at=now)
        return await repo.duty_count(conn, case_id=case_id)


async def owned_cases(
    *, conn: Conn, actor: Actor, open_only: bool, before_id: int | None, limit: int
) -> tuple[list[Row], int | None]:
    """A page of the hard cases the actor owns (as leader or as owning unit's staff), newest
    first, and the cursor of the next page."""
    rows = await repo.owned_cases(conn, person_id=actor.person_id, department_ids=actor.department_ids,
                                  township_ids=cases.unit_node_ids(actor), open_only=open_only, before_id=before_id,
                                  limit=limit + 1)  # fmt: skip
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)
