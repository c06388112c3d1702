"""Case use cases: report, act, sweep deadlines, read the ledger.

One report or one action is one transaction: the case row, its ledger event(s) and
its notification rows (the outbox) are written together, so a crash loses nothing
half-done. The caller passes `now` (server time; the worker's clock is injectable)
and commits at the boundary.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from geo.crs import CRS, to_wgs84
from grid import case_repository as repo
from grid import repository as grid_repo
from grid.case_exceptions import CaseNotFound, IdempotencyConflict, IllegalAction, MissingFields, NotResponsible
from grid.catalogue import SEVERITIES
from grid.exceptions import InvalidInput, NodeNotFound, OutsideJurisdiction
from grid.ledger import GENESIS, Signer, StoredEvent, canonical, chain_hash, verify
from grid.locate import Link, build_location, group_rows
from grid.routing import TIER_ORDER, Route, RuleSet, Tier, decide, next_tier, route_to_tier
from grid.workflow import IllegalTransition, State, allowed_actions, missing_fields, next_state

SECTIONS = ("investigation", "facts", "policy", "reasoning", "disposition", "return_visit")
# A phone clock this far ahead of ours is wrong; its times are kept but flagged.
CLOCK_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Actor:
    """Who acts, in the grid's terms (built from the logged-in principal by app/)."""

    person_id: int
    # ltree paths whose subtrees the actor may read (posts and data-scoped grants).
    read_paths: tuple[str, ...] = ()
    # ltree paths where the actor may act on any case as dispatcher or mediator.
    act_paths: tuple[str, ...] = ()


SYSTEM = None  # actor_person_id of steps the server takes by itself (routing, deadlines)


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
    case: RowMapping
    created: bool = False
    events: list[str] = field(default_factory=list)


def _under(path: str | None, roots: Sequence[str]) -> bool:
    return bool(path) and any(path == r or path.startswith(r + ".") for r in roots)


def can_read(session: Session, actor: Actor, case: Mapping[str, Any]) -> bool:
    return (
        case["reporter_person_id"] == actor.person_id
        or _under(case["handling_path"], actor.read_paths)
        or _under(case["located_path"], actor.read_paths)
        or repo.is_recipient(session, case_id=case["id"], person_id=actor.person_id)
    )


def can_act(session: Session, actor: Actor, case: Mapping[str, Any]) -> bool:
    """The responsible post holders, or a dispatcher or mediator in scope, may act."""
    return _under(case["handling_path"], actor.act_paths) or repo.is_recipient(
        session, case_id=case["id"], person_id=actor.person_id
    )


def load_rules(session: Session, version: int | None = None) -> RuleSet:
    row = repo.active_rules(session) if version is None else repo.rules_by_version(session, version=version)
    return RuleSet.from_json(row["version"], row["rules"])


def _chain(session: Session, node_id: int) -> list[Link]:
    ancestors, _ = group_rows(grid_repo.chain_of_node(session, node_id=node_id))
    return ancestors


def _deadlines(rules: RuleSet, tier: Tier, at: datetime) -> dict[str, Any]:
    d = rules.deadlines[tier]
    accept_by, resolve_by = at + d.accept_within, at + d.resolve_within
    # Warn in the last quarter of the accept window, then of the resolve window.
    warn_at = accept_by - d.accept_within / 4
    return {"accept_by": accept_by, "resolve_by": resolve_by, "warn_at": warn_at}


