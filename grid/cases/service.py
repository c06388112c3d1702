"""Case use cases: report, act, write the file, sweep deadlines, read the ledger.

One report or one action is one transaction: the case row, its ledger event(s) and
its notification rows (the outbox) are written together, so a crash loses nothing
half-done. Each use case reads what it needs first (the case once, locked), decides
in Python (grid.cases.workflow, grid.cases.routing), then sends every write in one
pipelined round trip. The caller passes `now` (server time; the worker's clock is
injectable).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from geo.crs import CRS, to_wgs84
from grid import people_time
from grid.cases import repository as repo
from grid.cases.catalogue import SEVERITIES
from grid.cases.enums import Section, State, Tier
from grid.cases.exceptions import (
    ApproverNotAllowed,
    AttachmentNotFound,
    CaseClosed,
    CaseNotFound,
    IdempotencyConflict,
    IllegalAction,
    MissingFields,
    NotResponsible,
    ReturnNotAllowed,
    SectionsMissing,
)
from grid.cases.ledger import (
    GENESIS,
    SEAL_ALL_COLUMNS,
    Event,
    Keyring,
    Signer,
    StoredEvent,
    Verdict,
    canonical,
    canonical_json,
    verify,
)
from grid.cases.routing import BODY_LEVELS, Route, RuleSet, decide, next_tier, route_to_tier
from grid.cases.sections import REQUIRED, Requirements
from grid.cases.workflow import (
    OWNER_ACTIONS,
    OWNERS_ONLY,
    WAITING_FOR_ACCEPT,
    WAITING_FOR_RESOLVE,
    Action,
    IllegalTransition,
    Then,
    allowed_actions,
    missing_fields,
    step_for,
)
from grid.db import Conn, ReadAudit, Row, fetch_read
from grid.exceptions import InvalidInput, NodeNotFound, OutsideJurisdiction
from grid.glossary import (
    WORK_GROUP,
    action_name,
    notice_title,
    progress_done,
    section_name,
    tier_name,
    unreachable_reason,
)
from grid.leadership import repository as leadership_sql
from grid.leadership import team
from grid.leadership.models import VISIT_ACTIONS
from grid.locate import Link, build_location, group_rows, raise_other_county
from grid.repository import nodes as node_sql

# A phone clock this far ahead of ours is wrong; its times are kept but flagged.
CLOCK_TOLERANCE = timedelta(minutes=5)
# Why a run of push failures ends, as the ledger's note says it (Writes.end_run).
RUN_ENDS = {"case_step": "案件有了新进展", "window": "统计时段已满", "delivered": "之后推送已送达"}
# The fields an action may need (grid.cases.workflow.Step.needs), as a message names them.
FIELD_NAMES = {
    "note": "说明",
    "next_recipient": "接手的网格节点",
    "approver": "批准人",
    "tier": "交办的层级",
    "hard_outcome": "办结结果",
}
SYSTEM = None  # actor_person_id of steps the server takes by itself (routing, deadlines)


@dataclass(frozen=True)
class Actor:
    """Who acts, in the grid's terms (built from the logged-in principal by app/)."""

    person_id: int
    # ltree paths whose subtrees the actor may read (posts and data-scoped grants).
    read_paths: tuple[str, ...] = ()
    # ltree paths where the actor may act on any case as dispatcher or mediator.
    act_paths: tuple[str, ...] = ()
    # Departments whose cases the actor may read (department staff), and 纪检监督: every
    # case at the county centre's tier (the read rule in grid.cases.repository).
    department_ids: tuple[int, ...] = ()
    supervises: bool = False
    # The counties whose cases the actor may read (the account's; a city account's granted
    # ones): every case read filters on them first.
    counties: tuple[str, ...] = ()

    @property
    def scope(self) -> dict[str, Any]:
        """The read-scope keywords of the repository's functions."""
        return {"person_id": self.person_id, "read_paths": self.read_paths, "department_ids": self.department_ids,
                "supervises": self.supervises, "counties": self.counties}  # fmt: skip


class Rooms(Protocol):
    """Who sits in a mediation room (a tier above the chiefs): the people granted the
    mediator role of that tier on that node. Accounts keep the grants; app/ passes this in."""

    async def members(self, conn: Conn, *, tier: Tier, node_id: int) -> list[int]: ...


@dataclass(frozen=True)
class Party:
    name: str
    phone: str | None
    role: str


@dataclass(frozen=True)
class Report:
    lon: float
    lat: float
    crs: CRS
    category: str
    severity: int
    description: str
    accuracy_m: float | None = None
    floor: int | None = None
    parties: tuple[Party, ...] = ()
    occurred_at: datetime | None = None
    client_recorded_at: datetime | None = None

    def fingerprint(self) -> str:
        """Same report body, same fingerprint: how a retry is told from a key reused."""
        body = asdict(self)
        body["crs"] = str(self.crs)
        return hashlib.sha256(canonical(body)).hexdigest()


@dataclass
class Outcome:
    case: Row  # the case file as the actor reads it (grid.cases.repository.CASE_DETAIL_SQL)
    created: bool = False


def _under(path: str | None, roots: Sequence[str]) -> bool:
    return bool(path) and any(path == r or path.startswith(r + ".") for r in roots)  # type: ignore[union-attr]


def can_act(actor: Actor, case: Mapping[str, Any]) -> bool:
    """The responsible post holders, or a dispatcher or mediator in scope, may act."""
    return _under(case["handling_path"], actor.act_paths) or bool(case["is_recipient"])


def unit_node_ids(actor: Actor) -> tuple[int, ...]:
    """The nodes the actor works at as dispatcher or mediator (the last id of each act path):
    a township among them makes the actor staff of that township as a case's owning unit."""
    return tuple(int(p.rsplit(".", 1)[-1]) for p in actor.act_paths if p)


def owns(actor: Actor, case: Mapping[str, Any]) -> bool:
    """包案: the hard case's owning leader, or staff of its owning unit (the department's
    staff; for a township, its dispatchers and its hall's mediators). `case` needs the
    ownership columns of grid.cases.repository.CASE_COLUMNS."""
    if not case.get("hard"):
        return False
    if case["owner_leader_person_id"] == actor.person_id:
        return True
    if case["owner_department_id"] is not None and case["owner_department_id"] in actor.department_ids:
        return True
    return case["owner_node_id"] is not None and case["owner_node_id"] in unit_node_ids(actor)


def can_act_or_owns(actor: Actor, case: Mapping[str, Any]) -> bool:
    """Whoever may take some step on the case: a handler (`can_act`) or an owner (`owns`)."""
    return can_act(actor, case) or owns(actor, case)


def can_terminate(actor: Actor, case: Mapping[str, Any]) -> bool:
    """依法终结 and joint handling are the county centre's own: its mediators (granted on the
    county, the centre's node), not every holder (the county's chief reads and acts, but
    the lawful closure is the centre's decision)."""
    return case["tier"] == Tier.county_center and _under(case["handling_path"], actor.act_paths)


# Actions with a narrower rule than `can_act` (both must hold).
NARROWER: dict[str, Callable[[Actor, Mapping[str, Any]], bool]] = {Action.terminate.value: can_terminate}


def can_attach(actor: Actor, case: Mapping[str, Any]) -> bool:
    """Those who may act, and the reporter: the phone sends a report's photos after the report.
    Anyone else who only reads the case may not add signed steps to it."""
    return can_act(actor, case) or case["reporter_person_id"] == actor.person_id


def _not_found(case_id: int) -> CaseNotFound:
    """The one refusal for a case that does not exist and for one the caller may not read:
    the same code, message and details, so a write tells no more than a read."""
    return CaseNotFound(f"你的辖区内没有编号为 {case_id} 的案件", case_id=case_id)


@dataclass(frozen=True)
class Once:
    """An Idempotency-Key sent with a case write, and the fingerprint of that request
    (`fingerprint`): the answer is kept with the write, in its transaction, and given
    again to a retry with the same key; the same key with another request is a conflict."""

    key: UUID
    fingerprint: str


