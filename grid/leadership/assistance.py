"""社会救助: from a case, a party is referred to assistance of a type from the county's
catalogue; the referral reaches the civil-affairs unit (民政局) as a task, and its staff
record the outcome (approved or declined, and the amount). Both steps are signed onto the
case's ledger. The party's name stays in the referral row, never on the ledger (which
cannot forget) nor in a notice (which passes through push services)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from grid.cases import repository as case_sql
from grid.cases.exceptions import NotResponsible
from grid.cases.ledger import Signer
from grid.cases.service import Actor, _locked_for_actor, _not_found, _Writes
from grid.db import Conn, Row
from grid.exceptions import InvalidInput
from grid.glossary import (
    ASSISTANCE_TYPE_NAMES,
    REFERRAL_OUTCOME_NAMES,
    action_name,
    role_name,
    word,
)
from grid.leadership import departments
from grid.leadership import repository as repo
from grid.leadership.models import ASSISTANCE_GROUPS, ASSISTANCE_TYPES
from grid.leadership.refusals import AlreadyRecorded, NotFound

GROUP_OF: Mapping[str, str] = {t: group for group, types in ASSISTANCE_GROUPS.items() for t in types}


def _party(parties: list[Row], given: str) -> tuple[int, str]:
    """(number from 1, name) of the party `given` names: by its number in the case file's
    list, or by its name."""
    text = given.strip()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= len(parties):
        i = int(text)
        return i, parties[i - 1]["name"]
    for i, p in enumerate(parties, start=1):
        if p["name"] == text:
            return i, p["name"]
    listed = "、".join(f"{i}（{p['name']}）" for i, p in enumerate(parties, start=1)) or "本案没有登记当事人"
    raise InvalidInput(f"当事人（party）须是本案登记的当事人：填序号或姓名。可选：{listed}", party=given)


async def _civil_affairs(conn: Conn, *, actor: Actor, county_code: str) -> Row:
    dept = await departments.by_code(conn=conn, county_code=county_code, code=departments.CIVIL_AFFAIRS)
    if dept["id"] not in actor.department_ids:
        raise NotResponsible(f"救助转介由{dept['name']}的{role_name('department_staff')}审核办理")
    return dept


async def refer(
    *, conn: Conn, actor: Actor, case_id: int, party: str, type: str, note: str | None, now: datetime,
    signer: Signer,
) -> dict[str, Any]:  # fmt: skip
    """Whoever may act on the case refers one of its parties; 民政局 becomes a unit of the
    case (so its staff read it) and its staff are told."""
    if type not in ASSISTANCE_TYPES:
        choices = "、".join(f"{word(ASSISTANCE_TYPE_NAMES, t)}（{t}）" for t in ASSISTANCE_TYPES)
        raise InvalidInput(f"不认识的救助类型“{type}”；可选：{choices}", type=type)
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id)
        number, name = _party(await case_sql.case_parties(conn, case_id=case_id), party)
        dept = await departments.by_code(conn=conn, county_code=case["county_code"], code=departments.CIVIL_AFFAIRS)
        referral_id = await repo.insert_referral(conn, row={
            "county_code": case["county_code"], "case_id": case_id, "party_name": name, "type": type, "note": note,
            "referred_by": actor.person_id, "referred_at": now,
        })  # fmt: skip
        await repo.insert_department_unit(conn, case_id=case_id, county_code=case["county_code"],
                                          department_id=dept["id"], part="referral",
                                          task=None, person_id=actor.person_id, at=now)  # fmt: skip
        w = _Writes.for_case(case, signer)
        seq = w.event(actor=actor.person_id, action="refer_assistance", from_state=case["state"],
                      to_state=case["state"], at=now, note=note,
                      extra={"referral_id": referral_id, "type": type, "party_number": number,
                             "department_code": dept["code"]})  # fmt: skip
        w.notify(person_ids=await repo.department_staff(conn, department_id=dept["id"]), kind="refer_assistance",
                 seq=seq, at=now, title=f"新的{action_name('refer_assistance')}",
                 body=f"案件 {case_id}：{word(ASSISTANCE_TYPE_NAMES, type)}，请审核")  # fmt: skip
        await w.send(conn, at=now)
    return {"id": referral_id, "case_id": case_id, "party_name": name, "type": type, "note": note,
            "referred_at": now, "outcome": None, "amount": None, "decision_note": None, "decided_at": None}  # fmt: skip


async def listed(*, conn: Conn, actor: Actor, county_code: str, state: str | None, limit: int) -> list[Row]:
    """民政局's task list: the county's referrals, newest first."""
    await _civil_affairs(conn, actor=actor, county_code=county_code)
    return await repo.referrals(conn, county_code=county_code, state=state, limit=limit)


async def decide(
    *, conn: Conn, actor: Actor, county_code: str, referral_id: int, outcome: str, amount: float | None,
    note: str | None, now: datetime, signer: Signer,
) -> Row:  # fmt: skip
    """民政局 records the outcome, once; signed onto the case's ledger; the referrer is told."""
    if outcome not in REFERRAL_OUTCOME_NAMES:
        raise InvalidInput(f"结果（outcome）须是：{'、'.join(f'{n}（{c}）' for c, n in REFERRAL_OUTCOME_NAMES.items())}",
                           outcome=outcome)  # fmt: skip
    if outcome == "declined" and amount:
        raise InvalidInput(f"{word(REFERRAL_OUTCOME_NAMES, 'declined')}的转介不填金额（amount）", amount=amount)
    yuan = Decimal(str(amount)).quantize(Decimal("0.01")) if amount is not None else None
    async with conn.pipeline(), conn.transaction():
        dept = await _civil_affairs(conn, actor=actor, county_code=county_code)
        referral = await repo.referral_for_update(conn, referral_id=referral_id, county_code=county_code)
        if referral is None:
            raise NotFound(f"没有编号为 {referral_id} 的救助转介", referral_id=referral_id)
        if referral["outcome"] is not None:
            raise AlreadyRecorded(
                f"救助转介 {referral_id} 已有结果：{word(REFERRAL_OUTCOME_NAMES, referral['outcome'])}",
                referral_id=referral_id, outcome=referral["outcome"],
            )  # fmt: skip
        case = await case_sql.case_for_action(conn, case_id=referral["case_id"], **actor.scope)
        if case is None or not case["readable"]:  # 民政局 is a unit of every case it has a referral of
            raise _not_found(referral["case_id"])
        values = {"outcome": outcome, "amount": yuan, "decision_note": note, "decided_by": actor.person_id,
                  "decided_at": now}  # fmt: skip
        await repo.decide_referral(conn, referral_id=referral_id, values=values)
        w = _Writes.for_case(case, signer)
        seq = w.event(
            actor=actor.person_id,
            action="assistance_outcome",
            from_state=case["state"],
            to_state=case["state"],
            at=now,
            note=note,
            extra={
                "referral_id": referral_id,
                "type": referral["type"],
                "outcome": outcome,
                "amount": str(yuan) if yuan is not None else None,
                "department_code": dept["code"],
            },
        )
        told = f"{word(ASSISTANCE_TYPE_NAMES, referral['type'])}：{word(REFERRAL_OUTCOME_NAMES, outcome)}"
        w.notify(person_ids=[referral["referred_by"]], kind="assistance_outcome", seq=seq, at=now,
                 title=action_name("assistance_outcome"), body=f"案件 {case['id']} 的{action_name('refer_assistance')}"
                 f"有了结果（{told}）")  # fmt: skip
        await w.send(conn, at=now)
    return {**referral, **values}


async def summary(
    *, conn: Conn, county_code: str, roots: Sequence[str] | None = None, start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per type of the catalogue, in its order: referred, approved, declined, yuan approved;
    the figures (grid/stats) narrow it to cases in `roots` and referrals made in [start, end)."""
    rows = await repo.referral_counts(conn, county_code=county_code, roots=roots, start=start, end=end)
    counts = {r["type"]: r for r in rows}
    zero = {"referred": 0, "approved": 0, "declined": 0, "amount": Decimal(0)}
    return [{"type": t, "group": GROUP_OF[t], **{k: (counts.get(t) or zero)[k] for k in zero}}
            for t in ASSISTANCE_TYPES]  # fmt: skip