def _append_event(
    session: Session,
    *,
    case_id: int,
    actor: int | None,
    action: str,
    from_state: str | None,
    to_state: str,
    at: datetime,
    signer: Signer,
    note: str | None = None,
    attachment_hashes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> int:
    last = repo.last_event(session, case_id=case_id)
    seq, prev = (1, GENESIS) if last is None else (last["seq"] + 1, last["hash"])
    body = {
        "case_id": case_id, "seq": seq, "actor_person_id": actor, "action": action,
        "from_state": from_state, "to_state": to_state, "note": note,
        "attachment_hashes": list(attachment_hashes), "at": at.isoformat(), **(extra or {}),
    }  # fmt: skip
    digest = chain_hash(prev, body)
    repo.insert_event(session, row={
        "case_id": case_id, "seq": seq, "actor_person_id": actor, "action": action, "from_state": from_state,
        "to_state": to_state, "note": note, "attachment_hashes": list(attachment_hashes),
        "body": canonical(body).decode(), "prev_hash": prev, "hash": digest, "signature": signer.sign(digest),
        "created_at": at,
    })  # fmt: skip
    return seq


def _notify(
    session: Session, *, case: Mapping[str, Any], person_ids: Sequence[int], kind: str, seq: int, at: datetime,
    title: str, body: str,
) -> None:  # fmt: skip
    """Outbox rows, one per person, in the same transaction as the decision.

    Titles and bodies carry no party's personal data: they pass through push services.
    """
    repo.insert_notifications(session, rows=[
        {"county_code": case["county_code"], "person_id": pid, "case_id": case["id"], "kind": kind,
         "title": title, "body": body, "dedupe_key": f"case:{case['id']}:{seq}:{kind}:{pid}", "created_at": at}
        for pid in dict.fromkeys(person_ids)
    ])  # fmt: skip


def _assign(
    session: Session, *, case_id: int, route: Route, rules: RuleSet, at: datetime, signer: Signer,
    from_state: str, reason: str,
) -> None:  # fmt: skip
    """The server hands the case to the route's holders, with fresh deadlines."""
    node_id = grid_repo.node_id_by_code(session, code=route.node_code)
    case = repo.get_case(session, case_id=case_id)
    assert case is not None and node_id is not None
    repo.update_case(session, case_id=case_id, values={
        "state": State.assigned.value, "tier": route.tier.value, "handling_node_id": node_id,
        "deadline_no": case["deadline_no"] + 1, **_deadlines(rules, route.tier, at),
    })  # fmt: skip
    people = [(h.person_id, h.role) for h in route.recipients]
    if route.tier is not Tier.chief:  # a mediation room: its members too, beside the node's chiefs
        people += [(pid, "mediator") for pid in repo.mediators(session, tier=route.tier.value, node_id=node_id)]
    people = list(dict.fromkeys(people))
    repo.replace_recipients(session, case_id=case_id, recipients=people, at=at)
    seq = _append_event(
        session, case_id=case_id, actor=SYSTEM, action="assign", from_state=from_state, to_state="assigned",
        at=at, signer=signer, note=reason,
        extra={"tier": route.tier.value, "node_code": route.node_code,
               "recipients": [pid for pid, _ in people], "flags": list(route.flags)},
    )  # fmt: skip
    case = repo.get_case(session, case_id=case_id)
    _notify(session, case=case, person_ids=[pid for pid, _ in people], kind="assigned", seq=seq, at=at,
            title=f"新的矛盾纠纷待处理（{route.tier.name_zh}）",
            body=f"案件 {case_id}：{case['handling_node_name']}，请在 {_hm(case['accept_by'])} 前受理")  # fmt: skip


def _hm(at: datetime | None) -> str:
    return at.strftime("%m-%d %H:%M") if at else "-"


def submit_report(
    *, session: Session, actor: Actor, key: UUID, report: Report, now: datetime, signer: Signer, county_code: str,
) -> Outcome:  # fmt: skip
    """A chief's report: located, routed, assigned, recorded, notified; idempotent per key."""
    fingerprint = report.fingerprint()
    existing = repo.find_by_key(session, reporter_person_id=actor.person_id, key=key)
    if existing is not None:
        return _same_or_conflict(existing, fingerprint)
    if report.severity not in SEVERITIES:
        raise InvalidInput(f"severity must be 1 to 4, not {report.severity}", severity=report.severity)
    if not repo.category_exists(session, code=report.category):
        known = ", ".join(c["code"] for c in repo.categories(session))
        raise InvalidInput(f"unknown category {report.category!r}; categories are {known}", category=report.category)
    lon, lat = to_wgs84(report.lon, report.lat, report.crs)
    location = build_location(grid_repo.locate_rows(session, lon=lon, lat=lat, with_floors=report.floor is not None),
                              floor=report.floor)  # fmt: skip
    flags: list[str] = []
    if location is not None:
        chain, located_id, outside = location.chain, location.node.id, False
    else:
        # Outside every polygon: the reporter's own post answers, and the case says so.
        own = grid_repo.deepest_current_post_node(session, person_id=actor.person_id)
        if own is None:
            raise OutsideJurisdiction(
                f"The point ({report.lon:.6f}, {report.lat:.6f}, {report.crs}) is outside the county, and you hold "
                "no post it could fall back to. Check the phone's location and its crs (gcj02 for AMap/Tencent).",
                lon=report.lon, lat=report.lat,
            )  # fmt: skip
        chain, located_id, outside = _chain(session, own), None, True
    occurred_at = report.occurred_at
    if report.client_recorded_at and report.client_recorded_at > now + CLOCK_TOLERANCE:
        flags.append("client_clock_ahead")
    if occurred_at and occurred_at > now + CLOCK_TOLERANCE:
        flags.append("occurred_at_in_future")
        occurred_at = now  # the server's time is authoritative
    rules = load_rules(session)
    route = decide(rules, category=report.category, severity=report.severity, chain=chain, outside_county=outside)
    handling_id = grid_repo.node_id_by_code(session, code=route.node_code)
    case_id = repo.insert_case(session, row={
        "county_code": county_code, "reporter_person_id": actor.person_id, "idempotency_key": key,
        "request_hash": fingerprint, "category": report.category, "severity": report.severity,
        "description": report.description, "crs": str(report.crs), "lon_reported": report.lon,
        "lat_reported": report.lat, "accuracy_m": report.accuracy_m, "floor": report.floor, "lon": lon, "lat": lat,
        "located_node_id": located_id, "outside_county": outside, "tier": route.tier.value,
        "handling_node_id": handling_id, "rule_version": rules.version, "route_flags": [*route.flags, *flags],
        "occurred_at": occurred_at, "client_recorded_at": report.client_recorded_at, "reported_at": now,
    })  # fmt: skip
    if case_id is None:  # a concurrent retry with the same key committed first
        existing = repo.find_by_key(session, reporter_person_id=actor.person_id, key=key)
        assert existing is not None
        return _same_or_conflict(existing, fingerprint)
    repo.insert_parties(session, case_id=case_id, parties=[asdict(p) for p in report.parties])
    _append_event(session, case_id=case_id, actor=actor.person_id, action="report", from_state=None,
                  to_state="reported", at=now, signer=signer, note=report.description,
                  extra={"category": report.category, "severity": report.severity, "lon": lon, "lat": lat,
                         "rule_version": rules.version, "flags": [*route.flags, *flags]})  # fmt: skip
    _assign(session, case_id=case_id, route=route, rules=rules, at=now, signer=signer, from_state="reported",
            reason=f"routing rule {route.rule_index + 1} of version {rules.version}")  # fmt: skip
    case = repo.get_case(session, case_id=case_id)
    assert case is not None
    return Outcome(case=case, created=True)


def _same_or_conflict(existing: RowMapping, fingerprint: str) -> Outcome:
    if existing["request_hash"] != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different report; make a new key for a new report",
            case_id=existing["id"],
        )
    return Outcome(case=existing, created=False)


