"""积案 over HTTP: backlog batches imported from a sheet by the petition office, their
progress to 清零, and a reflow (倒流) linked by a dispatcher or mediator (grid/leadership/backlog.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from app import policy, schemas
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.deps import SessionDep, SettingsDep
from app.inputs import Id
from app.routers.cases import ERRORS, actor_of
from app.routers.duty import petition_office_only, read_upload
from grid.exceptions import ImportRefused
from grid.leadership import backlog

router = APIRouter(prefix="/api/v1", tags=["leadership: backlog"])

PetitionOffice = Annotated[Principal, Depends(policy.petition_office)]
Figures = Annotated[Principal, Depends(policy.leadership_figures)]
Reflow = Annotated[Principal, Depends(policy.reflow)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("/backlog/imports", responses=ERRORS)
async def import_batch(
    caller: PetitionOffice,
    conn: SessionDep,
    settings: SettingsDep,
    label: Annotated[str, Form(min_length=1, max_length=50, description="the batch, e.g. 第三批")],
    file: Annotated[
        UploadFile,
        File(
            description=".xlsx, one case a row: 事项 (description), 类别 (category), "
            "严重程度 (severity), 所在网格编码 (place), 包案领导手机号 (leader_phone), "
            "责任单位 (unit: a department's code or name, or a township's code), "
            "当事人, 当事人手机号"
        ),
    ],
    handed_down_on: Annotated[date | None, Form(description="the day it was handed down")] = None,
    dry_run: Annotated[bool, Form(description="check every row, write nothing")] = False,
) -> schemas.BatchImportOut:
    """Import a backlog batch (the petition office): all or nothing. Each row becomes a case
    handed down in the batch, routed by its place and owned by its leader and unit (包案);
    a bad row means 422 with every row's reason, and nothing written."""
    petition_office_only(caller)
    name, data = await read_upload(file, settings.import_max_bytes)
    rows = await asyncio.to_thread(backlog.read_sheet, data, name=name, max_rows=settings.import_max_rows)
    async with conn.transaction():
        report = await backlog.import_batch(
            conn=conn, county_code=caller.county_code, label=label, handed_down_on=handed_down_on, rows=rows,
            source=name, by_person_id=caller.person_id, now=_now(), signer=settings.ledger_signer(),
            rooms=accounts.ROOMS, dry_run=dry_run,
        )  # fmt: skip
        if report.errors:
            raise ImportRefused(f"{name}：有 {len(report.errors)} 行有错，未导入任何一行；请改正后重新导入",
                                report=report.to_dict())  # fmt: skip
        await accounts.record(conn=conn, county_code=caller.county_code, actor_user_id=caller.user_id,
                              action="backlog.import", target=label, ip=caller.ip,
                              details={"dry_run": dry_run, "rows": report.rows, "file": name})  # fmt: skip
    return schemas.BatchImportOut(**report.to_dict())


@router.get("/backlog/batches", responses=ERRORS)
async def batches(caller: Figures, conn: SessionDep) -> list[schemas.BatchOut]:
    """Every backlog batch's progress: total, resolved, open, 清零 (`cleared`) and reflows (倒流)."""
    return [schemas.BatchOut(**b) for b in await backlog.batches(conn=conn, county_code=caller.county_code)]


@router.get("/backlog/batches/{batch_id}", responses=ERRORS)
async def batch(batch_id: Id, caller: Figures, conn: SessionDep) -> schemas.BatchDetail:
    """One batch's progress and its cases: state, owning leader, reflows."""
    return schemas.BatchDetail(**await backlog.batch(conn=conn, county_code=caller.county_code, batch_id=batch_id))


@router.post("/cases/{case_id}/reflow", responses=ERRORS)
async def link_reflow(
    case_id: Id, body: schemas.ReflowIn, caller: Reflow, conn: SessionDep, settings: SettingsDep
) -> schemas.ReflowOut:
    """零倒流: this (new) case comes from the same party on the same matter as the resolved
    backlog case `earlier_case_id`, which is then counted as a reflow (倒流), signed on its ledger."""
    out = await backlog.link_reflow(conn=conn, actor=actor_of(caller), case_id=case_id,
                                    earlier_case_id=body.earlier_case_id, note=body.note, now=_now(),
                                    signer=settings.ledger_signer())  # fmt: skip
    return schemas.ReflowOut(**out)
