"""积案、双清零、零倒流: backlog cases handed down from above (中省交办) in numbered
batches, their progress to 清零, and the ones that come back (倒流).

A batch arrives as a sheet; each row becomes a case with source `handed_down` and the
batch, routed into the grid by its place like a report (a point inside the named node),
and owned by a county leader and a unit (包案, grid.leadership.ownership.own_case): every
case of a batch is owned, so a row without a valid leader or unit is an error, and one
bad row means nothing is imported.

Resolved, for a batch: a case resolved, in its return visit, closed, or ended lawfully
(依法终结). A batch is 清零 once it has cases and all of them are resolved. A resolved
case that is reopened is open again (and counted as a reflow), so 清零 waits for it.

零倒流: a resolved backlog case comes back when it is reopened (grid.cases.service.act
records it), or when a dispatcher or mediator links it to a new case from the same
party on the same matter (`link_reflow`). Each is a row of `case_reflow` and a signed
`reflow` step on the earlier case's ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from geo.crs import CRS
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.catalogue import SEVERITIES
from grid.cases.exceptions import IllegalAction
from grid.cases.ledger import Signer
from grid.db import Conn, Row
from grid.exceptions import GridError, InvalidInput
from grid.glossary import REFLOW_KIND_NAMES, UNIT_PART_NAMES, role_name, state_name, word
from grid.leadership import repository as repo
from grid.leadership.ownership import Unit, own_case
from grid.leadership.sheets import SheetRow, read_xlsx, text

COLUMNS = ("description", "category", "place", "leader_phone", "unit")
HEADERS_ZH = {"description": "事项", "category": "类别", "severity": "严重程度", "place": "所在网格编码",
              "leader_phone": "包案领导手机号", "unit": word(UNIT_PART_NAMES, "owner"), "party_name": "当事人", "party_phone": "当事人手机号"}  # fmt: skip
HEADER_ALIASES = {
    **{v: k for k, v in HEADERS_ZH.items()}, **{k: k for k in HEADERS_ZH},
    "问题描述": "description", "诉求": "description", "网格编码": "place", "node_code": "place",
    "领导手机号": "leader_phone", "责任单位编码": "unit",
}  # fmt: skip
PARTY_ROLE = "信访人"  # the party a backlog row names


class BatchNotFound(GridError):
    code = "batch_not_found"


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str


@dataclass
class BatchImport:
    label: str
    source: str
    dry_run: bool = False
    rows: int = 0
    imported: int = 0
    batch_id: int | None = None
    case_ids: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "error_count": len(self.errors)}


@dataclass(frozen=True)
class _Case:
    row: int
    report: cases.Report
    leader_person_id: int
    unit: Unit


def read_sheet(data: bytes, *, name: str, max_rows: int) -> list[SheetRow]:
    """The rows of a backlog batch workbook (one case a row)."""
    return read_xlsx(data, name=name, aliases=HEADER_ALIASES, required=COLUMNS, headers_zh=HEADERS_ZH,
                     max_rows=max_rows)  # fmt: skip


async def _unit_of(conn: Conn, county_code: str, value: str, departments: Sequence[Row]) -> Unit | None:
    """A unit named by a department's code or name, or by a township's node code."""
    for d in departments:
        if value in (d["code"], d["name"]):
            return Unit(department_code=d["code"])
    if await repo.township_by_code(conn, code=value) is not None:
        return Unit(township_code=value)
    return None


async def _check(conn: Conn, county_code: str, rows: Sequence[SheetRow]) -> tuple[list[_Case], list[RowError]]:
    phones = sorted({text(r.values.get("leader_phone")).replace(" ", "") for r in rows} - {""})
    leaders = await repo.leaders_by_phone(conn, phones=phones)
    departments = await repo.departments(conn, county_code=county_code)
    categories = {c["code"]: c for c in await case_sql.categories(conn)}
    good: list[_Case] = []
    errors: list[RowError] = []
    for r in rows:
        v = r.values
        description, category, place = text(v.get("description")), text(v.get("category")), text(v.get("place"))
        phone, unit_text = text(v.get("leader_phone")).replace(" ", ""), text(v.get("unit"))
        severity_text = text(v.get("severity")) or "2"
        party_name, party_phone = text(v.get("party_name")), text(v.get("party_phone")).replace(" ", "") or None
        reasons = []
        if not description:
            reasons.append("缺少事项（问题描述）")
        if category not in categories:
            names = "、".join(f"{c['name_zh']}（{c['code']}）" for c in categories.values())
            reasons.append(f"类别“{category}”无法识别；可选：{names}")
        severity = int(severity_text) if severity_text.isascii() and severity_text.isdigit() else 0
        if severity not in SEVERITIES:
            reasons.append(f"严重程度“{severity_text}”应为 1 到 4")
        node = await repo.node_point(conn, code=place, county_code=county_code) if place else None
        if node is None:
            reasons.append(f"没有编码为“{place}”的网格节点（或它没有边界），请核对所在网格编码")
        if phone not in leaders:
            reasons.append(f"包案领导手机号“{phone}”不是在职县级{role_name('leader')}的账号；每件积案都须有包案领导")
        unit = await _unit_of(conn, county_code, unit_text, departments) if unit_text else None
        if unit is None:
            reasons.append(f"{word(UNIT_PART_NAMES, 'owner')}“{unit_text}”无法识别：填部门编码或名称（如 housing、"
                           f"{departments[0]['name'] if departments else ''}），或乡镇编码")  # fmt: skip
        if party_phone and not (party_phone.isdigit() and len(party_phone) == 11 and party_phone.startswith("1")):
            reasons.append(f"当事人手机号“{party_phone}”格式不对：应为 11 位手机号")
        if reasons:
            errors.append(RowError(r.row, "；".join(reasons)))
            continue
        assert node is not None and unit is not None
        parties = (cases.Party(party_name, party_phone, PARTY_ROLE),) if party_name else ()
        report = cases.Report(lon=node["lon"], lat=node["lat"], crs=CRS.wgs84, category=category, severity=severity,
                              description=description, parties=parties)  # fmt: skip
        good.append(_Case(r.row, report, leaders[phone]["id"], unit))
    return good, errors


async def import_batch(
    *, conn: Conn, county_code: str, label: str, handed_down_on: date | None, rows: Sequence[SheetRow],
    source: str, by_person_id: int, now: datetime, signer: Signer, rooms: cases.Rooms, dry_run: bool = False,
) -> BatchImport:  # fmt: skip
    """A batch from its rows, all or nothing: every row checked first; then, in one
    transaction, the batch, and per row a case reported by `by_person_id`, routed by its
    place, marked handed down in the batch, and owned by its leader and unit."""
    label = label.strip()
    report = BatchImport(label=label, source=source, dry_run=dry_run, rows=len(rows))
    if not label:
        raise InvalidInput("请填写批次名称（label），如“第三批”", label=label)
    if not rows:
        raise InvalidInput(f"{source} 没有数据行：每行一件积案", file=source)
    if await repo.batch_id_by_label(conn, county_code=county_code, label=label) is not None:
        raise InvalidInput(f"批次“{label}”已经导入过；新的批次请换一个名称", label=label)
    good, report.errors = await _check(conn, county_code, rows)
    if report.errors or dry_run:
        return report
    actor = cases.Actor(person_id=by_person_id, counties=(county_code,))
    async with conn.transaction():
        batch_id = await repo.insert_batch(conn, county_code=county_code, label=label, handed_down_on=handed_down_on,
                                           person_id=by_person_id, at=now)  # fmt: skip
        for item in good:
            out = await cases.submit_report(conn=conn, actor=actor, key=uuid.uuid4(), report=item.report, now=now,
                                            signer=signer, rooms=rooms, county_code=county_code)  # fmt: skip
            case_id = int(out.case["id"])
            await repo.set_case_batch(conn, case_id=case_id, batch_id=batch_id)
            await own_case(conn=conn, case_id=case_id, by_person_id=by_person_id, leader_person_id=item.leader_person_id,
                           unit=item.unit, now=now, signer=signer,
                           note=f"{label}积案（第 {item.row} 行）：{word(UNIT_PART_NAMES, 'owner')}与包案领导按交办清单确定")  # fmt: skip
            report.case_ids.append(case_id)
    report.batch_id, report.imported = batch_id, len(good)
    return report


def progress(row: Row) -> dict[str, Any]:
    """A batch's figures, with 清零 (`cleared`): it has cases and all are resolved."""
    total, resolved = int(row["total"]), int(row["resolved"])
    return {**row, "open": total - resolved, "cleared": total > 0 and resolved == total}


