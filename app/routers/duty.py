"""坐班接访 over HTTP: the duty roster (read by everyone logged in, kept by the petition
office), walk-in visits registered by the reception desk, the duty leader's decision on
each, and the figures per duty leader (grid/leadership/duty.py, visits.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile

from app import policy, schemas
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.deps import CallerDep, SessionDep, SettingsDep
from app.inputs import Id
from app.routers.cases import ERRORS, _parties_audit, actor_of, case_detail
from geo.exceptions import UnsupportedFormat
from grid.cases import service as cases
from grid.exceptions import ImportRefused
from grid.glossary import VISIT_DECISION_NAMES
from grid.leadership import duty, visits
from grid.leadership import repository as leadership_sql

router = APIRouter(prefix="/api/v1", tags=["leadership: reception duty"])

PetitionOffice = Annotated[Principal, Depends(policy.petition_office)]
Reception = Annotated[Principal, Depends(policy.reception)]
DutyLeader = Annotated[Principal, Depends(policy.duty_leader)]
Figures = Annotated[Principal, Depends(policy.leadership_figures)]
First = Annotated[date | None, Query(alias="from", description="first day (the county's calendar); default today")]
Last = Annotated[date | None, Query(alias="to", description="last day; default 30 days after `from`")]


def _now() -> datetime:
    return datetime.now(UTC)


def petition_office_only(caller: Principal) -> None:
    duty.require_petition_office(department_codes=[g.department_code for g in caller.grants if g.department_code],
                                 admin=caller.has_role("admin"))  # fmt: skip


def _day(row: Any) -> schemas.DutyDayOut:
    return schemas.DutyDayOut(**duty.day_fields(row))


@router.get("/duty", responses=ERRORS)
async def roster(caller: CallerDep, conn: SessionDep, first: First = None, last: Last = None) -> schemas.DutyList:
    """The duty roster from `from` to `to`: each day's leader and their body, in Chinese."""
    first, last = duty.span(first, last, _now())
    rows = await duty.days(conn=conn, county_code=caller.county_code, first=first, last=last)
    return schemas.DutyList(first=first, last=last, items=[_day(r) for r in rows])


@router.get("/duty/today", responses=ERRORS)
async def today(caller: CallerDep, conn: SessionDep) -> schemas.DutyTodayOut:
    """Today's duty leader (today in the county's time zone); `on_duty` is null when the
    roster names nobody, which the reception desk must fix before registering a visit."""
    on = duty.today(_now())
    row = await duty.on_duty(conn=conn, county_code=caller.county_code, on=on)
    return schemas.DutyTodayOut(day=on, on_duty=_day(row) if row else None)


@router.put("/duty/{day}", responses=ERRORS)
async def set_day(day: date, body: schemas.DutyDayIn, caller: PetitionOffice, conn: SessionDep) -> schemas.DutyDayOut:
    """The leader on duty that day (the petition office; replaces whoever was)."""
    petition_office_only(caller)
    row = await duty.set_day(conn=conn, county_code=caller.county_code, on=day, leader_person_id=body.leader_person_id,
                             body=body.body, note=body.note, by_person_id=caller.person_id, now=_now())  # fmt: skip
    return _day(row)


@router.delete("/duty/{day}", status_code=204, responses=ERRORS, response_class=Response)
async def clear_day(day: date, caller: PetitionOffice, conn: SessionDep) -> Response:
    """Nobody on duty that day any more (the petition office)."""
    petition_office_only(caller)
    await duty.clear_day(conn=conn, county_code=caller.county_code, on=day)
    return Response(status_code=204)


async def read_upload(file: UploadFile, limit: int) -> tuple[str, bytes]:
    """The upload's name and bytes; 415 unless .xlsx, 422 past `limit` bytes."""
    name = Path(file.filename or "upload.xlsx").name
    if Path(name).suffix.lower() != ".xlsx":
        raise UnsupportedFormat(f"{name}：请上传 .xlsx 文件（Excel 工作簿）", file=name)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImportRefused(f"{name} 太大：最多 {limit:,} 字节，请拆分后再导入", file=name, limit=limit)
    return name, data


