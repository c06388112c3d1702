"""Cases over HTTP: the phone app's report, the queues, actions, the case file, the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from app import photos, schemas
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.deps import CallerDep, SessionDep, SettingsDep
from app.inputs import Id
from app.routers.grid import parse_bbox
from grid import glossary, people_time
from grid.cases import service as cases
from grid.cases.catalogue import SEVERITIES
from grid.cases.enums import Section
from grid.cases.exceptions import AttachmentNotFound, AttachmentRefused, AttachmentTooLarge
from grid.cases.ledger import Verdict

router = APIRouter(prefix="/api/v1", tags=["cases"])
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": schemas.ErrorOut} for c in (401, 403, 404, 409, 413, 415, 422, 503)
}


def actor_of(caller: Principal) -> cases.Actor:
    """The grid's view of the caller: where they may read, and where they may act."""
    return cases.Actor(
        person_id=caller.person_id,
        read_paths=tuple(s.path for s in caller.scopes),
        act_paths=tuple(g.path for g in caller.grants if g.role in ("dispatcher", "mediator")),
        department_ids=caller.department_ids,
        supervises=caller.supervises,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _parties_audit(caller: Principal) -> Any:
    """Reading a case's parties is a read of personal data: audited in the same statement."""
    return accounts.audited_read(caller, action="read.case_parties", key="parties")


def case_out(row: Mapping[str, Any], now: datetime, actor: cases.Actor) -> schemas.CaseOut:
    return schemas.CaseOut(**_case_fields(row, now, actor))


def _case_fields(row: Mapping[str, Any], now: datetime, actor: cases.Actor) -> dict[str, Any]:
    """The case's columns with their Chinese names; the actions offered are the caller's own."""
    allowed = cases.allowed_for(actor, row)
    return {
        "id": row["id"], "state": row["state"], "state_name": glossary.state_name(row["state"]),
        "tier": row["tier"], "tier_name": glossary.tier_name(row["tier"]), "category": row["category"],
        "severity": row["severity"], "description": row["description"], "lon": row["lon"], "lat": row["lat"],
        "located_node": row["located_node_code"], "handling_node": row["handling_node_code"],
        "handling_node_name": row["handling_node_name"], "outside_county": row["outside_county"],
        "rule_version": row["rule_version"], "flags": list(row["route_flags"] or []),
        "reported_at": row["reported_at"], "occurred_at": row["occurred_at"], "accept_by": row["accept_by"],
        "resolve_by": row["resolve_by"], "overdue": cases.is_overdue(row, now),
        "outcome": row["outcome"], "satisfaction": row["satisfaction"],
        "source": row["source"], "source_name": glossary.word(glossary.SOURCE_NAMES, row["source"]),
        "allowed_actions": allowed, "allowed_action_names": {a: glossary.action_name(a) for a in allowed},
    }  # fmt: skip


def _recipients(row: Mapping[str, Any]) -> list[schemas.RecipientOut]:
    return [schemas.RecipientOut(**r, role_name=glossary.role_name(r["role"])) for r in row["recipients"]]


def case_detail(row: Mapping[str, Any], now: datetime, actor: cases.Actor) -> schemas.CaseDetail:
    recipients = _recipients(row)
    return schemas.CaseDetail(
        **_case_fields(row, now, actor), parties=row["parties"], recipients=recipients, sections=row["sections"],
        agreement_text=row["agreement_text"], failure_reason=row["failure_reason"],
        return_choices=row["return_choices"], return_choice_nodes=row["return_choice_nodes"],
        attachments=_attachments(row["id"], row.get("attachments") or []), **hard_case_fields(row),
        closure_channel=row["closure_channel"], closure_reason=row["closure_reason"],
        closure_channel_name=glossary.word(glossary.CLOSURE_CHANNEL_NAMES, row["closure_channel"])
        if row["closure_channel"] else None,
        joint_units=row.get("joint_units") or [],
        work_group=[schemas.TeamMemberRef(**m, kind_name=glossary.word(glossary.TEAM_MEMBER_KIND_NAMES, m["kind"]))
                    for m in row.get("work_group") or []],
    )  # fmt: skip


def hard_case_fields(row: Any) -> dict[str, Any]:
    """The case file's 包案 fields (schemas.CaseDetail): owners, the five duties, the outcome."""
    ticked = {d["duty"]: d for d in row.get("duties") or []}
    duties = []
    if row.get("hard"):
        for code, name in glossary.FIVE_DUTY_NAMES.items():
            d = ticked.get(code)
            at = datetime.fromisoformat(d["at"]) if d else None
            duties.append(schemas.DutyOut(duty=code, name=name, done=d is not None, note=d and d["note"],
                                          person_id=d and d["person_id"], by=d and d["name"], at=at,
                                          at_text=people_time.for_person(at) if at else None))  # fmt: skip
    leader = row.get("owner_leader_person_id")
    unit = row.get("owner_unit")
    outcome = row.get("hard_outcome")
    return {
        "hard": bool(row.get("hard")), "five_duties": duties, "hard_outcome": outcome,
        "hard_outcome_name": glossary.word(glossary.HARD_OUTCOME_NAMES, outcome) if outcome else None,
        "owner_leader": schemas.PersonRef(person_id=leader, name=row.get("owner_leader_name") or "") if leader
        else None,
        "owner_unit": schemas.UnitRef(**unit) if unit else None,
    }  # fmt: skip


def _attachments(case_id: int, rows: list[dict[str, Any]]) -> list[schemas.AttachmentInfo]:
    base = f"/api/v1/cases/{case_id}/attachments"
    return [schemas.AttachmentInfo(**a, url=f"{base}/{a['id']}", thumbnail_url=f"{base}/{a['id']}/thumbnail")
            for a in rows]  # fmt: skip


# --- catalogue ------------------------------------------------------------------


@router.get("/categories", responses=ERRORS)
async def categories(caller: CallerDep, conn: SessionDep) -> schemas.Catalogue:
    """What the report form offers (categories, and what each severity means), and the
    Chinese name of every state, tier, action, section and role (grid/glossary.py)."""
    return schemas.Catalogue(
        categories=[schemas.Category(**c) for c in await cases.categories(conn=conn)],
        severities=[schemas.Severity(level=k, name_zh=v[0], meaning=v[1]) for k, v in SEVERITIES.items()],
        states=_words(glossary.STATE_NAMES),
        tiers=_words(glossary.TIER_NAMES),
        actions=_words(glossary.ACTION_NAMES),
        sections=_words(glossary.SECTION_NAMES),
        roles=_words(glossary.ROLE_NAMES),
    )


def _words(names: Mapping[str, str]) -> list[schemas.Word]:
    return [schemas.Word(code=code, name=name) for code, name in names.items()]


# --- the phone app's report -----------------------------------------------------


@router.post("/reports", status_code=201, responses=ERRORS)
async def submit_report(
    response: Response,
    body: schemas.ReportIn,
    caller: CallerDep,
    conn: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[UUID, Header(description="a UUID the phone makes once per report and reuses on retry")],
) -> schemas.CaseDetail:
    """Report a conflict. Retrying with the same Idempotency-Key returns the same case (200)."""
    report = cases.Report(
        lon=body.lon, lat=body.lat, crs=body.crs, category=body.category, severity=body.severity,
        description=body.description, accuracy_m=body.accuracy_m, floor=body.floor,
        parties=tuple(cases.Party(p.name, p.phone, p.role) for p in body.parties),
        occurred_at=body.occurred_at, client_recorded_at=body.client_recorded_at,
    )  # fmt: skip
    now = _now()
    actor = actor_of(caller)
    out = await cases.submit_report(
        conn=conn, actor=actor, key=idempotency_key, report=report, now=now,
        signer=settings.ledger_signer(), rooms=accounts.ROOMS, county_code=caller.county_code,
        audit=_parties_audit(caller),
    )  # fmt: skip
    if not out.created:
        response.status_code = 200
    return case_detail(out.case, now, actor)


@router.post("/reports/{case_id}/attachments", status_code=201, responses=ERRORS)
async def add_attachment(
    case_id: int,
    caller: CallerDep,
    request: Request,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a photo: JPEG, PNG or HEIC")],
) -> schemas.AttachmentOut:
    """A photo of the report, kept as sent (its sha256 goes on the ledger). What is served
    is a copy without its EXIF; its EXIF time and GPS position are kept on the record."""
    # Decoding and re-encoding a photo takes up to seconds: no pooled connection waits on it.
    db = request.app.state.db
    actor = actor_of(caller)
    async with db.connection() as conn:
        await cases.attachable_case(conn=conn, actor=actor, case_id=case_id)
    limit = settings.attachment_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise AttachmentTooLarge(f"照片超过 {limit / (1024 * 1024):g} MB，请发送较小的照片", limit=limit)
    kind = photos.sniff_image(data[:16])
    if kind is None:
        raise AttachmentRefused("只接受 JPEG、PNG 或 HEIC 格式的照片", claimed=file.content_type)
    sha256, path, taken = await asyncio.to_thread(photos.store, data, settings.media_dir, kind)
    async with db.connection() as conn:
        attachment_id, new = await cases.record_attachment(
            conn=conn, actor=actor, case_id=case_id, now=_now(), signer=settings.ledger_signer(),
            file={"sha256": sha256, "content_type": kind, "size": len(data), "path": str(path),
                  "taken_at": taken.at, "taken_lon": taken.lon, "taken_lat": taken.lat},
        )  # fmt: skip
    return schemas.AttachmentOut(id=attachment_id, sha256=sha256, content_type=kind, size=len(data), new=new,
                                 taken_at=taken.at, taken_lon=taken.lon, taken_lat=taken.lat)  # fmt: skip


# A photo is personal data: every view is audited, so no copy may be kept where a view
# would not reach the server (a browser's disk cache on a shared office computer).
PHOTO_HEADERS = {"Cache-Control": "private, no-store"}
PHOTO_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS, 200: {"content": {photos.SERVED_TYPE: {}}, "description": "a JPEG without EXIF"},
}  # fmt: skip