async def batches(*, conn: Conn, county_code: str) -> list[dict[str, Any]]:
    return [progress(r) for r in await repo.batches(conn, county_code=county_code)]


async def batch(*, conn: Conn, county_code: str, batch_id: int) -> dict[str, Any]:
    rows = await repo.batches(conn, county_code=county_code, batch_id=batch_id)
    if not rows:
        raise BatchNotFound(f"没有编号为 {batch_id} 的积案批次", batch_id=batch_id)
    cases_of = [{**c, "state_name": state_name(c["state"])} for c in await repo.batch_cases(conn, batch_id=batch_id)]
    return {**progress(rows[0]), "cases": cases_of}


# --- 零倒流: a resolved backlog case linked to a new case ----------------------------------


async def link_reflow(
    *, conn: Conn, actor: cases.Actor, case_id: int, earlier_case_id: int, note: str, now: datetime, signer: Signer
) -> dict[str, Any]:  # fmt: skip
    """`case_id` is a new case from the same party on the same matter as the resolved
    backlog case `earlier_case_id`: the earlier one is flagged as a reflow (倒流), with a
    signed `reflow` step on its ledger. The actor must be able to act on the new case and
    read the earlier one."""
    if case_id == earlier_case_id:
        raise InvalidInput("新案件与原积案不能是同一件", case_id=case_id)
    async with conn.transaction():
        await cases._locked_for_actor(conn, actor=actor, case_id=case_id)
        earlier = await cases._locked_for_actor(conn, actor=actor, case_id=earlier_case_id, may=lambda a, c: True)
        if earlier["batch_id"] is None or earlier["state"] not in repo.ENDED_STATES:
            raise IllegalAction(
                f"案件 {earlier_case_id} 不是已化解的积案（{state_name(earlier['state'])}），不计为倒流",
                case_id=earlier_case_id, state=earlier["state"], backlog=earlier["batch_id"] is not None,
            )  # fmt: skip
        if await repo.reflow_linked(conn, case_id=earlier_case_id, new_case_id=case_id):
            raise IllegalAction(f"案件 {case_id} 已经关联为积案 {earlier_case_id} 的倒流", case_id=case_id,
                                earlier_case_id=earlier_case_id)  # fmt: skip
        w = cases._Writes.for_case(earlier, signer)
        w.event(actor=actor.person_id, action="reflow", from_state=earlier["state"], to_state=earlier["state"], at=now,
                note=note, extra={"kind": "linked", "kind_name": word(REFLOW_KIND_NAMES, "linked"),
                                  "new_case_id": case_id})  # fmt: skip
        await w.send(conn, at=now)
        await repo.insert_reflow(conn, case_id=earlier_case_id, county_code=earlier["county_code"], kind="linked",
                                 new_case_id=case_id,
                                 person_id=actor.person_id, note=note, at=now)  # fmt: skip
        count = await repo.reflow_count(conn, case_id=earlier_case_id)
    return {"case_id": earlier_case_id, "new_case_id": case_id, "reflows": count}