def fingerprint(*, case_id: int, what: str, body: Mapping[str, Any]) -> str:
    """Same case, same kind of write, same body: the same fingerprint."""
    return hashlib.sha256(canonical({"case_id": case_id, "what": what, "body": dict(body)})).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What a case write answers: an HTTP-like status and a JSON-able body (None: no body)."""

    status: int
    body: Any
    replayed: bool = False


# The answer a write keeps, from the case file as its writer reads it afterwards.
Render = Callable[[Row], Any]


async def _claim(conn: Conn, *, actor: Actor, case_id: int, once: Once | None, at: datetime,
                 audit: ReadAudit | None) -> Answer | None:  # fmt: skip
    """None: go on (no key, or a new one, now held by this transaction). An Answer: the
    key was used before; its kept answer (a conflict if the request differs)."""
    if once is None or await repo.claim_request(conn, person_id=actor.person_id, key=once.key, case_id=case_id,
                                                request_hash=once.fingerprint, at=at):  # fmt: skip
        return None
    rows = await fetch_read(conn, repo.KEPT_ANSWER_SQL, {"pid": actor.person_id, "key": once.key}, audit)
    kept = rows[0]
    if kept["request_hash"] != once.fingerprint:
        raise IdempotencyConflict(
            "这个 Idempotency-Key 已用于另一个请求（另一案件、另一操作或不同内容）；新的操作请生成新的 key",
            key=str(once.key),
        )
    return Answer(status=kept["status"], body=kept["answer"], replayed=True)


async def _keep(conn: Conn, *, actor: Actor, once: Once | None, answer: Answer, parties_shown: int = 0) -> None:
    if once is not None:
        await repo.keep_answer(conn, person_id=actor.person_id, key=once.key, status=answer.status,
                               answer=answer.body, parties_shown=parties_shown)  # fmt: skip


def _rules(row: Mapping[str, Any]) -> RuleSet:
    return RuleSet.from_json(row["version"], row["rules"])


def _case_rules(case: Mapping[str, Any]) -> RuleSet:
    """The rules the case was routed by (read with the case: `rules` beside `rule_version`)."""
    return RuleSet.from_json(case["rule_version"], case["rules"])


async def _chain(conn: Conn, node_id: int) -> list[Link]:
    ancestors, _, _ = group_rows(await node_sql.chain_of_node(conn, node_id=node_id))
    return ancestors


def _deadlines(rules: RuleSet, tier: Tier, at: datetime) -> dict[str, Any]:
    d = rules.deadlines[tier]
    accept_by, resolve_by = at + d.accept_within, at + d.resolve_within
    # Warn in the last quarter of the accept window, then of the resolve window.
    warn_at = accept_by - d.accept_within / 4
    return {"accept_by": accept_by, "resolve_by": resolve_by, "warn_at": warn_at}


# --- what one use case writes ---------------------------------------------------------


@dataclass
class _Writes:
    """Everything one use case writes to one case, gathered while it decides and sent
    together at the end. The ledger's head (seq, hash) is kept here, so each new event
    is hashed and signed without reading the chain again."""

    case: Mapping[str, Any]  # the case as it was read (county_code, deadline_no, ...)
    signer: Signer
    seq: int = 0
    head: str = GENESIS
    values: dict[str, Any] = field(default_factory=dict)  # case columns to set
    recipients: list[tuple[int, str]] | None = None  # the new holders, if they change
    events: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    sections: list[tuple[Section, str, int, datetime]] = field(default_factory=list)
    new_case: bool = False  # inserted by this use case: it has no holders to retire yet
    # The case's open push_unreachable runs (repository.unreachable_runs), and those this write ends.
    runs: list[dict[str, Any]] = field(default_factory=list)
    ended_runs: list[int] = field(default_factory=list)
    # Progress notices (`tell`): written in `send`, once the case's new holders are known.
    told: list[tuple[str, int, dict[int, str], int | None]] = field(default_factory=list)
    lateness: list[dict[str, Any]] = field(default_factory=list)  # missed deadlines (`note_lateness`)

    @classmethod
    def for_case(cls, case: Mapping[str, Any], signer: Signer) -> _Writes:
        return cls(case=case, signer=signer, seq=case.get("last_seq") or 0, head=case.get("last_hash") or GENESIS,
                   runs=list(case.get("unreachable_runs") or ()))  # fmt: skip

    @property
    def case_id(self) -> int:
        return int(self.case["id"])

    def event(
        self, *, actor: int | None, action: str, from_state: str | None, to_state: str, at: datetime,
        note: str | None = None, attachment_hashes: Sequence[str] = (), extra: Mapping[str, Any] | None = None,
    ) -> int:  # fmt: skip
        """One signed ledger step (事事记录，步步签字); returns its sequence number. The seal
        covers every column written here (grid.cases.ledger.seal_bytes); `extra` is the body.
        Any step but push_unreachable first ends the case's unreachable runs, so their
        counts go on the ledger before it, in order."""
        if action != "push_unreachable":
            for run in list(self.runs):
                self.end_run(run, at=at, ended_by="case_step")
        self.seq += 1
        event = Event(
            case_id=self.case_id, seq=self.seq, action=action, actor_person_id=actor, from_state=from_state,
            to_state=to_state, note=note, attachment_hashes=list(attachment_hashes), body=dict(extra or {}),
            created_at=at, key_id=self.signer.key_id,
        )  # fmt: skip
        digest, signature = self.signer.seal(event, self.head)
        self.events.append({
            "case_id": self.case_id, "county_code": self.case["county_code"], "seq": self.seq, "actor_person_id": actor, "action": action,
            "from_state": from_state, "to_state": to_state, "note": note, "attachment_hashes": list(attachment_hashes),
            "body": canonical_json(event.body).decode(), "prev_hash": self.head, "hash": digest, "signature": signature,
            "created_at": at, "seal": SEAL_ALL_COLUMNS, "key_id": event.key_id,
        })  # fmt: skip
        self.head = digest
        return self.seq

    def end_run(self, run: Mapping[str, Any], *, at: datetime, ended_by: str) -> None:
        """A person's run of push failures on this case ends: the failures counted since its
        opening event go on the ledger in one signed event (none if there were none)."""
        self.runs = [r for r in self.runs if r["person_id"] != run["person_id"]]
        self.ended_runs.append(run["person_id"])
        if run["folded"]:
            self.event(
                actor=SYSTEM, action="push_unreachable", from_state=self.case["state"], to_state=self.case["state"],
                at=at, note=f"人员 {run['person_id']} 自第 {run['opened_seq']} 步起又有 {run['folded']} 次推送未送达"
                f"（合计记录，未逐条签名）；{RUN_ENDS.get(ended_by, ended_by)}",
                extra={"unreachable_person_id": run["person_id"], "count": run["folded"],
                       "opened_seq": run["opened_seq"], "first_at": str(run["first_folded_at"]),
                       "last_at": str(run["last_folded_at"]), "first_notification_id": run["first_notification_id"],
                       "last_notification_id": run["last_notification_id"], "ended_by": ended_by},
            )  # fmt: skip

    def tell(self, *, action: str, seq: int, people: Mapping[int, str], actor: int | None) -> None:
        """Progress notices of step `seq` to `people` ({person: 您上报 | 您经手}); never to the
        actor, nor to whom this step hands the case (they get their own `assigned`)."""
        self.told.append((action, seq, dict(people), actor))

    def notify(self, *, person_ids: Sequence[int], kind: str, seq: int, at: datetime, title: str, body: str) -> None:
        """Outbox rows, one per person. Titles and bodies carry no party's personal data:
        they pass through push services."""
        self.notifications += [
            {"county_code": self.case["county_code"], "person_id": pid, "case_id": self.case_id, "kind": kind,
             "title": title, "body": body, "dedupe_key": f"case:{self.case_id}:{seq}:{kind}:{pid}", "created_at": at}
            for pid in dict.fromkeys(person_ids)
        ]  # fmt: skip

    async def send(self, conn: Conn, *, at: datetime) -> None:
        """Every write. Use cases run in pipeline mode, so these travel together with
        whatever is read next (or the COMMIT): one round trip however many statements."""
        if self.values:
            await repo.update_case(conn, case_id=self.case_id, values=self.values)
        if self.recipients is not None:
            await repo.replace_recipients(conn, case_id=self.case_id, county_code=self.case["county_code"],
                                          recipients=self.recipients, at=at, retire=not self.new_case)  # fmt: skip
        for section, body, person_id, when in self.sections:
            await repo.upsert_section(
                conn,
                case_id=self.case_id,
                county_code=self.case["county_code"],
                section=section.value,
                body=body,
                person_id=person_id,
                at=when,
            )
        if self.events:
            await repo.insert_events(conn, rows=self.events)
        if self.lateness:
            await repo.insert_lateness(conn, rows=self.lateness)
        if self.ended_runs:
            await repo.end_unreachable_runs(conn, case_id=self.case_id, person_ids=self.ended_runs)
        if self.told:
            view = await repo.follow_view(conn, case_id=self.case_id)  # after the writes: who holds it now
            handed = {pid for pid, _ in self.recipients or ()}
            for action, seq, people, actor in self.told:
                for pid, whose in people.items():
                    if pid != actor and pid not in handed:
                        title, body = follow_notice(action=action, whose=whose, case_id=self.case_id,
                                                    category_name=view["category_name"], tier=Tier(view["tier"]),
                                                    node_name=view["node_name"], node_level=view["node_level"],
                                                    holder_names=view["holder_names"])  # fmt: skip
                        self.notify(person_ids=[pid], kind=action, seq=seq, at=at, title=title, body=body)
        await repo.insert_notifications(conn, rows=self.notifications)


# --- what the reporter and the previous holders read of a step ----------------------------
REPORTER, HANDLED = "您上报", "您经手"  # whose case it is, for the reader of the notice


def follow_notice(
    *, action: str, whose: str, case_id: int, category_name: str, tier: Tier, node_name: str, node_level: str,
    holder_names: Sequence[str],
) -> tuple[str, str]:  # fmt: skip
    """The title and body of a progress notice: what happened and who holds the case now,
    e.g. 您上报的案件（编号 12，邻里纠纷）已上交至<某街道的调解室>，现由张三处理. No party's
    personal data and no description (push passes it through Google and Apple)."""
    # The room's name where the node is its room's (the street's hall); a case returned (退回) below
    # it keeps its tier, and is named by its node alone.
    place = f"{node_name}{tier_name(tier.value)}" if node_level in BODY_LEVELS.get(tier, ()) else node_name
    names = "、".join(holder_names[:3]) + (f"等 {len(holder_names)} 人" if len(holder_names) > 3 else "")
    what = {"escalate": f"已上交至{place}", "return": f"已退回至{place}", "resolve": f"已在{place}调解成功",
            "close": f"已在{place}{action_name('close')}"}.get(action, f"在{place}{progress_done(action)}")  # fmt: skip
    if action in ("close", "terminate"):
        holds = f"，承办人：{names}" if names else ""
    else:
        holds = f"，现由{names}处理" if names else "，正在安排承办人"
    return notice_title(action), f"{whose}的案件（编号 {case_id}，{category_name}）{what}{holds}"


def _assignment(route: Route, deadlines: dict[str, Any], *, deadline_no: int) -> dict[str, Any]:
    """The case's columns once assigned along `route`."""
    return {"state": State.assigned.value, "tier": route.tier.value, "handling_node_id": route.node.id,
            "deadline_no": deadline_no, **deadlines}  # fmt: skip