def get_case(*, session: Session, actor: Actor, case_id: int) -> RowMapping:
    case = repo.get_case(session, case_id=case_id)
    if case is None or not can_read(session, actor, case):
        raise CaseNotFound(f"no case {case_id} in your area", case_id=case_id)
    return case


def act(
    *, session: Session, actor: Actor, case_id: int, action: str, fields: Mapping[str, Any], now: datetime,
    signer: Signer,
) -> RowMapping:  # fmt: skip
    """One step of the workflow by a person: checked, applied, recorded, notified."""
    case = repo.get_case(session, case_id=case_id, lock=True)
    if case is None:
        raise CaseNotFound(f"no case {case_id}", case_id=case_id)
    if not can_act(session, actor, case):
        # Out-of-scope writes are refused (403), in or out of the caller's reading scope.
        raise NotResponsible(
            f"case {case_id} is handled by {case['handling_node_name']}; only its responsible posts, or a "
            "dispatcher or mediator over it, may act on it", case_id=case_id,
        )  # fmt: skip
    state = State(case["state"])
    try:
        to_state = next_state(state, action)
    except IllegalTransition as exc:
        raise IllegalAction(str(exc), state=state.value, allowed=list(exc.allowed)) from None
    missing = missing_fields(action, dict(fields))
    if missing:
        raise MissingFields(f"'{action}' needs: {', '.join(missing)}", missing=missing)
    note = fields.get("note")
    rules = load_rules(session, case["rule_version"])
    tier = Tier(case["tier"])
    values: dict[str, Any] = {"state": to_state.value}
    extra: dict[str, Any] = {}
    if action == "resolve":
        values.update(outcome="agreement", agreement_text=fields.get("agreement_text"))
    elif action == "fail":
        values.update(outcome="failed", failure_reason=note)
    elif action == "return_visit":
        satisfaction = fields.get("satisfaction")
        if satisfaction is not None and not 1 <= int(satisfaction) <= 5:
            raise InvalidInput("satisfaction is 1 (very unhappy) to 5 (very satisfied)", satisfaction=satisfaction)
        values.update(satisfaction=satisfaction)
        if note:
            repo.upsert_section(session, case_id=case_id, section="return_visit", body=note,
                                person_id=actor.person_id, at=now)  # fmt: skip
    elif action == "close":
        values.update(closed_at=now)
    elif action == "extend":
        hours = float(fields.get("hours") or 24)
        if not 0 < hours <= 24 * 30:
            raise InvalidInput("an extension is 1 hour to 30 days", hours=hours)
        target = "accept_by" if state is State.assigned else "resolve_by"
        values = {target: case[target] + timedelta(hours=hours), "warned_deadline_no": case["warned_deadline_no"],
                  "deadline_no": case["deadline_no"] + 1}  # fmt: skip
        extra = {"extended": target, "hours": hours, "approver": fields.get("approver")}
    repo.update_case(session, case_id=case_id, values=values)
    seq = _append_event(session, case_id=case_id, actor=actor.person_id, action=action, from_state=state.value,
                        to_state=to_state.value, at=now, signer=signer, note=note,
                        attachment_hashes=fields.get("attachment_hashes") or (), extra=extra)  # fmt: skip
    if action == "escalate":
        _escalate(session, case_id=case_id, rules=rules, tier=tier, at=now, signer=signer, reason=note or "escalated")
    elif action == "return":
        _return_to(session, case_id=case_id, rules=rules, tier=tier, node_code=str(fields["next_recipient"]), at=now,
                   signer=signer)  # fmt: skip
    elif action == "reopen":
        route = _route_at(session, case_id=case_id, tier=tier, rules=rules)
        _assign(session, case_id=case_id, route=route, rules=rules, at=now, signer=signer, from_state="reopened",
                reason="reopened: the resident says it is not settled")  # fmt: skip
    else:
        reporter = case["reporter_person_id"]
        _notify(session, case=case, person_ids=[reporter], kind=action, seq=seq, at=now,
                title="案件进展", body=f"案件 {case_id} 已{_ACTION_ZH.get(action, action)}")  # fmt: skip
    updated = repo.get_case(session, case_id=case_id)
    assert updated is not None
    return updated