@router.post("/duty/imports", responses=ERRORS)
async def import_roster(
    caller: PetitionOffice,
    conn: SessionDep,
    settings: SettingsDep,
    file: Annotated[
        UploadFile, File(description=".xlsx: 日期 (day), 领导手机号 (leader_phone), 所属班子 (body), 备注")
    ],
    dry_run: Annotated[bool, Form(description="check every row, write nothing")] = False,
) -> schemas.SheetImportOut:
    """Import the duty roster: all or nothing. A bad row (not a day, no leader account with
    that phone, an unknown body, a day twice) means 422 with every row's reason, and nothing written."""
    petition_office_only(caller)
    name, data = await read_upload(file, settings.import_max_bytes)
    rows = await asyncio.to_thread(duty.read_sheet, data, name=name, max_rows=settings.import_max_rows)
    async with conn.transaction():
        report = await duty.import_days(conn=conn, county_code=caller.county_code, rows=rows, source=name,
                                        by_person_id=caller.person_id, now=_now(), dry_run=dry_run)  # fmt: skip
        if report.errors:
            raise ImportRefused(f"{name}：有 {len(report.errors)} 行有错，未导入任何一行；请改正后重新导入",
                                report=report.to_dict())  # fmt: skip
        await accounts.record(conn=conn, county_code=caller.county_code, actor_user_id=caller.user_id,
                              action="duty.roster_import", target=name, ip=caller.ip,
                              details={"dry_run": dry_run, "rows": report.rows})  # fmt: skip
    return schemas.SheetImportOut(**report.to_dict())


@router.get("/duty/visits", responses=ERRORS)
async def visit_figures(
    caller: Figures, conn: SessionDep, first: First = None, last: Last = None
) -> schemas.VisitFigures:
    """Visits received per duty leader on days from `from` to `to` (default: the last 30
    days to today), and what became of them."""
    first, last = duty.span(first, last, _now(), back=True)
    rows = await leadership_sql.visit_figures(conn, county_code=caller.county_code, first=first, last=last)
    return schemas.VisitFigures(first=first, last=last, decision_names=dict(VISIT_DECISION_NAMES),
                                leaders=[schemas.VisitFigure(**r) for r in rows])  # fmt: skip


@router.post("/visits", status_code=201, responses=ERRORS)
async def register_visit(
    response: Response,
    body: schemas.VisitIn,
    caller: Reception,
    conn: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[UUID, Header(description="a UUID made once per visit and reused on retry")],
) -> schemas.CaseDetail:
    """A walk-in visit: a case held by today's duty leader (409 no_duty_leader when the
    roster names nobody today). Retrying with the same Idempotency-Key returns the same case (200)."""
    visit = visits.Visit(
        visitor_name=body.visitor_name, visitor_phone=body.visitor_phone, category=body.category,
        severity=body.severity, description=body.description, lon=body.lon, lat=body.lat, crs=body.crs,
        node_code=body.node_code,
    )  # fmt: skip
    now, actor = _now(), actor_of(caller)
    out = await visits.register_visit(conn=conn, actor=actor, key=idempotency_key, visit=visit, now=now,
                                      signer=settings.ledger_signer(), county_code=caller.county_code,
                                      audit=_parties_audit(caller))  # fmt: skip
    if not out.created:
        response.status_code = 200
    return case_detail(out.case, now, actor)


@router.post("/visits/{case_id}/decision", responses=ERRORS)
async def decide(
    case_id: Id, body: schemas.VisitDecisionIn, caller: DutyLeader, conn: SessionDep, settings: SettingsDep
) -> schemas.CaseDetail:
    """The duty leader's decision on a visit waiting for them: `settle` (with agreement_text),
    `route_to_tier` (with tier), `assign_unit` (with department_code) or `take_ownership`
    (with department_code or township_code). The case file's allowed_actions lists these."""
    now, actor = _now(), actor_of(caller)
    decision = visits.Decision(**body.model_dump())
    await visits.decide(conn=conn, actor=actor, case_id=case_id, decision=decision, now=now,
                        signer=settings.ledger_signer(), rooms=accounts.ROOMS)  # fmt: skip
    row = await cases.get_case(conn=conn, actor=actor, case_id=case_id, audit=_parties_audit(caller))
    return case_detail(row, now, actor)