async def _holders(conn: Conn, route: Route, rooms: Rooms) -> list[tuple[int, str]]:
    """Who holds the case along `route`: the node's chief and deputies, and for a mediation
    room its members too."""
    people: list[tuple[int, str]] = [(h.person_id, h.role) for h in route.recipients]
    if route.tier is not Tier.chief:
        people += [(pid, "mediator") for pid in await rooms.members(conn, tier=route.tier, node_id=route.node.id)]
    return list(dict.fromkeys(people))


def _record_assignment(
    w: _Writes, *, route: Route, people: list[tuple[int, str]], deadlines: dict[str, Any], at: datetime,
    from_state: str, reason: str, marks_hard: bool = True,
) -> None:  # fmt: skip
    """The holders, the signed `assign` step, and the holders' notice. A case that reaches the
    county centre is marked hard (`marks_hard`; a walk-in visit is not: its duty leader decides)."""
    w.recipients = people
    seq = w.event(
        actor=SYSTEM, action="assign", from_state=from_state, to_state=State.assigned.value, at=at, note=reason,
        extra={"tier": route.tier.value, "node_code": route.node.code,
               "recipients": [pid for pid, _ in people], "flags": list(route.flags)},
    )  # fmt: skip
    w.notify(person_ids=[pid for pid, _ in people], kind="assigned", seq=seq, at=at,
             title=f"新的矛盾纠纷待处理（{tier_name(route.tier)}）",
             body=f"案件 {w.case_id}：{route.node.name}，请在 {people_time.for_person(deadlines['accept_by'])} 前受理")  # fmt: skip
    if marks_hard and route.tier is Tier.county_center and not (w.case.get("hard") or w.values.get("hard")):
        # A case that reaches the county centre is hard (包案) from then on; its owners are named later.
        w.values["hard"] = True
        w.event(actor=SYSTEM, action="mark_hard", from_state=State.assigned.value, to_state=State.assigned.value,
                at=at, note=f"已到{tier_name(route.tier)}，{action_name('mark_hard')}，待确定包案领导和责任单位")  # fmt: skip


async def _assign(
    conn: Conn, w: _Writes, *, route: Route, rules: RuleSet, at: datetime, from_state: str, reason: str, rooms: Rooms,
) -> None:  # fmt: skip
    """The server hands the case to the route's holders, with fresh deadlines."""
    deadlines = _deadlines(rules, route.tier, at)
    w.values.update(_assignment(route, deadlines, deadline_no=w.case["deadline_no"] + 1))
    people = await _holders(conn, route, rooms)
    _record_assignment(w, route=route, people=people, deadlines=deadlines, at=at, from_state=from_state, reason=reason)


async def _detail(conn: Conn, *, actor: Actor, case_id: int, audit: ReadAudit | None) -> Row | None:
    """The case file; its parties only if the actor may read the case (`readable`)."""
    rows = await fetch_read(
        conn, repo.CASE_DETAIL_SQL,
        repo.case_detail_params(case_id=case_id, **actor.scope), audit,
    )  # fmt: skip
    return rows[0] if rows else None


# --- reporting ------------------------------------------------------------------------


