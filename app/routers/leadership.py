"""包案 and the county's departments over HTTP: the list of departments and the admin's
edits of it, marking a case hard with its owners, the five duties, and the cases a
leader or a unit owns (docs/leadership.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app import policy, schemas
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.deps import AdminDep, CallerDep, SessionDep, SettingsDep
from app.inputs import Id
from app.routers.cases import ERRORS, actor_of
from grid import glossary
from grid.cases import service as cases
from grid.leadership import departments, ownership
from grid.leadership.departments import PETITION_OFFICE

router = APIRouter(prefix="/api/v1", tags=["leadership"])
OwnershipDep = Annotated[Principal, Depends(policy.case_ownership)]


def _now() -> datetime:
    return datetime.now(UTC)


# --- departments ------------------------------------------------------------------


@router.get("/departments", responses=ERRORS)
async def list_departments(caller: CallerDep, conn: SessionDep) -> list[schemas.DepartmentOut]:
    """The county's functional units (信访局, 司法局, 民政局, ...), inactive ones too."""
    rows = await departments.listed(conn=conn, county_code=caller.county_code, active_only=False)
    return [schemas.DepartmentOut(code=r["code"], name=r["name"], active=r["active"]) for r in rows]


@router.post("/admin/departments", status_code=201, responses=ERRORS)
async def add_department(body: schemas.DepartmentIn, caller: AdminDep, conn: SessionDep) -> schemas.DepartmentOut:
    """A new department at the end of the list (audited). A code already taken is 409."""
    async with conn.transaction():
        row = await departments.add(conn=conn, county_code=caller.county_code, code=body.code, name=body.name)
        await accounts.record(conn=conn, county_code=caller.county_code, actor_user_id=caller.user_id,
                              action="admin.department_add", target=f"department:{body.code}", ip=caller.ip,
                              details={"name": row["name"]})  # fmt: skip
    return schemas.DepartmentOut(**row)


@router.patch("/admin/departments/{code}", responses=ERRORS)
async def change_department(
    code: Annotated[str, Path(max_length=32)], body: schemas.DepartmentChangeIn, caller: AdminDep,
    conn: SessionDep,
) -> schemas.DepartmentOut:  # fmt: skip
    """Rename a department, or (de)activate it (audited). An inactive one takes no new staff
    and owns no new case; its staff keep reading the cases it has."""
    async with conn.transaction():
        row = await departments.change(conn=conn, county_code=caller.county_code, code=code, name=body.name,
                                       active=body.active)  # fmt: skip
        await accounts.record(conn=conn, county_code=caller.county_code, actor_user_id=caller.user_id,
                              action="admin.department_change", target=f"department:{code}", ip=caller.ip,
                              details=body.model_dump(exclude_none=True))  # fmt: skip
    return schemas.DepartmentOut(**row)


# --- 包案 -----------------------------------------------------------------------------


def marks_hard_cases(caller: Principal) -> bool:
    """The county centre's mediators and the petition office (信访局) mark cases hard."""
    return any(
        (g.role == "mediator" and g.tier == "county_center")
        or (g.role == "department_staff" and g.department_code == PETITION_OFFICE)
        for g in caller.grants
    )


@router.post("/cases/{case_id}/ownership", responses=ERRORS)
async def take_ownership(
    case_id: Id, body: schemas.OwnershipIn, caller: OwnershipDep, conn: SessionDep, settings: SettingsDep
) -> schemas.OwnershipOut:
    """包案: mark the case hard, with its owning county leader (`leader_person_id`; a wrong one
    is 422 listing the county's leaders) and its owning unit (a department or the township
    the case lies in). By the county centre's mediators and the petition office; again
    replaces the owners. Signed onto the ledger; the leader is told in their inbox."""
    unit = ownership.Unit(department_code=body.unit.department_code, township_code=body.unit.township_code)
    done = await ownership.take_on(conn=conn, actor=actor_of(caller), may_mark=marks_hard_cases(caller),
                                   case_id=case_id, leader_person_id=body.leader_person_id, unit=unit, now=_now(),
                                   signer=settings.ledger_signer(), note=body.note)  # fmt: skip
    leader, found = done["owner_leader"], done["owner_unit"]
    # Not the case file: a petition office that hands a case to another unit no longer reads it.
    return schemas.OwnershipOut(
        case_id=case_id, hard=True, owner_leader=schemas.PersonRef(person_id=leader["id"], name=leader["name"]),
        owner_unit=schemas.UnitRef(kind="department" if found["department_id"] else "township", code=found["code"],
                                   name=found["name"]),
    )  # fmt: skip


@router.post("/cases/{case_id}/duties/{duty}", responses=ERRORS)
async def tick_duty(
    case_id: Id, duty: Annotated[str, Path(max_length=16)], body: schemas.DutyIn, caller: CallerDep,
    conn: SessionDep, settings: SettingsDep,
) -> schemas.DutyTicked:  # fmt: skip
    """五包: tick one of the five duties (know, educate, solve, stabilise, by_law) with a note,
    by the hard case's owning leader or its owning unit's staff; ticked again, the note is
    replaced. Each tick is a signed ledger step (`five_duty`)."""
    done = await ownership.tick_duty(conn=conn, actor=actor_of(caller), case_id=case_id, duty=duty, note=body.note,
                                     now=_now(), signer=settings.ledger_signer())  # fmt: skip
    return schemas.DutyTicked(case_id=case_id, duty=duty, name=glossary.word(glossary.FIVE_DUTY_NAMES, duty),
                              done=done)  # fmt: skip


def _unit(kind: str | None, code: str | None, name: str | None) -> schemas.UnitRef | None:
    return schemas.UnitRef(kind=kind, code=code, name=name) if kind and code and name else None  # type: ignore[arg-type]


@router.get("/me/owned", responses=ERRORS)
async def my_owned(
    caller: CallerDep,
    conn: SessionDep,
    open_only: Annotated[bool, Query(alias="open", description="only cases not yet ended")] = False,
    cursor: Annotated[Id | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.OwnedPage:
    """The hard cases I own (包案), newest first: as their leader, or as staff of their owning
    unit; each with its state, how many of the five duties are ticked, and how it ended."""
    now = _now()
    rows, next_cursor = await ownership.owned_cases(conn=conn, actor=actor_of(caller), open_only=open_only,
                                                    before_id=cursor, limit=limit)  # fmt: skip
    items = [
        schemas.OwnedCase(
            id=r["id"], state=r["state"], state_name=glossary.state_name(r["state"]), tier=r["tier"],
            tier_name=glossary.tier_name(r["tier"]), category=r["category"],
            category_name=r["category_name"], severity=r["severity"],
            source=r["source"], source_name=glossary.word(glossary.SOURCE_NAMES, r["source"]),
            handling_node=r["handling_node_code"], handling_node_name=r["handling_node_name"],
            reported_at=r["reported_at"], overdue=cases.is_overdue(r, now), as_leader=bool(r["as_leader"]),
            owner_leader=schemas.PersonRef(person_id=r["owner_leader_person_id"], name=r["owner_leader_name"])
            if r["owner_leader_person_id"] else None,
            owner_unit=_unit(r["unit_kind"], r["unit_code"], r["unit_name"]), duties_done=r["duties_done"],
            hard_outcome=r["hard_outcome"], closed_at=r["closed_at"],
            hard_outcome_name=glossary.word(glossary.HARD_OUTCOME_NAMES, r["hard_outcome"]) if r["hard_outcome"]
            else None,
        )
        for r in rows
    ]  # fmt: skip
    return schemas.OwnedPage(items=items, next_cursor=next_cursor)
