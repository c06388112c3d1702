"""The county centre's joint handling and discipline inspection, the township hall's team
(五位一体) and social-assistance referrals (社会救助), over HTTP. Lawful closure (依法终结)
is an action of the case workflow: POST /api/v1/cases/{id}/actions {"action": "terminate"}."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app import policy, schemas
from app.accounts.scope import Principal, path_covers
from app.deps import CallerDep, SessionDep, SettingsDep
from app.inputs import Id
from app.routers.cases import ERRORS, _parties_audit, actor_of, case_detail, case_out
from grid import glossary
from grid.cases import service as cases
from grid.cases.enums import Tier
from grid.leadership import assistance, centre, team

router = APIRouter(prefix="/api/v1", tags=["leadership"])

SupervisorDep = Annotated[Principal, Depends(policy.supervision)]
DepartmentDep = Annotated[Principal, Depends(policy.department_desk)]
StatsDep = Annotated[Principal, Depends(policy.assistance_stats)]


def _now() -> datetime:
    return datetime.now(UTC)


async def _case(conn: Any, caller: Principal, case_id: int) -> schemas.CaseDetail:
    actor = actor_of(caller)
    row = await cases.get_case(conn=conn, actor=actor, case_id=case_id, audit=_parties_audit(caller))
    return case_detail(row, _now(), actor)


# --- joint handling (一窗受理、集成办理) and 纪检监督 ------------------------------------------


@router.post("/cases/{case_id}/joint", status_code=201, responses=ERRORS)
async def add_joint(
    case_id: Id, body: schemas.JointIn, caller: CallerDep, conn: SessionDep, settings: SettingsDep
) -> schemas.CaseDetail:
    """The county centre's mediators add a co-handling department with its part of the case;
    its staff are told and may read the case from now on."""
    await centre.add_joint(conn=conn, actor=actor_of(caller), case_id=case_id, department_code=body.department_code,
                           task=body.task, now=_now(), signer=settings.ledger_signer())  # fmt: skip
    return await _case(conn, caller, case_id)


@router.post("/cases/{case_id}/joint/{department_code}/done", responses=ERRORS)
async def joint_done(
    case_id: Id, department_code: str, body: schemas.NoteIn,
    caller: DepartmentDep, conn: SessionDep, settings: SettingsDep,
) -> schemas.CaseDetail:  # fmt: skip
    """A co-handling department's staff mark its part done, with a note."""
    await centre.joint_done(conn=conn, actor=actor_of(caller), case_id=case_id, department_code=department_code,
                            note=body.note, now=_now(), signer=settings.ledger_signer())  # fmt: skip
    return await _case(conn, caller, case_id)


@router.post("/cases/{case_id}/supervision", status_code=204, responses=ERRORS, response_class=Response)
async def supervise(
    case_id: Id, body: schemas.NoteIn, caller: SupervisorDep, conn: SessionDep, settings: SettingsDep
) -> Response:
    """纪检监督: a supervision note on a county-centre case, signed onto its ledger."""
    await centre.supervise(conn=conn, actor=actor_of(caller), case_id=case_id, note=body.note, now=_now(),
                           signer=settings.ledger_signer())  # fmt: skip
    return Response(status_code=204)