async def submit_report(
    *, conn: Conn, actor: Actor, key: UUID, report: Report, now: datetime, signer: Signer, rooms: Rooms,
    county_code: str, audit: ReadAudit | None = None,
) -> Outcome:  # fmt: skip
    """A chief's report: located, routed, assigned, recorded, notified; idempotent per key."""
    if report.severity not in SEVERITIES:
        raise InvalidInput(f"严重程度（severity）应为 1 到 4，收到的是 {report.severity}", severity=report.severity)
    fingerprint = report.fingerprint()
    lon, lat = to_wgs84(report.lon, report.lat, report.crs)
    async with conn.pipeline(), conn.transaction():
        # BEGIN and four independent reads: one round trip.
        found = await conn.execute(
            repo.FIND_BY_KEY_SQL, {"reporter": actor.person_id, "key": key, "reader_counties": [county_code]}
        )
        category = await conn.execute(repo.CATEGORY_ACTIVE_SQL, {"category": report.category})
        rules_row = await conn.execute(repo.ACTIVE_RULES_SQL)
        located = await conn.execute(
            node_sql.LOCATE_SQL,
            node_sql.locate_params(lon=lon, lat=lat, floor=report.floor, scope_ids=(), county=county_code),
        )
        existing, known, active, rows = (await found.fetchone(), await category.fetchone(),
                                         await rules_row.fetchone(), await located.fetchall())  # fmt: skip
        if existing is not None:
            return await _same_or_conflict(conn, actor, existing, fingerprint, audit)
        if known is None:
            names = "、".join(f"{c['name_zh']}（{c['code']}）" for c in await repo.categories(conn))
            raise InvalidInput(f"不认识的类别“{report.category}”；可选：{names}", category=report.category)
        assert active is not None, "no active routing rule set: run the migrations"
        rules = _rules(active)
        location = build_location(rows, floor=report.floor)
        flags: list[str] = []
        if location is not None:
            chain, located_id, outside = location.chain, location.node.id, False
        else:
            # In a neighbouring county of the deployment: not this county's to handle.
            other = await node_sql.county_at(conn, lon=lon, lat=lat)
            if other is not None and other["county_code"] != county_code:
                raise_other_county(other, lon=report.lon, lat=report.lat, county_name="本县")
            # Outside every polygon: the reporter's own post answers, and the case says so.
            own = await node_sql.deepest_current_post_node(conn, person_id=actor.person_id)
            if own is None:
                raise OutsideJurisdiction(
                    f"位置 ({report.lon:.6f}, {report.lat:.6f}, {report.crs}) 不在本县范围内，你也没有在任的岗位"
                    "可以代为承接。请核对手机定位和坐标系（高德、腾讯地图用 crs=gcj02）。", lon=report.lon, lat=report.lat,
                )  # fmt: skip
            chain, located_id, outside = await _chain(conn, own), None, True
        occurred_at = report.occurred_at
        if report.client_recorded_at and report.client_recorded_at > now + CLOCK_TOLERANCE:
            flags.append("client_clock_ahead")
        if occurred_at and occurred_at > now + CLOCK_TOLERANCE:
            flags.append("occurred_at_in_future")
            occurred_at = now  # the server's time is authoritative
        route = decide(rules, category=report.category, severity=report.severity, chain=chain, outside_county=outside)
        people = await _holders(conn, route, rooms)
        deadlines = _deadlines(rules, route.tier, now)
        # Written once, already assigned: the ledger still records the report, then the assignment.
        case_id = await repo.insert_case(conn, row={**_assignment(route, deadlines, deadline_no=1),
            "county_code": county_code, "reporter_person_id": actor.person_id, "idempotency_key": key,
            "request_hash": fingerprint, "category": report.category, "severity": report.severity,
            "description": report.description, "crs": str(report.crs), "lon_reported": report.lon,
            "lat_reported": report.lat, "accuracy_m": report.accuracy_m, "floor": report.floor, "lon": lon,
            "lat": lat, "located_node_id": located_id, "outside_county": outside,
            "rule_version": rules.version, "route_flags": [*route.flags, *flags],
            "occurred_at": occurred_at, "client_recorded_at": report.client_recorded_at, "reported_at": now,
        })  # fmt: skip
        if case_id is None:  # a concurrent retry with the same key committed first
            again = await repo.find_by_key(conn, reporter_person_id=actor.person_id, key=key)
            assert again is not None
            return await _same_or_conflict(conn, actor, again, fingerprint, audit)
        w = _Writes.for_case({"id": case_id, "county_code": county_code, "deadline_no": 0}, signer)
        w.new_case = True
        w.event(actor=actor.person_id, action="report", from_state=None, to_state=State.reported.value, at=now,
                note=report.description,
                extra={"category": report.category, "severity": report.severity, "lon": lon, "lat": lat,
                       "rule_version": rules.version, "flags": [*route.flags, *flags]})  # fmt: skip
        _record_assignment(w, route=route, people=people, deadlines=deadlines, at=now, from_state=State.reported.value,
                           reason=f"按第 {rules.version} 版分派规则的第 {route.rule_index + 1} 条分派")  # fmt: skip
        await repo.insert_parties(conn, case_id=case_id, county_code=county_code,
                                  parties=[asdict(p) for p in report.parties])  # fmt: skip
        await w.send(conn, at=now)
        case = await _detail(conn, actor=actor, case_id=case_id, audit=audit)
        assert case is not None
        return Outcome(case=case, created=True)


async def _same_or_conflict(
    conn: Conn, actor: Actor, existing: Mapping[str, Any], fingerprint: str, audit: ReadAudit | None
) -> Outcome:
    if existing["request_hash"] != fingerprint:
        raise IdempotencyConflict(
            "这个 Idempotency-Key 已用于另一份上报；新的上报请换一个新的 Idempotency-Key",
            case_id=existing["id"],
        )
    case = await _detail(conn, actor=actor, case_id=existing["id"], audit=audit)
    assert case is not None  # the reporter may always read their own report
    return Outcome(case=case, created=False)


# --- reading --------------------------------------------------------------------------


async def get_case(*, conn: Conn, actor: Actor, case_id: int, audit: ReadAudit | None = None) -> Row:
    """The case file, if the actor may read it; otherwise 'not found' (nothing tells it exists)."""
    case = await _detail(conn, actor=actor, case_id=case_id, audit=audit)
    if case is None or not case["readable"]:
        raise _not_found(case_id)
    return case


async def readable_case(*, conn: Conn, actor: Actor, case_id: int) -> Row:
    """The case's own columns (no parties, so nothing to audit), if the actor may read it."""
    case = await repo.case_brief(conn, case_id=case_id, **actor.scope)
    if case is None:
        raise _not_found(case_id)
    return case


async def ledger_events(*, conn: Conn, actor: Actor, case_id: int) -> list[Row]:
    await readable_case(conn=conn, actor=actor, case_id=case_id)
    return await repo.events(conn, case_id=case_id)


async def verify_ledger(*, conn: Conn, case_id: int, keys: Keyring) -> Verdict:
    """Recompute the case's chain from its stored columns; `keys` are the trusted public
    keys by key id (from configuration, never from the database)."""
    rows = await repo.events(conn, case_id=case_id)
    return verify((stored_event(r) for r in rows), keys)


def stored_event(row: Mapping[str, Any]) -> StoredEvent:
    return StoredEvent(
        id=row["id"], seal=row["seal"], prev_hash=row["prev_hash"], hash=row["hash"], signature=row["signature"],
        event=Event(
            case_id=row["case_id"], seq=row["seq"], action=row["action"], actor_person_id=row["actor_person_id"],
            from_state=row["from_state"], to_state=row["to_state"], note=row["note"],
            attachment_hashes=row["attachment_hashes"], body=row["body"], created_at=row["created_at"],
            key_id=row["key_id"],
        ),
    )  # fmt: skip


async def list_cases(
    *, conn: Conn, actor: Actor, now: datetime, state: str | None = None, tier: str | None = None,
    node_code: str | None = None, category: str | None = None, overdue: bool | None = None,
    bbox: tuple[float, float, float, float] | None = None, mine: bool = False, open_only: bool = False,
    before_id: int | None = None, limit: int = 50,
) -> list[Row]:  # fmt: skip
    """Cases the actor may read, filtered. Scope is part of the WHERE clause, never a filter after."""
    node_path = None
    if node_code is not None:
        node = await node_sql.node_brief(conn, code=node_code)
        if node is None:
            raise NodeNotFound(f"没有编码为“{node_code}”的网格节点，请核对编码", code=node_code)
        node_path = node["path"]
    reader = repo.reader_params(now=now, **actor.scope)
    filters = {"state": state, "tier": tier, "category": category, "node_path": node_path, "overdue": overdue,
               "bbox": bbox, "mine": mine, "before_id": before_id}  # fmt: skip
    return await repo.list_cases(conn, reader=reader, open_only=open_only, filters=filters, limit=limit)


def is_overdue(case: Mapping[str, Any], now: datetime) -> bool:
    """The lateness rule (grid.cases.repository `_LATE`), for a case row already in hand."""
    if case["state"] in WAITING_FOR_ACCEPT:
        return case["accept_by"] is not None and case["accept_by"] < now
    if case["state"] in WAITING_FOR_RESOLVE:
        return case["resolve_by"] is not None and case["resolve_by"] < now
    return False


