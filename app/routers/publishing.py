"""Publishing a case over HTTP: the public notice (公示) and the mediation agreement
(人民调解协议书). The API routes need a login; the pages under /public/ need none and
are found by an unguessable token, never by the case id (docs/workflow.md)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from app import documents, photos
from app.deps import CallerDep, SessionDep, SettingsDep
from app.headers import page_csp
from app.routers.cases import ERRORS, _parties_audit, actor_of, ledger_message
from app.settings import Settings
from grid.cases import publishing
from grid.cases.exceptions import AttachmentRefused, AttachmentTooLarge, PublicationNotFound

router = APIRouter(prefix="/api/v1", tags=["publishing"])
public = APIRouter(prefix="/public", tags=["public"], include_in_schema=False)

# What publishing.new_token makes; anything else is not a token (404 without a database read).
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


def _now() -> datetime:
    return datetime.now(UTC)


def notice_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/public/notices/{token}"


def verify_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/public/verify/{token}"


class PublishedOut(BaseModel):
    kind: str = Field(description="notice (公示) or agreement (人民调解协议书)")
    token: str
    sha256: str = Field(description="of the content's canonical JSON; the ledger step `seq` signs it")
    seq: int
    url: str = Field(description="the public page: the notice, or the agreement's verify page")
    pdf_url: str
    created_at: datetime


class AgreementIn(BaseModel):
    terms: str = Field(min_length=1, max_length=20000, description="what the parties agreed (协议内容)")
    performance: str = Field(min_length=1, max_length=5000, description="how it is carried out (履行方式)")
    due: str = Field(min_length=1, max_length=200, description="by when (履行期限), e.g. 2027年1月31日前")


class SignedAgreementOut(BaseModel):
    sha256: str
    content_type: str
    size: int
    new: bool = Field(description="false when the same scan was already on the case")
    agreement_sha256: str = Field(description="the issued agreement this scan signs")


@router.post("/cases/{case_id}/publish", status_code=201, responses=ERRORS)
async def publish(case_id: int, caller: CallerDep, conn: SessionDep, settings: SettingsDep) -> PublishedOut:
    """公示: publish the case's notice (the six sections, names masked, no phone numbers)
    at a public URL; its hash is signed onto the ledger (`publish`). Publishing again
    makes a new notice; the older one says it was replaced."""
    done = await publishing.publish_notice(conn=conn, actor=actor_of(caller), case_id=case_id, now=_now(),
                                           signer=settings.ledger_signer(), county_name=caller.county_name)  # fmt: skip
    url = notice_url(settings, done.token)
    return PublishedOut(kind="notice", token=done.token, sha256=done.sha256, seq=done.seq, url=url,
                        pdf_url=f"{url}.pdf", created_at=done.created_at)  # fmt: skip


@router.post("/cases/{case_id}/agreement", status_code=201, responses=ERRORS)
async def issue_agreement(
    case_id: int, body: AgreementIn, caller: CallerDep, conn: SessionDep, settings: SettingsDep
) -> PublishedOut:
    """人民调解协议书: issue the agreement (its hash signed onto the ledger, `agreement_issued`);
    its PDF carries a QR code of the public verify page."""
    terms = publishing.Terms(terms=body.terms, performance=body.performance, due=body.due)
    done = await publishing.issue_agreement(conn=conn, actor=actor_of(caller), case_id=case_id, terms=terms,
                                            now=_now(), signer=settings.ledger_signer(),
                                            county_name=caller.county_name)  # fmt: skip
    return PublishedOut(kind="agreement", token=done.token, sha256=done.sha256, seq=done.seq,
                        url=verify_url(settings, done.token), pdf_url=f"/api/v1/cases/{case_id}/agreement.pdf",
                        created_at=done.created_at)  # fmt: skip


PDF_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}, **ERRORS}


@router.get("/cases/{case_id}/agreement.pdf", responses=PDF_RESPONSE, response_class=Response)
async def agreement_pdf(case_id: int, caller: CallerDep, conn: SessionDep, settings: SettingsDep) -> Response:
    """The latest agreement as a PDF to print and sign: parties, dispute, terms, signature
    lines, the committee's seal area, and the QR code of its verify page. It names the
    parties: reading it is audited like reading the case file."""
    row = await publishing.agreement_of(conn=conn, actor=actor_of(caller), case_id=case_id,
                                        audit=_parties_audit(caller))  # fmt: skip
    pdf = await _render(documents.agreement_pdf, row["content"], sha256=row["sha256"],
                        verify_url=verify_url(settings, row["token"]), font=settings.pdf_font)  # fmt: skip
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="agreement-{case_id}.pdf"'})  # fmt: skip


SIGNED_TYPES = {**{"image/jpeg": "JPEG", "image/png": "PNG", "image/heic": "HEIC"}, "application/pdf": "PDF"}


@router.post("/cases/{case_id}/agreement/signed", status_code=201, responses=ERRORS)
async def upload_signed_agreement(
    case_id: int, caller: CallerDep, conn: SessionDep, settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the signed agreement: a scan (PDF) or a photo (JPEG, PNG, HEIC)")],
) -> SignedAgreementOut:  # fmt: skip
    """The agreement as the parties signed it, scanned: kept with the case, its hash on the
    ledger (`agreement_signed`) beside the hash of the agreement it signs."""
    limit = settings.attachment_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise AttachmentTooLarge(f"文件超过 {limit / (1024 * 1024):g} MB，请压缩或分辨率低一些再扫描", limit=limit)
    kind = "application/pdf" if data.startswith(b"%PDF-") else photos.sniff_image(data[:16])
    if kind is None:
        raise AttachmentRefused("签字件只接受 PDF 扫描件或 JPEG、PNG、HEIC 照片", claimed=file.content_type)
    sha256, path = await asyncio.to_thread(photos.store_raw, data, settings.media_dir)
    new, signs = await publishing.record_signed_agreement(
        conn=conn, actor=actor_of(caller), case_id=case_id, now=_now(), signer=settings.ledger_signer(),
        file={"sha256": sha256, "content_type": kind, "size": len(data), "path": str(path)},
    )  # fmt: skip
    return SignedAgreementOut(sha256=sha256, content_type=kind, size=len(data), new=new, agreement_sha256=signs)


async def _render(make: Any, content: Any, **kw: Any) -> bytes:
    """A PDF is built in a thread (tens of milliseconds of CPU); no font: 503, said plainly."""
    try:
        return bytes(await asyncio.to_thread(make, content, **kw))
    except documents.FontMissing as exc:
        raise HTTPException(503, f"服务器缺少中文字体，暂时无法生成 PDF：{exc}") from None


# --- the public pages: no login ------------------------------------------------------------


def _token(token: str) -> str:
    if not TOKEN.match(token):
        raise PublicationNotFound("没有这份文书：请核对链接或二维码", token=token[:64])
    return token


def _html(text: str) -> HTMLResponse:
    # Only its own stylesheet; no script at all (app/headers.py).
    return HTMLResponse(text, headers={"Cache-Control": "no-cache", "Content-Security-Policy": page_csp()})


@public.get("/notices/{token}.pdf")
async def notice_pdf(token: str, conn: SessionDep, settings: SettingsDep) -> Response:
    row = await publishing.public_notice(conn=conn, token=_token(token))
    pdf = await _render(documents.notice_pdf, row["content"], sha256=row["sha256"],
                        url=notice_url(settings, row["token"]), font=settings.pdf_font)  # fmt: skip
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="notice.pdf"', "Cache-Control": "no-cache"})  # fmt: skip


@public.get("/notices/{token}")
async def notice_page(token: str, conn: SessionDep, settings: SettingsDep) -> HTMLResponse:
    row = await publishing.public_notice(conn=conn, token=_token(token))
    url = notice_url(settings, row["token"])
    return _html(documents.notice_html(row["content"], sha256=row["sha256"], url=url,
                                       pdf_url=f"/public/notices/{row['token']}.pdf", superseded=row["superseded"]))  # fmt: skip


@public.get("/verify/{token}")
async def verify_page(token: str, conn: SessionDep, settings: SettingsDep) -> HTMLResponse:
    check = await publishing.check_agreement(conn=conn, token=_token(token), keys=settings.ledger_keys())
    messages = [
        "协议书内容与出具时的哈希一致" if check.content_intact else "协议书内容与出具时的哈希不一致：存档的协议书被改动过",
        "本案台账中有签名的“出具调解协议书”一步，记载的正是这个哈希" if check.on_ledger
        else "本案台账中找不到记载这个哈希的“出具调解协议书”一步",
        ledger_message(check.ledger),
    ]  # fmt: skip
    if check.superseded:
        messages.append("注意：本案此后又出具了新的调解协议书，这是较早的一份")
    return _html(documents.verify_html(check=check, url=verify_url(settings, token), messages=messages))