@router.get("/supervision/cases", responses=ERRORS)
async def supervision_cases(
    caller: SupervisorDep,
    conn: SessionDep,
    cursor: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.CasePage:
    """The supervisor's queue: the cases at the county centre, newest first."""
    now, actor = _now(), actor_of(caller)
    rows = await cases.list_cases(conn=conn, actor=actor, tier=Tier.county_center.value, before_id=cursor,
                                  limit=limit + 1, now=now)  # fmt: skip
    page = rows[:limit]
    return schemas.CasePage(items=[case_out(r, now, actor) for r in page],
                            next_cursor=page[-1]["id"] if len(rows) > limit else None)  # fmt: skip


# --- 五位一体: the township hall's team -------------------------------------------------------


def _hall_editor_of(caller: Principal) -> set[int]:
    """The townships whose team the caller edits: as dispatcher, or as a mediator of the hall."""
    return {g.node_id for g in caller.grants
            if g.role == "dispatcher" or (g.role == "mediator" and g.tier == Tier.township_hall.value)}  # fmt: skip


def _member(row: Mapping[str, Any], phones: bool) -> schemas.TeamMemberOut:
    return schemas.TeamMemberOut(id=row["id"], name=row["name"], kind=row["kind"], active=row["active"],
                                 kind_name=glossary.word(glossary.TEAM_MEMBER_KIND_NAMES, row["kind"]),
                                 phone=row["phone"] if phones else None)  # fmt: skip


@router.get("/grid/nodes/{code}/team", responses=ERRORS)
async def get_team(code: str, caller: CallerDep, conn: SessionDep) -> schemas.TeamOut:
    """The township hall's team: each member's name and kind (phones only inside your scope)."""
    node, rows = await team.members(conn=conn, code=code)
    phones = path_covers(caller.scopes, node["path"])
    return schemas.TeamOut(
        node=node["code"], node_name=node["name"], members=[_member(r, phones) for r in rows],
        kinds=[schemas.Word(code=c, name=n) for c, n in glossary.TEAM_MEMBER_KIND_NAMES.items()],
    )  # fmt: skip


@router.post("/grid/nodes/{code}/team", status_code=201, responses=ERRORS)
async def add_team_member(
    code: str, body: schemas.TeamMemberIn, caller: CallerDep, conn: SessionDep
) -> schemas.TeamMemberOut:
    """A new member of the hall's team, by the township's dispatchers and the hall's mediators."""
    row = await team.add_member(conn=conn, code=code, editors=_hall_editor_of(caller), name=body.name,
                                phone=body.phone, kind=body.kind, person_id=caller.person_id, now=_now())  # fmt: skip
    return _member(row, phones=True)


@router.patch("/grid/nodes/{code}/team/{member_id}", responses=ERRORS)
async def edit_team_member(
    code: str, member_id: Id, body: schemas.TeamMemberPatch, caller: CallerDep, conn: SessionDep
) -> schemas.TeamMemberOut:
    """Change a member's name, phone or kind, or take them off the team (active false)."""
    values = body.model_dump(exclude_unset=True)
    row = await team.edit_member(conn=conn, code=code, editors=_hall_editor_of(caller), member_id=member_id,
                                 values=values)  # fmt: skip
    return _member(row, phones=True)


# --- 社会救助: referrals to assistance ---------------------------------------------------------


def _referral(row: Mapping[str, Any]) -> schemas.ReferralOut:
    group = assistance.GROUP_OF[row["type"]]
    return schemas.ReferralOut(
        id=row["id"], case_id=row["case_id"], party_name=row["party_name"], type=row["type"],
        type_name=glossary.word(glossary.ASSISTANCE_TYPE_NAMES, row["type"]), group=group,
        group_name=glossary.word(glossary.ASSISTANCE_GROUP_NAMES, group), note=row["note"],
        referred_at=row["referred_at"], outcome=row["outcome"],
        outcome_name=glossary.word(glossary.REFERRAL_OUTCOME_NAMES, row["outcome"]) if row["outcome"] else None,
        amount=float(row["amount"]) if row["amount"] is not None else None, decision_note=row["decision_note"],
        decided_at=row["decided_at"],
    )  # fmt: skip


@router.post("/cases/{case_id}/referrals", status_code=201, responses=ERRORS)
async def refer(
    case_id: Id, body: schemas.ReferralIn, caller: CallerDep, conn: SessionDep, settings: SettingsDep
) -> schemas.ReferralOut:
    """Refer a party of the case to social assistance; 民政局's staff get it as a task."""
    row = await assistance.refer(conn=conn, actor=actor_of(caller), case_id=case_id, party=body.party, type=body.type,
                                 note=body.note, now=_now(), signer=settings.ledger_signer())  # fmt: skip
    return _referral(row)


@router.get("/referrals", responses=ERRORS)
async def referrals(
    caller: DepartmentDep,
    conn: SessionDep,
    state: Annotated[Literal["open", "decided"] | None, Query(description="open: awaiting an outcome")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.ReferralPage:
    """民政局's task list: the county's referrals, newest first."""
    rows = await assistance.listed(conn=conn, actor=actor_of(caller), county_code=caller.county_code, state=state,
                                   limit=limit)  # fmt: skip
    return schemas.ReferralPage(items=[_referral(r) for r in rows])


@router.post("/referrals/{referral_id}/outcome", responses=ERRORS)
async def referral_outcome(
    referral_id: Id, body: schemas.OutcomeIn, caller: DepartmentDep, conn: SessionDep, settings: SettingsDep
) -> schemas.ReferralOut:
    """民政局 records the outcome: approved (with the amount, if any) or declined."""
    row = await assistance.decide(conn=conn, actor=actor_of(caller), county_code=caller.county_code,
                                  referral_id=referral_id, outcome=body.outcome, amount=body.amount, note=body.note,
                                  now=_now(), signer=settings.ledger_signer())  # fmt: skip
    return _referral(row)


@router.get("/referrals/summary", responses=ERRORS)
async def referral_summary(caller: StatsDep, conn: SessionDep) -> schemas.ReferralSummary:
    """Per type of the catalogue: referred, approved, declined and the yuan approved."""
    rows = await assistance.summary(conn=conn, county_code=caller.county_code)
    types = [
        schemas.ReferralCount(
            type=r["type"], type_name=glossary.word(glossary.ASSISTANCE_TYPE_NAMES, r["type"]), group=r["group"],
            group_name=glossary.word(glossary.ASSISTANCE_GROUP_NAMES, r["group"]), referred=r["referred"],
            approved=r["approved"], declined=r["declined"], amount=float(r["amount"]),
        )
        for r in rows
    ]  # fmt: skip
    return schemas.ReferralSummary(types=types, referred=sum(t.referred for t in types),
                                   approved=sum(t.approved for t in types), declined=sum(t.declined for t in types),
                                   amount=sum(t.amount for t in types))  # fmt: skip