def allowed_for(actor: Actor, case: Mapping[str, Any]) -> list[str]:
    """The actions `actor` may take on `case` now, by the same rules that guard an action:
    a handler's (`can_act`) and a hard case's owner's (`owns`) actions in its state, none
    for anyone else. `case` needs `handling_path`, `is_recipient` and the ownership
    columns (the case file's and the list's rows have them). A walk-in visit waiting for
    its duty leader offers them the leader's decisions instead (grid.leadership.visits)."""
    if case.get("visit_waits_for") == actor.person_id and case["state"] == State.assigned:
        return list(VISIT_ACTIONS)
    handles, owner = can_act(actor, case), owns(actor, case)
    if not (handles or owner):
        return []
    return [a for a in allowed_actions(case["state"], case["tier"], handles=handles, owns=owner)
            if a not in NARROWER or NARROWER[a](actor, case)]  # fmt: skip


def _check_may_take(actor: Actor, case: Mapping[str, Any], action: str) -> tuple[bool, bool]:
    """(handles, owns) of the actor; NotResponsible if this action is not theirs to take."""
    handles, owner = can_act(actor, case), owns(actor, case)
    try:
        which = Action(action)
    except ValueError:
        return handles, owner  # an unknown action: the workflow names what is possible
    if which in OWNERS_ONLY and not owner:
        raise NotResponsible(
            f"{action_name(action)}（{action}）只能由包案案件的包案领导或责任单位办理；案件 {case['id']} "
            + ("的包案领导和责任单位不包括你" if case.get("hard") else "还不是包案案件"),
            case_id=case["id"], action=action,
        )  # fmt: skip
    if which not in OWNER_ACTIONS and not handles:
        allowed = "、".join(
            f"{action_name(a)}（{a}）" for a in allowed_actions(case["state"], handles=False, owns=True)
        )
        raise NotResponsible(
            f"案件 {case['id']} 由 {case['handling_node_name']} 承办，{action_name(action)}须由承办人办理；"
            f"包案领导和责任单位现在可以：{allowed or '无'}",
            case_id=case["id"], action=action,
        )  # fmt: skip
    return handles, owner


# --- acting ---------------------------------------------------------------------------


async def _locked_for_actor(
    conn: Conn, *, actor: Actor, case_id: int, may: Callable[[Actor, Mapping[str, Any]], bool] = can_act
) -> Row:
    """The case, locked, if `actor` may write to it. A case they may not read is 'not
    found', exactly as for a read; one they read but are not responsible for is 403."""
    case = await repo.case_for_action(conn, case_id=case_id, **actor.scope)
    if case is None or not case["readable"]:
        raise _not_found(case_id)
    if not may(actor, case):
        raise NotResponsible(
            f"案件 {case_id} 由 {case['handling_node_name']} 承办；只有它的承办人，或其上的调度员、调解员可以处理",
            case_id=case_id,
        )
    return case


async def act(
    *, conn: Conn, actor: Actor, case_id: int, action: str, fields: Mapping[str, Any], now: datetime,
    signer: Signer, rooms: Rooms, audit: ReadAudit | None = None, required: Requirements = REQUIRED,
) -> Row:  # fmt: skip
    """One step of the workflow by a person: checked, applied, recorded, notified.
    Returns the case file as the actor reads it afterwards (without the parties if the
    step took the case out of the actor's area)."""
    answer = await act_once(conn=conn, actor=actor, case_id=case_id, action=action, fields=fields, now=now,
                            signer=signer, rooms=rooms, audit=audit, once=None, render=lambda row: row,
                            required=required)  # fmt: skip
    return answer.body


async def act_once(
    *, conn: Conn, actor: Actor, case_id: int, action: str, fields: Mapping[str, Any], now: datetime,
    signer: Signer, rooms: Rooms, render: Render, once: Once | None, audit: ReadAudit | None = None,
    required: Requirements = REQUIRED,
) -> Answer:  # fmt: skip
    """`act`, answered with `render(case file)`; with `once`, that answer is kept in the
    same transaction, and a retry with the same key gets it back without a second step."""
    async with conn.pipeline(), conn.transaction():
        kept = await _claim(conn, actor=actor, case_id=case_id, once=once, at=now, audit=audit)
        if kept is not None:
            return kept
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_act_or_owns)
        handles, owner = _check_may_take(actor, case, action)
        try:
            step = step_for(case["state"], action, case["tier"], handles=handles, owns=owner)
        except IllegalTransition as exc:
            raise IllegalAction(str(exc), state=str(exc.state), allowed=list(exc.allowed)) from None
        if action in NARROWER and not NARROWER[action](actor, case):
            raise NotResponsible(f"只有{tier_name(Tier.county_center)}的调解员可以{action_name(action)}",
                                 case_id=case_id, action=action)  # fmt: skip
        missing = missing_fields(step, fields)
        if missing:
            needed = "、".join(f"{FIELD_NAMES.get(f, f)}（{f}）" for f in missing)
            raise MissingFields(f"{action_name(action)}须填写：{needed}", missing=missing)
        if fields.get("work_group") and step.action is not Action.start_mediation:
            raise InvalidInput(f"{WORK_GROUP}（work_group）只在{action_name('start_mediation')}时选择",
                               action=action)  # fmt: skip
        if step.action is Action.start_mediation:  # 五位一体: who of the hall's team mediates, on the ledger
            group = await team.choose_work_group(conn, case=case, member_ids=fields.get("work_group"))
            fields = {k: v for k, v in fields.items() if k != "work_group"}
            if group:
                fields["work_group"] = [{"id": m["id"], "name": m["name"], "kind": m["kind"]} for m in group]
                await leadership_sql.replace_work_group(conn, case_id=case_id, county_code=case["county_code"],
                                                        member_ids=[m["id"] for m in group],
                                                        person_id=actor.person_id, at=now)  # fmt: skip
        if step.action is Action.extend:
            fields = {**fields, "approver": await _check_approver(conn, case, actor=actor, given=fields["approver"],
                                                                  rooms=rooms)}  # fmt: skip
        note = fields.get("note")
        w = _Writes.for_case(case, signer)
        _note_lateness(w, now=now)  # a deadline passed before the worker saw it: on record first
        w.values.update(step.changes(case, fields, now))
        # A hard case concluded is closed: the file's rules for closing apply (docs/leadership.md).
        checked_as = Action.close.value if step.action is Action.conclude else action
        _check_sections(case, action=checked_as, required=required, outcome=w.values.get("outcome", case["outcome"]),
                        writes=step.section.value if step.section is not None and note else None)  # fmt: skip
        to_state = (step.to or State(case["state"])).value
        w.values["state"] = to_state
        if step.section is not None and note:
            w.sections.append((step.section, note, actor.person_id, now))
        extra = {k: v for k, v in fields.items() if k not in ("note", "attachment_hashes")}
        if step.to is None:  # an extension: say which deadline moved, and to when
            extra |= {k: v for k, v in w.values.items() if k in ("accept_by", "resolve_by")}
        seq = w.event(actor=actor.person_id, action=action, from_state=case["state"], to_state=to_state, at=now,
                      note=note, attachment_hashes=fields.get("attachment_hashes") or (), extra=extra)  # fmt: skip
        if step.action is Action.reopen and case["batch_id"] is not None:  # 零倒流: a backlog case came back
            await _reflow_reopened(conn, w, actor=actor.person_id, at=now, note=note)
        rules, tier = _case_rules(case), Tier(case["tier"])
        reporter = {case["reporter_person_id"]: REPORTER}
        if step.then is Then.escalate:
            await _escalate(conn, w, rules=rules, tier=tier, at=now, reason=note or "", rooms=rooms,
                            actor=actor.person_id)  # fmt: skip
        elif step.then is Then.return_to:
            await _return_to(conn, w, rules=rules, tier=tier, node_code=str(fields["next_recipient"]), at=now,
                             rooms=rooms)  # fmt: skip
            w.tell(action=action, seq=seq, people=reporter, actor=actor.person_id)
        elif step.then is Then.notify_all:  # 依法终结: everyone who had the case hears where it went
            holders = {r["person_id"]: HANDLED for r in await repo.recipients(conn, case_id=case_id)}
            leader = {case["owner_leader_person_id"]: HANDLED} if case["owner_leader_person_id"] else {}
            w.tell(action=action, seq=seq, people=holders | leader | reporter, actor=actor.person_id)
        elif step.then is Then.reassign:
            route = await _route_at(conn, w.case, tier=tier, rules=rules)
            await _assign(conn, w, route=route, rules=rules, at=now, from_state=State.reopened.value, rooms=rooms,
                          reason="重新办理：群众反映纠纷未解决")  # fmt: skip
        elif step.then is Then.direct:
            target = _tier_field(fields["tier"])
            route = await _route_at(conn, w.case, tier=target, rules=rules)
            await _assign(conn, w, route=route, rules=rules, at=now, from_state=to_state, rooms=rooms,
                          reason=f"{action_name('direct')}{tier_name(target)}：{note}" if note else
                          f"{action_name('direct')}{tier_name(target)}")  # fmt: skip
            w.tell(action=action, seq=seq, people=reporter, actor=actor.person_id)
        elif step.then is Then.record:
            pass  # a progress note: the signed step is all
        else:
            w.tell(action=action, seq=seq, people=reporter, actor=actor.person_id)
        await w.send(conn, at=now)
        updated = await _detail(conn, actor=actor, case_id=case_id, audit=audit)
        assert updated is not None
        answer = Answer(status=200, body=render(updated))
        shown = len(updated["parties"]) if updated["readable"] else 0
        await _keep(conn, actor=actor, once=once, answer=answer, parties_shown=shown)
    return answer


