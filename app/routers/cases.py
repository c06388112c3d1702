"""Cases over HTTP: the phone app's report, the queues, actions, the case file, the ledger."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from app import policy
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.db import get_session
from app.routers.grid import parse_bbox
from app.schemas import ErrorOut
from geo.crs import CRS
from grid import case_repository as repo
from grid import cases
from grid.case_exceptions import AttachmentRefused, AttachmentTooLarge
from grid.catalogue import SEVERITIES

router = APIRouter(prefix="/api/v1", tags=["cases"])
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut} for c in (401, 403, 404, 409, 413, 415, 422)
}


def actor_of(caller: Principal) -> cases.Actor:
    """The grid's view of the caller: where they may read, and where they may act."""
    return cases.Actor(
        person_id=caller.person_id,
        read_paths=tuple(s.path for s in caller.scopes),
        act_paths=tuple(g.path for g in caller.grants if g.role in ("dispatcher", "mediator")),
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- shapes ---------------------------------------------------------------------


class PartyIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$", description="mainland mobile")
    role: str = Field(min_length=1, max_length=20, description="e.g. 申请人, 被申请人, 证人")


class ReportIn(BaseModel):
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    crs: CRS = CRS.wgs84
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
    floor: int | None = Field(default=None, ge=-10, le=300)
    category: str = Field(min_length=1, max_length=32)
    severity: int = Field(ge=1, le=4)
    description: str = Field(min_length=1, max_length=4000)
    parties: list[PartyIn] = Field(default_factory=list, max_length=30)
    occurred_at: datetime | None = None
    client_recorded_at: datetime | None = None

    @field_validator("occurred_at", "client_recorded_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-03-01T09:00:00+08:00")
        return v


class ActionIn(BaseModel):
    action: str = Field(description="accept, start_mediation, resolve, fail, escalate, return, return_visit, "
                                    "close, reopen, extend")  # fmt: skip
    note: str | None = Field(default=None, max_length=4000)
    next_recipient: str | None = Field(default=None, description="node code, for return (退回)")
    approver: str | None = Field(default=None, description="who one tier up approved an extension")
    hours: float | None = Field(default=None, gt=0, le=720, allow_inf_nan=False)
    agreement_text: str | None = Field(default=None, max_length=20000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)


class SectionIn(BaseModel):
    body: str = Field(min_length=1, max_length=20000)


class CaseOut(BaseModel):
    id: int
    state: str
    tier: str
    category: str
    severity: int
    description: str
    lon: float
    lat: float
    located_node: str | None
    handling_node: str
    handling_node_name: str
    outside_county: bool
    rule_version: int
    flags: list[str]
    reported_at: datetime
    occurred_at: datetime | None
    accept_by: datetime | None
    resolve_by: datetime | None
    overdue: bool
    outcome: str | None = None
    satisfaction: int | None = None
    allowed_actions: list[str] = []


class CaseDetail(CaseOut):
    parties: list[PartyIn]
    recipients: list[dict[str, Any]]
    sections: dict[str, str]
    agreement_text: str | None
    failure_reason: str | None


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: int | None


def case_out(row: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    return {
        "id": row["id"], "state": row["state"], "tier": row["tier"], "category": row["category"],
        "severity": row["severity"], "description": row["description"], "lon": row["lon"], "lat": row["lat"],
        "located_node": row["located_node_code"], "handling_node": row["handling_node_code"],
        "handling_node_name": row["handling_node_name"], "outside_county": row["outside_county"],
        "rule_version": row["rule_version"], "flags": list(row["route_flags"] or []),
        "reported_at": row["reported_at"], "occurred_at": row["occurred_at"], "accept_by": row["accept_by"],
        "resolve_by": row["resolve_by"], "overdue": cases.is_overdue(row, now),
        "outcome": row["outcome"], "satisfaction": row["satisfaction"],
        "allowed_actions": cases.allowed_now(row["state"]),
    }  # fmt: skip


def _detail(session: Session, caller: Principal, row: Mapping[str, Any]) -> dict[str, Any]:
    parties = [dict(p) for p in repo.parties(session, case_id=row["id"])]
    if parties:  # personal data: every read is on the audit log
        accounts.record(session=session, county_code=caller.county_code, actor_user_id=caller.user_id,
                        action="read.case_parties", target=f"case:{row['id']}", ip=caller.ip)  # fmt: skip
    return {
        **case_out(row),
        "parties": parties,
        "recipients": [dict(r) for r in repo.recipients(session, case_id=row["id"])],
        "sections": {s["section"]: s["body"] for s in repo.sections(session, case_id=row["id"])},
        "agreement_text": row["agreement_text"],
        "failure_reason": row["failure_reason"],
    }


# --- catalogue ------------------------------------------------------------------


@router.get("/categories")
def categories(caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]) -> dict[str, Any]:
    """What the report form offers: categories, and what each severity means."""
    return {
        "categories": [dict(c) for c in repo.categories(session)],
        "severities": [{"level": k, "name_zh": v[0], "meaning": v[1]} for k, v in SEVERITIES.items()],
    }


# --- the phone app's report -----------------------------------------------------


@router.post("/reports", response_model=CaseDetail, status_code=201, responses=ERRORS)
def submit_report(
    request: Request,
    response: Response,
    body: ReportIn,
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    idempotency_key: Annotated[UUID, Header(description="a UUID the phone makes once per report and reuses on retry")],
) -> dict[str, Any]:
    """Report a conflict. Retrying with the same Idempotency-Key returns the same case (200)."""
    settings = request.app.state.settings
    report = cases.Report(
        lon=body.lon, lat=body.lat, crs=body.crs, category=body.category, severity=body.severity,
        description=body.description, accuracy_m=body.accuracy_m, floor=body.floor,
        parties=tuple(cases.Party(p.name, p.phone, p.role) for p in body.parties),
        occurred_at=body.occurred_at, client_recorded_at=body.client_recorded_at,
    )  # fmt: skip
    out = cases.submit_report(session=session, actor=actor_of(caller), key=idempotency_key, report=report, now=_now(),
                              signer=settings.ledger_signer(), county_code=caller.county_code)  # fmt: skip
    detail = _detail(session, caller, out.case)
    session.commit()
    if not out.created:
        response.status_code = 200
    return detail


ALLOWED_IMAGES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
HEIC_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc")


def sniff_image(head: bytes) -> str | None:
    """The type from the bytes themselves, not from what the client claims."""
    for magic, kind in ALLOWED_IMAGES.items():
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "image/heic"
    return None


@router.post("/reports/{case_id}/attachments", status_code=201, responses=ERRORS)
def add_attachment(
    case_id: int,
    request: Request,
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    file: Annotated[UploadFile, File(description="a photo: JPEG, PNG or HEIC")],
) -> dict[str, Any]:
    settings = request.app.state.settings
    case = cases.get_case(session=session, actor=actor_of(caller), case_id=case_id)
    limit = settings.attachment_max_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise AttachmentTooLarge(f"the file is over {limit / (1024 * 1024):g} MB; send a smaller photo", limit=limit)
    kind = sniff_image(data[:16])
    if kind is None:
        raise AttachmentRefused("only JPEG, PNG or HEIC photos are accepted", claimed=file.content_type)
    digest = hashlib.sha256(data).hexdigest()
    path = settings.media_dir / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # never a half-written photo under its final name
    now = _now()
    new_id = repo.insert_attachment(session, row={
        "case_id": case_id, "sha256": digest, "content_type": kind, "size": len(data), "path": str(path),
        "uploaded_by": caller.person_id, "created_at": now,
    })  # fmt: skip
    if new_id is not None:
        cases.record_attachment(session=session, case=case, person_id=caller.person_id, sha256=digest, now=now,
                                signer=settings.ledger_signer())  # fmt: skip
    session.commit()
    return {"sha256": digest, "content_type": kind, "size": len(data), "new": new_id is not None}


# --- queues ---------------------------------------------------------------------


@router.get("/cases", response_model=CasePage, responses=ERRORS)
def list_cases(
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    state: Annotated[str | None, Query()] = None,
    tier: Annotated[str | None, Query()] = None,
    node: Annotated[str | None, Query(description="node code: cases handled in its subtree")] = None,
    category: Annotated[str | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
    bbox: Annotated[str | None, Query()] = None,
    mine: Annotated[bool, Query(description="only cases assigned to me")] = False,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Cases in the caller's area, newest first, filtered; every query is scoped."""
    rows = cases.list_cases(
        session=session, actor=actor_of(caller), state=state, tier=tier, node_code=node, category=category,
        overdue=overdue, bbox=parse_bbox(bbox), mine=mine, before_id=cursor, limit=limit + 1, now=_now(),
    )  # fmt: skip
    page = rows[:limit]
    return {"items": [case_out(r) for r in page], "next_cursor": page[-1]["id"] if len(rows) > limit else None}


@router.get("/cases.geojson", responses=ERRORS)
def cases_geojson(
    request: Request,
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat in WGS-84")] = None,
    state: Annotated[str | None, Query()] = None,
    open_only: Annotated[bool, Query(alias="open", description="only cases still being handled")] = False,
    limit: Annotated[int, Query(ge=1, description="at most WUZHANG_PAGE_SIZE_MAX")] = 500,
) -> Response:
    """Cases in the caller's area as a GeoJSON FeatureCollection (WGS-84), newest first.

    The same scope as GET /api/v1/cases; `truncated` says more matched than `limit`.
    """
    limit = min(limit, request.app.state.settings.page_size_max)
    now = _now()
    rows = cases.list_cases(session=session, actor=actor_of(caller), state=state, bbox=parse_bbox(bbox),
                            open_only=open_only, limit=limit + 1, now=now)  # fmt: skip
    features = []
    for row in rows[:limit]:
        out = case_out(row, now)
        props = {k: out[k] for k in ("id", "state", "tier", "category", "severity", "overdue", "handling_node",
                                     "handling_node_name", "located_node")}  # fmt: skip
        props["reported_at"] = out["reported_at"].isoformat()
        due = out["accept_by"] if out["state"] == "assigned" else out["resolve_by"]
        props["due_at"] = due.isoformat() if due else None
        features.append({"type": "Feature", "id": row["id"], "properties": props,
                         "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}})  # fmt: skip
    body = {"type": "FeatureCollection", "features": features, "truncated": len(rows) > limit}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


@router.get("/me/tasks", response_model=CasePage, responses=ERRORS)
def my_tasks(
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The phone app's queue: open cases assigned to me."""
    rows = cases.list_cases(session=session, actor=actor_of(caller), mine=True, open_only=True, before_id=cursor,
                            limit=limit + 1, now=_now())  # fmt: skip
    page = rows[:limit]
    return {"items": [case_out(r) for r in page], "next_cursor": page[-1]["id"] if len(rows) > limit else None}


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=ERRORS)
def get_case(case_id: int, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]) -> dict[str, Any]:
    row = cases.get_case(session=session, actor=actor_of(caller), case_id=case_id)
    detail = _detail(session, caller, row)
    session.commit()
    return detail


@router.post("/cases/{case_id}/actions", response_model=CaseDetail, responses=ERRORS)
def act(
    case_id: int,
    body: ActionIn,
    request: Request,
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
) -> dict[str, Any]:
    """One step of the workflow. An illegal step is 409 and names the steps possible now."""
    fields = body.model_dump(exclude={"action"}, exclude_none=True)
    row = cases.act(session=session, actor=actor_of(caller), case_id=case_id, action=body.action, fields=fields,
                    now=_now(), signer=request.app.state.settings.ledger_signer())  # fmt: skip
    detail = _detail(session, caller, row)
    session.commit()
    return detail


SectionName = Literal["investigation", "facts", "policy", "reasoning", "disposition", "return_visit"]


@router.put("/cases/{case_id}/sections/{section}", status_code=204, responses=ERRORS)
def write_section(
    case_id: int,
    section: SectionName,
    body: SectionIn,
    request: Request,
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
) -> Response:
    """一事一案六公开: one of the six public sections of the case file."""
    cases.write_section(session=session, actor=actor_of(caller), case_id=case_id, section=section, body=body.body,
                        now=_now(), signer=request.app.state.settings.ledger_signer())  # fmt: skip
    session.commit()
    return Response(status_code=204)


# --- the ledger -----------------------------------------------------------------


@router.get("/cases/{case_id}/ledger", responses=ERRORS)
def ledger(case_id: int, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]) -> dict[str, Any]:
    """Every step of the case: who, what, when, and its hash and signature."""
    rows = cases.ledger_events(session=session, actor=actor_of(caller), case_id=case_id)
    return {"case_id": case_id, "events": [
        {"seq": r["seq"], "action": r["action"], "actor_person_id": r["actor_person_id"], "actor": r["actor_name"],
         "from_state": r["from_state"], "to_state": r["to_state"], "note": r["note"],
         "attachment_hashes": list(r["attachment_hashes"] or []), "at": r["created_at"],
         "hash": r["hash"], "prev_hash": r["prev_hash"], "signature": r["signature"]}
        for r in rows
    ]}  # fmt: skip


@router.get("/cases/{case_id}/ledger/verify", responses=ERRORS)
def verify(
    case_id: int, request: Request, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]
) -> dict[str, Any]:
    """Recompute the hash chain and check every signature."""
    cases.get_case(session=session, actor=actor_of(caller), case_id=case_id)
    valid, first_bad = cases.verify_ledger(session=session, case_id=case_id,
                                           signer=request.app.state.settings.ledger_signer())  # fmt: skip
    return {"valid": valid, "first_bad_event": first_bad}


# --- the inbox ------------------------------------------------------------------


class ReadIn(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500)


@router.get("/me/inbox", responses=ERRORS)
def inbox(
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    after: Annotated[int | None, Query(ge=1, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """My notifications, newest first: the record; push is only the doorbell."""
    rows = repo.inbox(session, person_id=caller.person_id, after=after, limit=limit + 1)
    page = rows[:limit]
    return {"items": [dict(r) for r in page], "next_cursor": page[-1]["id"] if len(rows) > limit else None}


@router.post("/me/inbox/read", responses=ERRORS)
def mark_read(
    body: ReadIn, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]
) -> dict[str, int]:
    n = repo.mark_read(session, person_id=caller.person_id, ids=body.ids, at=_now())
    session.commit()
    return {"marked": n}