_ACTION_ZH = {"accept": "受理", "start_mediation": "开始调解", "resolve": "调解成功", "fail": "调解未成",
              "return_visit": "回访", "close": "结案", "extend": "延期"}  # fmt: skip


def _route_at(session: Session, *, case_id: int, tier: Tier, rules: RuleSet) -> Route:
    case = repo.get_case(session, case_id=case_id)
    assert case is not None
    chain = _chain(session, case["located_node_id"] or case["handling_node_id"])
    return route_to_tier(rules, tier=tier, chain=chain, outside_county=case["outside_county"])


def _escalate(
    session: Session, *, case_id: int, rules: RuleSet, tier: Tier, at: datetime, signer: Signer, reason: str
) -> None:
    up = next_tier(tier)
    if up is None:
        # Above the county centre there are only lawful channels: record, keep, notify.
        case = repo.get_case(session, case_id=case_id)
        assert case is not None
        repo.update_case(session, case_id=case_id, values={"state": State.assigned.value})
        seq = _append_event(session, case_id=case_id, actor=SYSTEM, action="assign", from_state="escalated",
                            to_state="assigned", at=at, signer=signer,
                            note="the county centre is the last tier: lawful channels (依法终结) from here")  # fmt: skip
        _notify(session, case=case, person_ids=[r["person_id"] for r in repo.recipients(session, case_id=case_id)],
                kind="overdue", seq=seq, at=at, title="案件超期", body=f"案件 {case_id} 已超期")  # fmt: skip
        return
    route = _route_at(session, case_id=case_id, tier=up, rules=rules)
    _assign(session, case_id=case_id, route=route, rules=rules, at=at, signer=signer, from_state="escalated",
            reason=f"escalated from {tier.value} to {up.value}: {reason}")  # fmt: skip