async def _reflow_reopened(conn: Conn, w: _Writes, *, actor: int, at: datetime, note: str | None) -> None:
    """A resolved backlog case reopened is a reflow (倒流): signed, and counted (grid.leadership.backlog)."""
    w.event(actor=actor, action="reflow", from_state=State.reopened.value, to_state=State.reopened.value, at=at,
            note=note, extra={"kind": "reopen"})  # fmt: skip
    await leadership_sql.insert_reflow(conn, case_id=w.case_id, county_code=w.case["county_code"], kind="reopen", new_case_id=None, person_id=actor,
                                       note=note, at=at)  # fmt: skip


def _tier_field(given: Any) -> Tier:
    """The tier an owner hands the case to (`tier`); InvalidInput naming the choices."""
    try:
        return Tier(str(given))
    except ValueError:
        names = "、".join(f"{tier_name(t)}（{t.value}）" for t in Tier)
        raise InvalidInput(f"交办的层级（tier）应为：{names}", tier=given) from None


def _check_sections(
    case: Mapping[str, Any], *, action: str, required: Requirements, outcome: str | None, writes: str | None
) -> None:
    """六公开 before resolve and close: the sections the table requires must be filed (the
    step's own note counts for the section it writes, as return_visit's does)."""
    filed = [*case["filed_sections"], *([writes] if writes else [])]
    lacking = required.missing(action=action, tier=case["tier"], outcome=outcome, filed=filed)
    if lacking:
        names = "、".join(s.name_zh for s in lacking)
        raise SectionsMissing(
            f"案件 {case['id']} 还不能{action_name(action)}：六公开中的{names}尚未填写。请先用 "
            f"PUT /api/v1/cases/{case['id']}/sections/{{section}} 填写（section 依次为 "
            f"{'、'.join(s.value for s in lacking)}），再{action_name(action)}",
            action=action, missing=[s.value for s in lacking], missing_names=[s.name_zh for s in lacking],
        )  # fmt: skip


async def _check_approver(conn: Conn, case: Mapping[str, Any], *, actor: Actor, given: Any, rooms: Rooms) -> int:
    """An extension is approved one tier up: by someone the case would go to if it were
    escalated now (that tier's chief or deputies, or its room's mediators); at the county
    centre, the last tier, by the chief of the county centre's own node. Never by the actor.
    `given` is the approver's person id; returns it."""
    tier, rules = Tier(case["tier"]), _case_rules(case)
    up = next_tier(tier)
    if up is None:
        route = await _route_at(conn, case, tier=tier, rules=rules)
        people = [h.person_id for h in route.recipients if h.role == "chief"]
    else:
        route = await _route_at(conn, case, tier=up, rules=rules)
        people = [pid for pid, _ in await _holders(conn, route, rooms)]
    allowed = [pid for pid in people if pid != actor.person_id]
    # 包案: the hard case's owning leader approves too; their own extension is their approval.
    leader = case["owner_leader_person_id"] if case.get("hard") else None
    if leader is not None and leader not in allowed:
        allowed.insert(0, leader)
    text = str(given).strip()
    if text.isascii() and text.isdigit() and int(text) in allowed:  # int("²") would raise
        return int(text)
    names = await repo.person_names(conn, ids=allowed)
    listed = "、".join(f"{pid}（{names.get(pid, '')}）" for pid in allowed) or "无（请改为上报）"
    raise ApproverNotAllowed(
        f"延期须由上一级批准：approver 填批准人的人员编号（person_id），须是 {tier_name(up or tier)} "
        f"{route.node.name}（{route.node.code}）的负责人或调解员，且不是你本人"
        f"{'（包案案件也可由包案领导批准）' if leader is not None else ''}。可选：{listed}",
        approver=given, allowed=allowed, tier=(up or tier).value, node=route.node.code,
    )  # fmt: skip


async def _route_at(conn: Conn, case: Mapping[str, Any], *, tier: Tier, rules: RuleSet) -> Route:
    chain = await _chain(conn, case["located_node_id"] or case["handling_node_id"])
    return route_to_tier(rules, tier=tier, chain=chain, outside_county=case["outside_county"])


async def _escalate(
    conn: Conn, w: _Writes, *, rules: RuleSet, tier: Tier, at: datetime, reason: str, rooms: Rooms,
    actor: int | None = SYSTEM,
) -> None:  # fmt: skip
    """Up one tier. The reporter and the holders it leaves hear where it went and who has it."""
    up = next_tier(tier)
    assert up is not None, "the county centre closes lawfully (terminate); it never escalates"
    route = await _route_at(conn, w.case, tier=up, rules=rules)
    previous = {r["person_id"]: HANDLED for r in await repo.recipients(conn, case_id=w.case_id)}
    moved = f"由{tier_name(tier)}{action_name('escalate')}{tier_name(up)}"  # "from the house, up to the hall"
    await _assign(conn, w, route=route, rules=rules, at=at, from_state=State.escalated.value, rooms=rooms,
                  reason=f"{moved}：{reason}" if reason else moved)  # fmt: skip
    w.tell(action="escalate", seq=w.seq, people=previous | {w.case["reporter_person_id"]: REPORTER}, actor=actor)


async def _return_to(
    conn: Conn, w: _Writes, *, rules: RuleSet, tier: Tier, node_code: str, at: datetime, rooms: Rooms
) -> None:
    """退回 goes down, never sideways or out: to a live node strictly inside the handling
    node's subtree, with a current chief. Offered (and named when refused): the case's own
    chain below the handling node (the located node and its ancestors). Anything else in
    the subtree is accepted too, e.g. the neighbouring village when the township hall
    returns a case its village misplaced; a case that belongs elsewhere goes up first."""
    target = await repo.return_target(conn, case_id=w.case_id, code=node_code)
    holder = (await _chain(conn, target["id"]))[0] if target is not None else None
    if holder is None or not any(h.role == "chief" for h in holder.chiefs):
        choices = await repo.return_choices(conn, case_id=w.case_id)
        where = f"{w.case['handling_node_name']}（{w.case['handling_node_code']}）"
        why = "不在本案承办节点辖区内" if target is None else "没有在任负责人"
        raise ReturnNotAllowed(
            f"不能退回给 {node_code}：它{why}。退回只能交给 {where} 辖区内、有在任负责人的下级节点；"
            f"本案所在链条上可选：{'、'.join(choices) or '无（请改为上报）'}",
            next_recipient=node_code, allowed=choices, within=w.case["handling_node_code"],
        )  # fmt: skip
    route = Route(tier=tier, node=holder, recipients=tuple(sorted(holder.chiefs, key=lambda h: h.role != "chief")),
                  rule_version=rules.version, rule_index=-1, flags=("returned",))  # fmt: skip
    await _assign(conn, w, route=route, rules=rules, at=at, from_state=State.returned.value, rooms=rooms,
                  reason=f"退回给 {holder.name}（{node_code}）")  # fmt: skip