async def _photo(
    caller: Principal, request: Request, *, case_id: int, attachment_id: int, variant: photos.Variant
) -> FileResponse:
    # The connection only for the scoped, audited read: not while a missing copy is made.
    async with request.app.state.db.connection() as conn:
        row = await cases.attachment(
            conn=conn, actor=actor_of(caller), case_id=case_id, attachment_id=attachment_id, variant=variant,
            audit=accounts.audited_read(caller, action="read.case_photo", key="photos"),
        )  # fmt: skip
    path = await asyncio.to_thread(photos.served, Path(row["path"]), row["content_type"], variant)
    if path is None:
        raise AttachmentNotFound(f"照片 {attachment_id} 的文件不在服务器上，请联系系统管理员从备份恢复",
                                 case_id=case_id, attachment_id=attachment_id, missing="file")  # fmt: skip
    return FileResponse(path, media_type=photos.SERVED_TYPE, headers=PHOTO_HEADERS)


@router.get("/cases/{case_id}/attachments/{attachment_id}", responses=PHOTO_RESPONSES, response_class=FileResponse)
async def get_photo(
    case_id: Id, attachment_id: Id, caller: CallerDep, request: Request
) -> FileResponse:  # fmt: skip
    """One photo of a case you may read, as a JPEG without its EXIF (no GPS, no camera
    serial). Each view is a personal-data read, audited; never cached by the browser."""
    return await _photo(caller, request, case_id=case_id, attachment_id=attachment_id, variant="photo")