def _return_to(
    session: Session, *, case_id: int, rules: RuleSet, tier: Tier, node_code: str, at: datetime, signer: Signer
) -> None:
    node_id = grid_repo.node_id_by_code(session, code=node_code)
    if node_id is None:
        raise NodeNotFound(f"next_recipient {node_code!r} is not a node code", code=node_code)
    chain = _chain(session, node_id)
    holder = chain[0]
    if not any(h.role == "chief" for h in holder.chiefs):
        raise InvalidInput(f"{node_code} has no current chief to take the case; name another node", code=node_code)
    route = Route(tier=tier, node_code=holder.code, node_level=holder.level,
                  recipients=tuple(sorted(holder.chiefs, key=lambda h: h.role != "chief")),
                  rule_version=rules.version, rule_index=-1, flags=("returned",))  # fmt: skip
    _assign(session, case_id=case_id, route=route, rules=rules, at=at, signer=signer, from_state="returned",
            reason=f"returned (退回) to {node_code}")  # fmt: skip


@dataclass
class SweepResult:
    escalated: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)


def sweep(*, session: Session, now: datetime, signer: Signer, batch: int = 200) -> SweepResult:
    """Warn before deadlines and escalate at them. Rows are locked with SKIP LOCKED,
    so two workers never handle the same case, and a case escalates once per deadline
    (escalation sets new deadlines)."""
    result = SweepResult()
    for case_id in repo.due_for_escalation(session, now=now, batch=batch):
        case = repo.get_case(session, case_id=case_id)
        assert case is not None
        state = State(case["state"])
        which = "accept" if state in (State.reported, State.assigned, State.escalated, State.returned, State.reopened) else "resolve"
        repo.update_case(session, case_id=case_id, values={"state": State.escalated.value})
        _append_event(session, case_id=case_id, actor=SYSTEM, action="escalate", from_state=state.value,
                      to_state="escalated", at=now, signer=signer,
                      note=f"not {which}ed by the deadline ({case[which + '_by'].isoformat()})",
                      extra={"deadline_no": case["deadline_no"]})  # fmt: skip
        _escalate(session, case_id=case_id, rules=load_rules(session, case["rule_version"]), tier=Tier(case["tier"]),
                  at=now, signer=signer, reason=f"{which} deadline passed")  # fmt: skip
        result.escalated.append(case_id)
    for case_id in repo.due_for_warning(session, now=now, batch=batch):
        case = repo.get_case(session, case_id=case_id)
        assert case is not None
        repo.update_case(session, case_id=case_id, values={"warned_deadline_no": case["deadline_no"]})
        due = case["accept_by"] if case["state"] == "assigned" else case["resolve_by"]
        seq = _append_event(session, case_id=case_id, actor=SYSTEM, action="deadline_warning",
                            from_state=case["state"], to_state=case["state"], at=now, signer=signer,
                            note=f"due {due.isoformat()}", extra={"deadline_no": case["deadline_no"]})  # fmt: skip
        _notify(session, case=case, person_ids=[r["person_id"] for r in repo.recipients(session, case_id=case_id)],
                kind="deadline_warning", seq=seq, at=now, title="案件即将超期",
                body=f"案件 {case_id} 须在 {_hm(due)} 前处理")  # fmt: skip
        result.warned.append(case_id)
    return result