async def write_section(
    *, conn: Conn, actor: Actor, case_id: int, section: str, body: str, now: datetime, signer: Signer,
    once: Once | None = None,
) -> Answer:  # fmt: skip
    """One of the six public sections (六公开); every write is a signed ledger step.
    With `once`, a retry with the same key writes nothing more and gets the same answer."""
    try:
        which = Section(section)
    except ValueError:
        names = "、".join(f"{section_name(s)}（{s.value}）" for s in Section)
        raise InvalidInput(f"不认识的部分“{section}”；可选：{names}", section=section) from None
    async with conn.pipeline(), conn.transaction():
        kept = await _claim(conn, actor=actor, case_id=case_id, once=once, at=now, audit=None)
        if kept is not None:
            return kept
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_act_or_owns)
        if case["state"] == State.closed:
            raise CaseClosed(
                f"案件 {case_id} 已结案，六公开内容已冻结，不能再修改{which.name_zh}。如确需修改，请先重新开启案件"
                "（action: reopen，须写明原因），再填写",
                case_id=case_id, section=which.value,
            )  # fmt: skip
        w = _Writes.for_case(case, signer)
        w.sections.append((which, body, actor.person_id, now))
        w.event(actor=actor.person_id, action=f"file_{which.value}", from_state=case["state"], to_state=case["state"],
                at=now, note=body, extra={"sha256": hashlib.sha256(body.encode()).hexdigest()})  # fmt: skip
        await w.send(conn, at=now)
        answer = Answer(status=204, body=None)
        await _keep(conn, actor=actor, once=once, answer=answer)
    return answer


async def attachable_case(*, conn: Conn, actor: Actor, case_id: int) -> None:
    """Refuse early (before a photo is read): 404 if the actor may not read the case, 403
    if they may read it but neither act on it nor reported it (`can_attach`)."""
    async with conn.transaction():
        await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_attach)


async def record_attachment(
    *, conn: Conn, actor: Actor, case_id: int, file: Mapping[str, Any], now: datetime, signer: Signer
) -> tuple[int, bool]:
    """A photo joins the case (if the actor may attach to it: `can_attach`); its hash goes on
    the ledger, so it cannot be swapped later. `file`: sha256, content_type, size, path,
    taken_at, taken_lon, taken_lat. Returns its id, and False when it was there already."""
    async with conn.pipeline(), conn.transaction():
        case = await _locked_for_actor(conn, actor=actor, case_id=case_id, may=can_attach)
        new_id = await repo.insert_attachment(
            conn,
            row={
                "case_id": case_id,
                "county_code": case["county_code"],
                "uploaded_by": actor.person_id,
                "created_at": now,
                **file,
            },
        )
        if new_id is None:
            old_id = await repo.attachment_id(conn, case_id=case_id, sha256=file["sha256"])
            assert old_id is not None  # the conflict was on this row, and the case is locked
            return old_id, False
        w = _Writes.for_case(case, signer)
        w.event(actor=actor.person_id, action="attach", from_state=case["state"], to_state=case["state"], at=now,
                attachment_hashes=[file["sha256"]])  # fmt: skip
        await w.send(conn, at=now)
        return new_id, True


async def attachment(
    *, conn: Conn, actor: Actor, case_id: int, attachment_id: int, variant: str, audit: ReadAudit | None
) -> Row:
    """One photo's row (sha256, content_type, path), if the actor may read its case; the
    read is audited in the same statement (a photo may show people). A case the actor may
    not read is 'not found', exactly as for the case file."""
    params = repo.attachment_params(case_id=case_id, attachment_id=attachment_id, variant=variant, **actor.scope)
    rows = await fetch_read(conn, repo.ATTACHMENT_SQL, params, audit)
    if rows:
        return rows[0]
    await readable_case(conn=conn, actor=actor, case_id=case_id)  # 404 for the case first
    raise AttachmentNotFound(f"案件 {case_id} 没有编号为 {attachment_id} 的照片", case_id=case_id,
                             attachment_id=attachment_id)  # fmt: skip


# --- deadlines (the worker) -------------------------------------------------------------


# What a deadline is for, in the notes of the steps the worker signs.
_DEADLINE_STEP = {"accept": action_name("accept"), "resolve": "办结"}


def _note_lateness(w: _Writes, *, now: datetime) -> None:
    """If the deadline the case waits for has passed, and this deadline is not on record yet,
    record it: a `case_lateness` row, the case's count, and a signed `deadline_missed` step,
    written before whatever happens next (the worker's escalation, or a person's step that
    came first). docs/statistics.md says how lateness is measured from these."""
    case = w.case
    if case["state"] in WAITING_FOR_ACCEPT:
        which = "accept"
    elif case["state"] in WAITING_FOR_RESOLVE:
        which = "resolve"
    else:
        return
    due = case[which + "_by"]
    if due is None or due > now or which in (case.get("late_steps") or ()):
        return
    w.values["late_count"] = (case.get("late_count") or 0) + 1
    w.values["first_late_at"] = case.get("first_late_at") or due
    w.lateness.append({"case_id": w.case_id, "county_code": case["county_code"], "deadline_no": case["deadline_no"], "step": which, "tier": case["tier"],
                       "due_at": due, "noticed_at": now})  # fmt: skip
    w.event(actor=SYSTEM, action="deadline_missed", from_state=case["state"], to_state=case["state"], at=now,
            note=f"未在 {people_time.for_person(due)} 前{_DEADLINE_STEP[which]}（{action_name('deadline_missed')}）",
            extra={"deadline_no": case["deadline_no"], "step": which, "tier": case["tier"],
                   "due_at": due.isoformat()})  # fmt: skip


@dataclass
class SweepResult:
    escalated: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)  # late at the county centre: reminded, not escalated


async def sweep(*, conn: Conn, now: datetime, signer: Signer, rooms: Rooms, batch: int = 200) -> SweepResult:
    """Warn before deadlines and escalate at them, in one transaction. Rows are locked
    with SKIP LOCKED, so two workers never handle the same case, and a case escalates
    once per deadline (escalation sets new deadlines)."""
    result = SweepResult()
    async with conn.pipeline(), conn.transaction():
        for case in await repo.due_for_escalation(conn, now=now, batch=batch):
            which = "accept" if case["state"] in WAITING_FOR_ACCEPT else "resolve"
            w = _Writes.for_case(case, signer)
            _note_lateness(w, now=now)  # the lateness record comes before the escalation
            if next_tier(Tier(case["tier"])) is None:  # the centre: no tier above, so remind, never loop
                await _remind_centre(conn, w, rules=_case_rules(case), which=which, at=now)
                await w.send(conn, at=now)
                result.reminded.append(w.case_id)
                continue
            w.values["state"] = State.escalated.value
            w.event(actor=SYSTEM, action="escalate", from_state=case["state"], to_state=State.escalated.value, at=now,
                    note=f"未在 {people_time.for_person(case[which + '_by'])} 前{_DEADLINE_STEP[which]}",
                    extra={"deadline_no": case["deadline_no"]})  # fmt: skip
            await _escalate(conn, w, rules=_case_rules(case), tier=Tier(case["tier"]), at=now, rooms=rooms,
                            reason=f"{_DEADLINE_STEP[which]}时限已过")  # fmt: skip
            await w.send(conn, at=now)
            result.escalated.append(w.case_id)
        for case in await repo.due_for_warning(conn, now=now, batch=batch):
            w = _Writes.for_case(case, signer)
            w.values["warned_deadline_no"] = case["deadline_no"]
            which = "accept" if case["state"] in WAITING_FOR_ACCEPT else "resolve"
            due = case[which + "_by"]
            seq = w.event(actor=SYSTEM, action="deadline_warning", from_state=case["state"], to_state=case["state"],
                          at=now, note=f"须在 {people_time.for_person(due)} 前{_DEADLINE_STEP[which]}",
                          extra={"deadline_no": case["deadline_no"]})  # fmt: skip
            holders = await repo.recipients(conn, case_id=w.case_id)
            w.notify(person_ids=[r["person_id"] for r in holders], kind="deadline_warning", seq=seq, at=now,
                     title="案件即将超期", body=f"案件 {w.case_id} 须在 {people_time.for_person(due)} 前处理")  # fmt: skip
            await w.send(conn, at=now)
            result.warned.append(w.case_id)
    return result