@router.get("/cases/{case_id}/attachments/{attachment_id}/thumbnail", responses=PHOTO_RESPONSES,
            response_class=FileResponse)  # fmt: skip
async def get_thumbnail(
    case_id: Id, attachment_id: Id, caller: CallerDep, request: Request
) -> FileResponse:  # fmt: skip
    """The photo at most 320 px on its long side, a JPEG without EXIF; audited like the photo."""
    return await _photo(caller, request, case_id=case_id, attachment_id=attachment_id, variant="thumbnail")


# --- queues ---------------------------------------------------------------------


def _page(rows: list[dict[str, Any]], limit: int, now: datetime, actor: cases.Actor) -> schemas.CasePage:
    page = rows[:limit]
    return schemas.CasePage(items=[case_out(r, now, actor) for r in page],
                            next_cursor=page[-1]["id"] if len(rows) > limit else None)  # fmt: skip


@router.get("/cases", responses=ERRORS)
async def list_cases(
    caller: CallerDep,
    conn: SessionDep,
    state: Annotated[str | None, Query(max_length=32)] = None,
    tier: Annotated[str | None, Query(max_length=32)] = None,
    node: Annotated[str | None, Query(max_length=64, description="node code: cases handled in its subtree")] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    overdue: Annotated[bool | None, Query()] = None,
    bbox: Annotated[str | None, Query()] = None,
    mine: Annotated[bool, Query(description="only cases assigned to me")] = False,
    cursor: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.CasePage:
    """Cases in the caller's area, newest first, filtered; every query is scoped."""
    now, actor = _now(), actor_of(caller)
    rows = await cases.list_cases(
        conn=conn, actor=actor, state=state, tier=tier, node_code=node, category=category,
        overdue=overdue, bbox=parse_bbox(bbox), mine=mine, before_id=cursor, limit=limit + 1, now=now,
    )  # fmt: skip
    return _page(rows, limit, now, actor)


@router.get("/cases.geojson", responses=ERRORS, response_class=Response)
async def cases_geojson(
    caller: CallerDep,
    conn: SessionDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat in WGS-84")] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    open_only: Annotated[bool, Query(alias="open", description="only cases still being handled")] = False,
    limit: Annotated[int, Query(ge=1, description="at most WUZHANG_PAGE_SIZE_MAX")] = 500,
) -> Response:
    """Cases in the caller's area as a GeoJSON FeatureCollection (WGS-84), newest first.

    The same scope as GET /api/v1/cases; `truncated` says more matched than `limit`.
    """
    limit = min(limit, settings.page_size_max)
    now = _now()
    rows = await cases.list_cases(conn=conn, actor=actor_of(caller), state=state, bbox=parse_bbox(bbox),
                                  open_only=open_only, limit=limit + 1, now=now)  # fmt: skip
    features = [
        schemas.CaseFeature(
            id=r["id"], geometry=schemas.PointGeometry(coordinates=(r["lon"], r["lat"])),
            properties=schemas.CaseFeatureProperties(
                id=r["id"], state=r["state"], state_name=glossary.state_name(r["state"]), tier=r["tier"],
                tier_name=glossary.tier_name(r["tier"]), category=r["category"], severity=r["severity"],
                overdue=r["late"], handling_node=r["handling_node_code"], handling_node_name=r["handling_node_name"],
                located_node=r["located_node_code"], reported_at=r["reported_at"],
                due_at=r["accept_by"] if r["state"] == "assigned" else r["resolve_by"],
            ),
        )
        for r in rows[:limit]
    ]  # fmt: skip
    body = schemas.CaseCollection(features=features, truncated=len(rows) > limit)
    return Response(body.model_dump_json(), media_type="application/geo+json")


@router.get("/me/tasks", responses=ERRORS)
async def my_tasks(
    caller: CallerDep,
    conn: SessionDep,
    cursor: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.CasePage:
    """The phone app's queue: open cases assigned to me."""
    now, actor = _now(), actor_of(caller)
    rows = await cases.list_cases(conn=conn, actor=actor, mine=True, open_only=True, before_id=cursor,
                                  limit=limit + 1, now=now)  # fmt: skip
    return _page(rows, limit, now, actor)


@router.get("/me/reports", responses=ERRORS)
async def my_reports(
    caller: CallerDep,
    conn: SessionDep,
    cursor: Annotated[Id | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.MyReportPage:
    """The cases I reported, newest first: where each stands, who holds it now, and when
    its last step was taken."""
    now, actor = _now(), actor_of(caller)
    rows, next_cursor = await cases.my_reports(conn=conn, person_id=caller.person_id, now=now, before_id=cursor,
                                               limit=limit)  # fmt: skip
    items = [schemas.MyReport(**_case_fields(r, now, actor), recipients=_recipients(r), last_action=r["last_action"],
                              last_step_at=r["last_step_at"]) for r in rows]  # fmt: skip
    return schemas.MyReportPage(items=items, next_cursor=next_cursor)


@router.get("/cases/{case_id}", responses=ERRORS)
async def get_case(case_id: int, caller: CallerDep, conn: SessionDep) -> schemas.CaseDetail:
    """The case file: parties (a read of personal data, audited), who holds it, the six
    public sections, and the actions possible now."""
    actor = actor_of(caller)
    row = await cases.get_case(conn=conn, actor=actor, case_id=case_id, audit=_parties_audit(caller))
    return case_detail(row, _now(), actor)


IdempotencyKey = Annotated[
    UUID | None,
    Header(description="optional: a UUID made once per step and reused on retry; a retry gets the first answer "
                       "and changes nothing, the same key with another request is 409"),
]  # fmt: skip


def _once(key: UUID | None, *, case_id: int, what: str, body: Mapping[str, Any]) -> cases.Once | None:
    return None if key is None else cases.Once(key, cases.fingerprint(case_id=case_id, what=what, body=body))


@router.post("/cases/{case_id}/actions", responses=ERRORS)
async def act(
    case_id: int, body: schemas.ActionIn, caller: CallerDep, conn: SessionDep, settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> schemas.CaseDetail:  # fmt: skip
    """One step of the workflow. An illegal step is 409 and names the steps possible now.
    With an Idempotency-Key, a retry gets the first answer again and takes no second step."""
    fields = body.model_dump(exclude={"action"}, exclude_none=True)
    now, actor = _now(), actor_of(caller)
    answer = await cases.act_once(
        conn=conn, actor=actor, case_id=case_id, action=body.action, fields=fields, now=now,
        signer=settings.ledger_signer(), rooms=accounts.ROOMS, audit=_parties_audit(caller),
        required=settings.section_requirements(),
        once=_once(idempotency_key, case_id=case_id, what="action", body=body.model_dump(exclude_none=True)),
        render=lambda row: case_detail(row, now, actor).model_dump(mode="json"),
    )  # fmt: skip
    return schemas.CaseDetail.model_validate(answer.body)


@router.put("/cases/{case_id}/sections/{section}", status_code=204, responses=ERRORS, response_class=Response)
async def write_section(
    case_id: int, section: Section, body: schemas.SectionIn, caller: CallerDep, conn: SessionDep,
    settings: SettingsDep, idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    """一事一案六公开: one of the six public sections of the case file. With an
    Idempotency-Key, a retry writes nothing more and gets the same answer."""
    await cases.write_section(
        conn=conn, actor=actor_of(caller), case_id=case_id, section=section, body=body.body, now=_now(),
        signer=settings.ledger_signer(),
        once=_once(idempotency_key, case_id=case_id, what=f"section:{section.value}", body={"body": body.body}),
    )  # fmt: skip
    return Response(status_code=204)


# --- the ledger -----------------------------------------------------------------


@router.get("/cases/{case_id}/ledger", responses=ERRORS)
async def ledger(case_id: int, caller: CallerDep, conn: SessionDep) -> schemas.LedgerOut:
    """Every step of the case: who, what, when, and its hash, signature and signing key.
    With the public keys (`wuzhang ledger keys`) anyone can recompute the chain from this
    answer alone (grid/cases/ledger.py says how)."""
    rows = await cases.ledger_events(conn=conn, actor=actor_of(caller), case_id=case_id)
    return schemas.LedgerOut(case_id=case_id, events=[
        schemas.LedgerEvent(
            seq=r["seq"], action=r["action"], action_name=glossary.action_name(r["action"]),
            actor_person_id=r["actor_person_id"], actor=r["actor_name"], from_state=r["from_state"],
            from_state_name=glossary.state_name(r["from_state"]) if r["from_state"] else None, to_state=r["to_state"],
            to_state_name=glossary.state_name(r["to_state"]), note=r["note"],
            attachment_hashes=list(r["attachment_hashes"] or []), at=r["created_at"], details=r["body"],
            hash=r["hash"], prev_hash=r["prev_hash"], signature=r["signature"], seal=r["seal"], key_id=r["key_id"],
        )
        for r in rows
    ])  # fmt: skip


# What a failed check means, for the person reading the verdict.
_PROBLEMS = {
    "chain_broken": "与前一步接不上：台账中有步骤被删除、插入或调换",
    "hash_mismatch": "的内容与其哈希不符：这一步的记录被改动过",
    "columns_differ_from_body": "的字段与其封存的正文不符：这一步的记录被改动过",
    "unknown_key": "由不受信任的密钥签名：请核对服务器配置的台账公钥（WUZHANG_LEDGER_KEYRING）",
    "bad_signature": "的签名无效：这一步的记录被改动过，或不是本系统签发的",
    "unknown_seal": "的封存版本未知：这一步的记录被改动过",
}


def ledger_message(v: Verdict) -> str:
    """The verdict in words (also on the agreement's public verify page)."""
    if not v.valid:
        return f"台账校验未通过：第 {v.first_bad_seq} 步{_PROBLEMS.get(v.problem or '', '有误')}"
    message = f"台账完整：共 {v.events} 步，每一步的哈希与签名均有效"
    if v.sealed_body_only:
        message += f"；其中 {v.sealed_body_only} 步写于升级之前，只封存了正文，其字段已与正文逐项核对"
    return message


@router.get("/cases/{case_id}/ledger/verify", responses=ERRORS)
async def verify(case_id: int, caller: CallerDep, conn: SessionDep, settings: SettingsDep) -> schemas.VerifyOut:
    """Recompute the hash chain from the stored columns and check every signature against
    the trusted keys."""
    await cases.readable_case(conn=conn, actor=actor_of(caller), case_id=case_id)
    v = await cases.verify_ledger(conn=conn, case_id=case_id, keys=settings.ledger_keys())
    message = ledger_message(v)
    return schemas.VerifyOut(valid=v.valid, first_bad_event=v.first_bad_event, first_bad_seq=v.first_bad_seq,
                             problem=v.problem, message=message, events=v.events,
                             sealed_body_only=v.sealed_body_only, key_ids=list(v.key_ids))  # fmt: skip


# --- the inbox ------------------------------------------------------------------


@router.get("/me/inbox", responses=ERRORS)
async def inbox(
    caller: CallerDep,
    conn: SessionDep,
    after: Annotated[Id | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.InboxPage:
    """My notifications, newest first: the record; push is only the doorbell."""
    rows, next_cursor = await cases.inbox(conn=conn, person_id=caller.person_id, before=after, limit=limit)
    return schemas.InboxPage(items=[schemas.InboxItem(**r) for r in rows], next_cursor=next_cursor)


@router.post("/me/inbox/read", responses=ERRORS)
async def mark_read(body: schemas.ReadIn, caller: CallerDep, conn: SessionDep) -> schemas.MarkedOut:
    n = await cases.mark_read(conn=conn, person_id=caller.person_id, ids=body.ids, now=_now())
    return schemas.MarkedOut(marked=n)