def ledger_events(*, session: Session, actor: Actor, case_id: int) -> Sequence[RowMapping]:
    get_case(session=session, actor=actor, case_id=case_id)
    return repo.events(session, case_id=case_id)


def verify_ledger(*, session: Session, case_id: int, signer: Signer) -> tuple[bool, int | None]:
    rows = repo.events(session, case_id=case_id)
    stored = [StoredEvent(r["id"], _body(r["body"]), r["prev_hash"], r["hash"], r["signature"]) for r in rows]
    return verify(stored, signer.public_key)


def _body(value: Any) -> Mapping[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def write_section(
    *, session: Session, actor: Actor, case_id: int, section: str, body: str, now: datetime, signer: Signer
) -> None:
    """One of the six public sections (六公开); every write is a signed ledger step."""
    if section not in SECTIONS:
        raise InvalidInput(f"unknown section {section!r}; sections are {', '.join(SECTIONS)}", section=section)
    case = repo.get_case(session, case_id=case_id, lock=True)
    if case is None:
        raise CaseNotFound(f"no case {case_id}", case_id=case_id)
    if not can_act(session, actor, case):
        raise NotResponsible(f"only those responsible for case {case_id} may write its file", case_id=case_id)
    repo.upsert_section(session, case_id=case_id, section=section, body=body, person_id=actor.person_id, at=now)
    _append_event(session, case_id=case_id, actor=actor.person_id, action=f"file_{section}", from_state=case["state"],
                  to_state=case["state"], at=now, signer=signer, note=body,
                  extra={"sha256": hashlib.sha256(body.encode()).hexdigest()})  # fmt: skip


def tiers_in_order() -> list[str]:
    return [t.value for t in TIER_ORDER]


def allowed_now(state: str) -> list[str]:
    return list(allowed_actions(State(state)))


def record_attachment(
    *, session: Session, case: Mapping[str, Any], person_id: int, sha256: str, now: datetime, signer: Signer
) -> None:
    """A photo joins the case; its hash goes on the ledger, so it cannot be swapped later."""
    _append_event(session, case_id=case["id"], actor=person_id, action="attach", from_state=case["state"],
                  to_state=case["state"], at=now, signer=signer, attachment_hashes=[sha256])  # fmt: skip


OPEN_FOR_TASKS = ("reported", "assigned", "accepted", "mediating", "failed", "escalated", "returned", "reopened")
# A case past the deadline of its current step: accepting, or settling once accepted.
# One rule for every view: the SQL and `is_overdue` are built from these two tuples.
LATE_IF_NOT_ACCEPTED = ("assigned",)
LATE_IF_NOT_RESOLVED = ("accepted", "mediating", "failed")
# `c` is case_file, `:now` is bound.
def _states_sql(states: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{s}'" for s in states) + ")"


OVERDUE_SQL = (f"((c.state IN {_states_sql(LATE_IF_NOT_ACCEPTED)} AND c.accept_by < :now)"
               f" OR (c.state IN {_states_sql(LATE_IF_NOT_RESOLVED)} AND c.resolve_by < :now))")  # fmt: skip


def is_overdue(case: Mapping[str, Any], now: datetime) -> bool:
    """The same rule as OVERDUE_SQL, for a case row already in hand."""
    if case["state"] in LATE_IF_NOT_ACCEPTED:
        return case["accept_by"] is not None and case["accept_by"] < now
    if case["state"] in LATE_IF_NOT_RESOLVED:
        return case["resolve_by"] is not None and case["resolve_by"] < now
    return False
OPEN_SQL = f"c.state IN {OPEN_FOR_TASKS!r}"


def scope_clause(actor: Actor) -> tuple[str, dict[str, Any]]:
    """The one read-scope rule for case queries, as SQL over `case_file c`, `node hn`
    (handling) and `node ln` (located): reporter, recipient, or a path in read scope.
    Queues, GeoJSON and case tiles all use it, so no view shows more than another."""
    recipient = "EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id AND r.person_id = :pid AND r.active)"
    sql = (f"(c.reporter_person_id = :pid OR {recipient} OR hn.path <@ CAST(:paths AS ltree[])"
           " OR ln.path <@ CAST(:paths AS ltree[]))")  # fmt: skip
    return sql, {"pid": actor.person_id, "paths": list(actor.read_paths)}


def list_cases(
    *, session: Session, actor: Actor, now: datetime, state: str | None = None, tier: str | None = None,
    node_code: str | None = None, category: str | None = None, overdue: bool | None = None,
    bbox: tuple[float, float, float, float] | None = None, mine: bool = False, open_only: bool = False,
    before_id: int | None = None, limit: int = 50,
) -> Sequence[RowMapping]:  # fmt: skip
    """Cases the actor may read, filtered. Scope is part of the WHERE clause, never a filter after."""
    scope, params = scope_clause(actor)
    params["now"] = now
    recipient = "EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id AND r.person_id = :pid AND r.active)"
    where = [scope]
    if mine:
        where.append(recipient)
    if open_only:
        where.append(OPEN_SQL)
    for column, value in (("c.state", state), ("c.tier", tier), ("c.category", category)):
        if value is not None:
            key = column.split(".")[1]
            where.append(f"{column} = :{key}")
            params[key] = value
    if node_code is not None:
        if grid_repo.node_id_by_code(session, code=node_code) is None:
            raise NodeNotFound(f"no node has the code {node_code!r}", code=node_code)
        where.append("hn.path <@ (SELECT path FROM node WHERE code = :node_code)")
        params["node_code"] = node_code
    if overdue is not None:
        where.append(OVERDUE_SQL if overdue else f"NOT {OVERDUE_SQL}")
    if bbox is not None:
        where.append("c.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if before_id is not None:
        where.append("c.id < :before_id")
        params["before_id"] = before_id
    return repo.list_cases(session, where=where, params=params, limit=limit)


# Kinds that ask someone to act: if they cannot ring anyone, someone above must know.
FALLBACK_KINDS = ("assigned", "deadline_warning", "overdue", "unreachable")


def notify_next_up(
    *, session: Session, notification: Mapping[str, Any], reason: str, now: datetime, signer: Signer
) -> int | None:
    """No silent dead end: the notification's person has no reachable phone, so the next
    chief up the case's chain is notified, and the case ledger records it (signed).

    "Next up" is the first node above the deepest node of the chain where the person
    holds a post (above the handling node if they hold none there, e.g. a mediator).
    Returns the person notified, or None (no case, a progress note, or nobody above;
    the last is still recorded)."""
    if notification.get("case_id") is None or notification["kind"] not in FALLBACK_KINDS:
        return None
    case = repo.get_case(session, case_id=notification["case_id"], lock=True)
    if case is None:
        return None
    pid = notification["person_id"]
    chain = _chain(session, case["handling_node_id"])  # the handling node first, the county last
    held = [i for i, link in enumerate(chain) if any(h.person_id == pid for h in link.chiefs)]
    start = held[0] + 1 if held else 1
    target: tuple[int, str] | None = None
    for link in chain[start:]:
        chief = next((h for h in link.chiefs if h.role == "chief" and h.person_id != pid), None)
        if chief is not None:
            target = (chief.person_id, link.code)
            break
    note = f"person {pid} cannot be reached by push ({reason}); " + (
        f"notified the chief of {target[1]}" if target else "nobody above to notify"
    )
    seq = _append_event(
        session, case_id=case["id"], actor=SYSTEM, action="push_unreachable", from_state=case["state"],
        to_state=case["state"], at=now, signer=signer, note=note,
        extra={"notification_id": notification["id"], "unreachable_person_id": pid,
               "notified_person_id": target[0] if target else None, "node_code": target[1] if target else None},
    )  # fmt: skip
    if target is None:
        return None
    _notify(session, case=case, person_ids=[target[0]], kind="unreachable", seq=seq, at=now,
            title="下级收不到提醒，请跟进",
            body=f"案件 {case['id']}：{case['handling_node_name']} 的责任人手机收不到推送，请联系跟进")  # fmt: skip
    return target[0]