async def _remind_centre(conn: Conn, w: _Writes, *, rules: RuleSet, which: str, at: datetime) -> None:
    """A late case at the county centre has no tier to go up to: it stays where it is (its
    state and holders unchanged), a signed `centre_overdue` step records the lateness, and
    its holders and owning leader are told to settle it or close it lawfully (依法终结).
    The missed deadline starts again, so this happens once per deadline, not every tick."""
    case, d = w.case, rules.deadlines[Tier.county_center]
    window = d.accept_within if which == "accept" else d.resolve_within
    due = at + window
    w.values.update({f"{which}_by": due, "warn_at": due - window / 4, "deadline_no": case["deadline_no"] + 1})
    seq = w.event(actor=SYSTEM, action="centre_overdue", from_state=case["state"], to_state=case["state"], at=at,
                  note=f"未在 {people_time.for_person(case[which + '_by'])} 前{_DEADLINE_STEP[which]}；"
                  f"{tier_name(Tier.county_center)}已是最后一级，不再{action_name('escalate')}，"
                  f"请尽快化解或{action_name('terminate')}",
                  extra={"deadline_no": case["deadline_no"], "next_due": due.isoformat()})  # fmt: skip
    people = [r["person_id"] for r in await repo.recipients(conn, case_id=w.case_id)]
    if case["owner_leader_person_id"]:
        people.append(case["owner_leader_person_id"])
    w.notify(person_ids=people, kind="overdue", seq=seq, at=at, title="案件超期",
             body=f"案件 {w.case_id} 已超期：请尽快化解，或{action_name('terminate')}")  # fmt: skip


# Kinds that ask someone to act: if they cannot ring anyone, someone above must know.
FALLBACK_KINDS = ("assigned", "deadline_warning", "overdue", "unreachable")


async def notify_next_up(
    *, conn: Conn, notification: Mapping[str, Any], reason: str, now: datetime, signer: Signer,
    fold_window: timedelta = timedelta(hours=24),
) -> int | None:  # fmt: skip
    """No silent dead end: the notification's person has no reachable phone, so the next
    chief up the case's chain is notified, and the case ledger records it (signed).
    Runs inside the caller's transaction.

    "Next up" is the first node above the deepest node of the chain where the person
    holds a post (above the handling node if they hold none there, e.g. a mediator).
    Returns the person notified, or None (no case, a progress note, nobody above, or a
    repeat folded into the person's open run; the last two are still recorded).

    Repeats fold: the first failure opens a run for (case, person), with its signed event
    and the chief's notice. Later ones within `fold_window` of it are only counted; the
    count goes on the ledger in one event when the run ends (`_Writes.end_run`): at the
    case's next step, when a notice reaches the person (`reached`), or at the first
    failure after the window, which then opens a new run."""
    if notification.get("case_id") is None or notification["kind"] not in FALLBACK_KINDS:
        return None
    case = await repo.case_for_action(conn, case_id=notification["case_id"], person_id=notification["person_id"])
    if case is None:
        return None
    pid = notification["person_id"]
    w = _Writes.for_case(case, signer)
    run = next((r for r in w.runs if r["person_id"] == pid), None)
    if run is not None:
        if now - datetime.fromisoformat(run["opened_at"]) < fold_window:
            await repo.fold_unreachable(conn, case_id=case["id"], person_id=pid, notification_id=notification["id"],
                                        at=now)  # fmt: skip
            return None
        w.end_run(run, at=now, ended_by="window")
    chain = await _chain(conn, case["handling_node_id"])  # the handling node first, the county last
    held = [i for i, link in enumerate(chain) if any(h.person_id == pid for h in link.chiefs)]
    start = held[0] + 1 if held else 1
    target: tuple[int, str] | None = None
    for link in chain[start:]:
        chief = next((h for h in link.chiefs if h.role == "chief" and h.person_id != pid), None)
        if chief is not None:
            target = (chief.person_id, link.code)
            break
    note = f"人员 {pid} 的手机收不到推送（{unreachable_reason(reason)}）；" + (
        f"已提醒 {target[1]} 的负责人" if target else "上面已没有可提醒的人"
    )
    seq = w.event(
        actor=SYSTEM, action="push_unreachable", from_state=case["state"], to_state=case["state"], at=now, note=note,
        extra={"notification_id": notification["id"], "unreachable_person_id": pid,
               "notified_person_id": target[0] if target else None, "node_code": target[1] if target else None,
               "count": 1},
    )  # fmt: skip
    if target is not None:
        w.notify(person_ids=[target[0]], kind="unreachable", seq=seq, at=now, title="下级收不到提醒，请跟进",
                 body=f"案件 {case['id']}：{case['handling_node_name']} 的责任人手机收不到推送，请联系跟进")  # fmt: skip
    await w.send(conn, at=now)
    await repo.open_unreachable_run(conn, case_id=case["id"], county_code=case["county_code"], person_id=pid, opened_seq=seq, at=now,
                                    notified_person_id=target[0] if target else None)  # fmt: skip
    return target[0] if target else None


async def open_unreachable_runs(*, conn: Conn, person_ids: Sequence[int]) -> set[tuple[int, int]]:
    """(case_id, person_id) of these people's open runs of push failures."""
    return await repo.unreachable_runs_of(conn, person_ids=person_ids) if person_ids else set()


async def reached(*, conn: Conn, case_id: int, person_id: int, now: datetime, signer: Signer) -> None:
    """A notice on the case reached the person: their run of failures there ends, and its
    count goes on the ledger (signed). Runs inside the caller's transaction."""
    case = await repo.case_for_action(conn, case_id=case_id, person_id=person_id)
    if case is None:
        return
    w = _Writes.for_case(case, signer)
    for run in [r for r in w.runs if r["person_id"] == person_id]:
        w.end_run(run, at=now, ended_by="delivered")
    await w.send(conn, at=now)


# --- the reporter's own cases ---------------------------------------------------------


async def my_reports(*, conn: Conn, person_id: int, now: datetime, before_id: int | None,
                     limit: int) -> tuple[list[Row], int | None]:  # fmt: skip
    """A page of the person's own reports, newest first, and the cursor of the next page."""
    rows = await repo.my_reports(conn, person_id=person_id, now=now, before_id=before_id, limit=limit + 1)
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


# --- the inbox -------------------------------------------------------------------------


async def inbox(
    *, conn: Conn, county: str, person_id: int, before: int | None, limit: int
) -> tuple[list[Row], int | None]:
    """A page of the person's notifications, newest first, and the cursor of the next page."""
    rows = await repo.inbox(conn, county=county, person_id=person_id, before=before, limit=limit + 1)
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


async def mark_read(*, conn: Conn, county: str, person_id: int, ids: Sequence[int], now: datetime) -> int:
    return await repo.mark_read(conn, county=county, person_id=person_id, ids=ids, at=now)


async def categories(*, conn: Conn) -> list[Row]:
    return await repo.categories(conn)
