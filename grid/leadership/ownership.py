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
from grid.cases.enums import State
from grid.cases.exceptions import CaseNotFound
from grid.cases.ledger import Signer
from grid.cases.service import _Writes
from grid.db import Conn, Row
from grid.exceptions import InvalidInput
from grid.glossary import UNIT_PART_NAMES, role_name, word
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


async def resolve_unit(conn: Conn, *, county_code: str, unit: Unit) -> dict[str, Any]:
    """{department_id, node_id, code, name} of the unit; InvalidInput if it does not exist."""
    if unit.department_code is not None:
        d = await departments.by_code(conn=conn, county_code=county_code, code=unit.department_code)
        return {"department_id": d["id"], "node_id": None, "code": d["code"], "name": d["name"]}
    node = await repo.township_by_code(conn, code=str(unit.township_code))
    if node is None:
        raise InvalidInput(f"没有编码为“{unit.township_code}”的乡镇（街道）", township_code=unit.township_code)
    return {"department_id": None, "node_id": node["id"], "code": node["code"], "name": node["name"]}


async def own_case(
    *, conn: Conn, case_id: int, by_person_id: int, leader_person_id: int, unit: Unit, now: datetime,
    signer: Signer, note: str | None = None,
) -> Row:  # fmt: skip
    """Mark the case hard and give it its owning leader and unit (again, if it had them): the
    case row, its owning unit and a signed `take_ownership` step, in one transaction; the
    leader is told in their inbox. Returns the case as locked before the change."""
    async with conn.transaction():
        case = await case_sql.case_for_action(conn, case_id=case_id, person_id=by_person_id)
        if case is None:
            raise CaseNotFound(f"没有编号为 {case_id} 的案件", case_id=case_id)
        if case["state"] in ENDED:
            raise InvalidInput(f"案件 {case_id} 已经办结，不能再包案", case_id=case_id, state=case["state"])
        leader = await repo.live_leader(conn, person_id=leader_person_id)
        if leader is None:
            raise InvalidInput(f"包案领导须是在职的县级{role_name('leader')}（有{role_name('leader')}账号）",
                               leader_person_id=leader_person_id)  # fmt: skip
        found = await resolve_unit(conn, county_code=case["county_code"], unit=unit)
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
        await repo.set_owner_unit(conn, case_id=case_id, department_id=found["department_id"],
                                  node_id=found["node_id"], person_id=by_person_id, at=now)  # fmt: skip
        await w.send(conn, at=now)
    return case
