"""Publishing a case (公示) and its mediation agreement (人民调解协议书): the use cases.

A notice or an agreement is one transaction: the content is built from the case, kept
(`case_publication`, append-only), and its sha256 signed onto the case's ledger (`publish`,
`agreement_issued`). The public pages find it by an unguessable token, never by the case
id, and show what was kept; the verify page recomputes the hash and the ledger.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grid.cases import notice
from grid.cases import repository as repo
from grid.cases.enums import State
from grid.cases.exceptions import CaseClosed, NotPublishable, PublicationNotFound
from grid.cases.ledger import Keyring, Signer, Verdict, verify
from grid.cases.service import Actor, _locked_for_actor, _Writes, can_act, can_attach, get_case, stored_event
from grid.db import Conn, ReadAudit, Row
from grid.glossary import state_name

# A notice is of a settled case; an agreement is made while mediating or once settled.
PUBLISHABLE = frozenset({State.resolved, State.return_visit, State.closed})
AGREEABLE = frozenset({State.mediating, State.resolved, State.return_visit})


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits: a public URL nobody can guess or count through


@dataclass(frozen=True)
class Published:
    token: str
    sha256: str
    seq: int  # the ledger step that signed it
    created_at: datetime


async def publish_notice(
    *, conn: Conn, actor: Actor, case_id: int, now: datetime, signer: Signer, county_name: str
) -> Published:
    """The handler (whoever may act on the case) publishes its notice: the six sections,
    personal data taken out (grid.cases.notice)."""
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_act)
        if case["state"] not in PUBLISHABLE:
            raise NotPublishable(
                f"案件 {case_id} 尚未调解成功（现为“{state_name(case['state'])}”），还不能公示；调解成功（resolve）后再公示",
                case_id=case_id, state=case["state"],
            )  # fmt: skip
        content = notice.notice_content(
            case=case, parties=await repo.case_parties(conn, case_id=case_id),
            sections=await repo.case_sections(conn, case_id=case_id),
            category_name=await repo.category_name(conn, code=case["category"]), county_name=county_name,
            published_at=now,
        )  # fmt: skip
        return await _keep(conn, case=case, actor=actor, kind="notice", action="publish", content=content, now=now,
                           signer=signer)  # fmt: skip


@dataclass(frozen=True)
class Terms:
    terms: str  # what the parties agreed
    performance: str  # how it is carried out (履行方式)
    due: str  # by when (履行期限)


async def issue_agreement(
    *, conn: Conn, actor: Actor, case_id: int, terms: Terms, now: datetime, signer: Signer, county_name: str
) -> Published:
    """The mediator issues the agreement; a new issue replaces the last (both stay on the ledger)."""
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_act)
        if case["state"] == State.closed:
            raise CaseClosed(f"案件 {case_id} 已结案，不能再出具调解协议；如确需修改，请先重新开启案件（reopen）",
                             case_id=case_id)  # fmt: skip
        if case["state"] not in AGREEABLE:
            raise NotPublishable(
                f"案件 {case_id} 现为“{state_name(case['state'])}”：调解协议在调解中（start_mediation 之后）或调解成功后出具",
                case_id=case_id, state=case["state"],
            )  # fmt: skip
        sections = await repo.case_sections(conn, case_id=case_id)
        mediator = (await repo.person_names(conn, ids=[actor.person_id])).get(actor.person_id, "")
        content = notice.agreement_content(
            case=case, parties=await repo.case_parties(conn, case_id=case_id),
            dispute=sections.get("facts") or case["description"], terms=terms.terms, performance=terms.performance,
            due=terms.due, mediator=mediator, county_name=county_name, issued_at=now,
        )  # fmt: skip
        return await _keep(conn, case=case, actor=actor, kind="agreement", action="agreement_issued",
                           content=content, now=now, signer=signer)  # fmt: skip


async def _keep(
    conn: Conn, *, case: Mapping[str, Any], actor: Actor, kind: str, action: str, content: dict[str, Any],
    now: datetime, signer: Signer,
) -> Published:  # fmt: skip
    sha256, token = notice.digest(content), new_token()
    await repo.insert_publication(conn, row={"case_id": case["id"], "county_code": case["county_code"], "kind": kind, "token": token, "content": content,
                                             "sha256": sha256, "created_by": actor.person_id, "created_at": now})  # fmt: skip
    w = _Writes.for_case(case, signer)
    seq = w.event(actor=actor.person_id, action=action, from_state=case["state"], to_state=case["state"], at=now,
                  extra={"kind": kind, "sha256": sha256})  # fmt: skip
    await w.send(conn, at=now)
    return Published(token=token, sha256=sha256, seq=seq, created_at=now)


async def agreement_of(*, conn: Conn, actor: Actor, case_id: int, audit: ReadAudit | None) -> Row:
    """The case's latest agreement, for a reader of the case; it names the parties, so the
    read is audited as a read of the case file is."""
    await get_case(conn=conn, actor=actor, case_id=case_id, audit=audit)
    row = await repo.latest_publication(conn, case_id=case_id, kind="agreement")
    if row is None:
        raise PublicationNotFound(
            f"案件 {case_id} 还没有出具调解协议书；请先 POST /api/v1/cases/{case_id}/agreement 出具", case_id=case_id
        )
    return row


async def record_signed_agreement(
    *, conn: Conn, actor: Actor, case_id: int, file: Mapping[str, Any], now: datetime, signer: Signer
) -> tuple[bool, str]:
    """The scan of the agreement as the parties signed it joins the case, and its hash goes
    on the ledger beside the hash of the agreement it signs. (False, ...): already there."""
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_attach)
        issued = await repo.latest_publication(conn, case_id=case_id, kind="agreement")
        if issued is None:
            raise NotPublishable(f"案件 {case_id} 还没有出具调解协议书，无签字件可上传；请先出具协议书",
                                 case_id=case_id)  # fmt: skip
        new_id = await repo.insert_attachment(
            conn,
            row={
                "case_id": case_id,
                "county_code": case["county_code"],
                "uploaded_by": actor.person_id,
                "created_at": now,
                "taken_at": None,
                "taken_lon": None,
                "taken_lat": None,
                **file,
            },
        )
        if new_id is None:
            return False, issued["sha256"]
        w = _Writes.for_case(case, signer)
        w.event(actor=actor.person_id, action="agreement_signed", from_state=case["state"], to_state=case["state"],
                at=now, attachment_hashes=[file["sha256"]], extra={"agreement_sha256": issued["sha256"]})  # fmt: skip
        await w.send(conn, at=now)
        return True, issued["sha256"]


# --- the public side: no login, found by token ----------------------------------------


async def public_notice(*, conn: Conn, token: str) -> Row:
    row = await repo.publication_by_token(conn, token=token, kind="notice")
    if row is None:
        raise PublicationNotFound("没有这份公示：请核对链接或二维码", token=token)
    return row


@dataclass(frozen=True)
class AgreementCheck:
    """What the verify page says: no personal data, only hashes and the ledger's state."""

    case_id: int
    committee: str
    issued_at: datetime
    sha256: str  # as kept and signed
    content_intact: bool  # the kept content still hashes to it
    on_ledger: bool  # an `agreement_issued` step of the case's ledger signs this hash
    ledger: Verdict
    superseded: bool  # a later agreement replaced it

    @property
    def valid(self) -> bool:
        return self.content_intact and self.on_ledger and self.ledger.valid


async def check_agreement(*, conn: Conn, token: str, keys: Keyring) -> AgreementCheck:
    row = await repo.publication_by_token(conn, token=token, kind="agreement")
    if row is None:
        raise PublicationNotFound("没有这份调解协议书：请核对二维码或链接", token=token)
    events = await repo.events(conn, case_id=row["case_id"])
    verdict = verify((stored_event(e) for e in events), keys)
    signed = any(e["action"] == "agreement_issued" and (e["body"] or {}).get("sha256") == row["sha256"]
                 for e in events)  # fmt: skip
    return AgreementCheck(
        case_id=row["case_id"], committee=row["content"].get("committee", ""), issued_at=row["created_at"],
        sha256=row["sha256"], content_intact=notice.digest(row["content"]) == row["sha256"], on_ledger=signed,
        ledger=verdict, superseded=row["superseded"],
    )  # fmt: skip
