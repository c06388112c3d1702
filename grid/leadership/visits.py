"""坐班接访: a walk-in visit at the county's reception hall becomes a case held by the
day's duty leader, who then decides what becomes of it.

A visit is registered by the reception staff: the visitor (a party of the case), the
matter, its category, and where it happened (a point, or a chosen node). The case is
located there, so the grid's tiers can take it later, but it is held at the county
centre's tier on the county node, since the reception hall is the centre's; its only
holder is the duty leader (role `leader` among the holders). Its source is `visit`.

The duty leader's four decisions (`DECISIONS`), the only actions they are offered while
the visit waits for them (grid.cases.service.allowed_for):
- `settle` (当场化解): resolved on the spot, with the result as its agreement; the usual
  return visit and close follow (closing still needs the six sections filed);
- `route_to_tier` (交办网格): routed into the grid's tiers at the visit's place, like an
  escalation or a reopening (the leader no longer holds it);
- `assign_unit` (交办部门): a department becomes its owning unit (责任单位) and its staff
  hold it at the centre's tier; the case is not marked hard (no leader owns it);
- `take_ownership` (包案): the duty leader owns it, with a unit they name
  (grid.leadership.ownership.own_case); what an owner does next is that module's.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from geo.crs import CRS, to_wgs84
from grid import people_time
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.catalogue import SEVERITIES
from grid.cases.enums import Outcome, State, Tier
from grid.cases.exceptions import IdempotencyConflict, IllegalAction, MissingFields, NotResponsible
from grid.cases.ledger import Signer, canonical
from grid.cases.routing import RuleSet, route_to_tier
from grid.db import Conn, ReadAudit, fetch_one
from grid.exceptions import InvalidInput, OutsideJurisdiction
from grid.glossary import TIER_NAMES, VISIT_DECISION_NAMES, action_name, role_name, word
from grid.leadership import repository as repo
from grid.leadership.departments import by_code
from grid.leadership.duty import NoDutyLeader, today
from grid.leadership.models import VISIT_ACTIONS
from grid.leadership.ownership import Unit, own_case
from grid.locate import build_location
from grid.repository import nodes as node_sql

# The action the duty leader takes, and the decision it records (case_visit.decision).
DECISIONS = dict(zip(VISIT_ACTIONS, ("settle", "route", "unit", "own"), strict=True))
VISITOR_ROLE = "来访人"  # the visitor's role among the case's parties


@dataclass(frozen=True)
class Visit:
    visitor_name: str
    visitor_phone: str | None
    category: str
    severity: int
    description: str
    lon: float | None = None
    lat: float | None = None
    crs: CRS = CRS.wgs84
    node_code: str | None = None

    def fingerprint(self) -> str:
        """Same visit, same fingerprint: how a retry is told from a key reused."""
        body = asdict(self)
        body["crs"] = str(self.crs)
        return hashlib.sha256(canonical({"visit": body})).hexdigest()


async def _place(conn: Conn, visit: Visit, county_code: str) -> tuple[float, float, float, float, Any]:
    """(lon, lat as given, lon, lat in WGS-84, the located chain) of the visit's place."""
    if (visit.node_code is None) == (visit.lon is None or visit.lat is None):
        raise InvalidInput("请给出事发地点：坐标（lon、lat，可加 crs）或网格节点编码（node_code），二选一",
                           node_code=visit.node_code, lon=visit.lon, lat=visit.lat)  # fmt: skip
    if visit.node_code is not None:
        node = await repo.node_point(conn, code=visit.node_code, county_code=county_code)
        if node is None:
            raise InvalidInput(f"没有编码为“{visit.node_code}”的网格节点（或它没有边界），请核对编码",
                               node_code=visit.node_code)  # fmt: skip
        chain = await cases._chain(conn, node["id"])
        return node["lon"], node["lat"], node["lon"], node["lat"], chain
    assert visit.lon is not None and visit.lat is not None
    lon, lat = to_wgs84(visit.lon, visit.lat, visit.crs)
    rows = await node_sql.locate_rows(conn, lon=lon, lat=lat, floor=None, county=county_code)
    location = build_location(rows, floor=None)
    if location is None:
        raise OutsideJurisdiction(
            f"位置 ({visit.lon:.6f}, {visit.lat:.6f}, {visit.crs}) 不在本县范围内；请核对坐标，或改为选择网格节点（node_code）",
            lon=visit.lon, lat=visit.lat,
        )  # fmt: skip
    return visit.lon, visit.lat, lon, lat, location.chain


async def register_visit(
    *, conn: Conn, actor: cases.Actor, key: UUID, visit: Visit, now: datetime, signer: Signer, county_code: str,
    audit: ReadAudit | None = None,
) -> cases.Outcome:  # fmt: skip
    """A walk-in visit: a case held by the day's duty leader, in one transaction;
    idempotent per key like a report (the same key and visit give the same case)."""
    if visit.severity not in SEVERITIES:
        raise InvalidInput(f"严重程度（severity）应为 1 到 4，收到的是 {visit.severity}", severity=visit.severity)
    fingerprint = visit.fingerprint()
    async with conn.transaction():
        existing = await case_sql.find_by_key(conn, reporter_person_id=actor.person_id, key=key)
        if existing is not None:
            return await _same_or_conflict(conn, actor, existing, fingerprint, audit)
        if await fetch_one(conn, case_sql.CATEGORY_ACTIVE_SQL, {"category": visit.category}) is None:
            names = "、".join(f"{c['name_zh']}（{c['code']}）" for c in await case_sql.categories(conn))
            raise InvalidInput(f"不认识的类别“{visit.category}”；可选：{names}", category=visit.category)
        on = today(now)
        duty = await repo.duty_days(conn, county_code=county_code, first=on, last=on)
        if not duty:
            raise NoDutyLeader(f"今天（{on.isoformat()}）没有安排坐班领导，无法登记来访；请先由信访局在坐班表中填写今天的坐班领导",
                               day=on.isoformat())  # fmt: skip
        leader = duty[0]
        lon_given, lat_given, lon, lat, chain = await _place(conn, visit, county_code)
        active = await fetch_one(conn, case_sql.ACTIVE_RULES_SQL)
        assert active is not None, "no active routing rule set: run the migrations"
        rules = RuleSet.from_json(active["version"], active["rules"])
        route = replace(route_to_tier(rules, tier=Tier.county_center, chain=chain), flags=("visit",))
        deadlines = cases._deadlines(rules, route.tier, now)
        case_id = await case_sql.insert_case(conn, row={**cases._assignment(route, deadlines, deadline_no=1),
            "county_code": county_code, "reporter_person_id": actor.person_id, "idempotency_key": key,
            "request_hash": fingerprint, "category": visit.category, "severity": visit.severity,
            "description": visit.description, "crs": str(visit.crs if visit.node_code is None else CRS.wgs84),
            "lon_reported": lon_given, "lat_reported": lat_given, "accuracy_m": None, "floor": None, "lon": lon,
            "lat": lat, "located_node_id": chain[0].id, "outside_county": False, "rule_version": rules.version,
            "route_flags": list(route.flags), "occurred_at": None, "client_recorded_at": None, "reported_at": now,
        })  # fmt: skip
        if case_id is None:  # a concurrent retry with the same key committed first
            again = await case_sql.find_by_key(conn, reporter_person_id=actor.person_id, key=key)
            assert again is not None
            return await _same_or_conflict(conn, actor, again, fingerprint, audit)
        w = cases._Writes.for_case({"id": case_id, "county_code": county_code, "deadline_no": 0}, signer)
        w.new_case = True
        w.values["source"] = "visit"
        w.event(actor=actor.person_id, action="register_visit", from_state=None, to_state=State.reported.value, at=now,
                note=visit.description,
                extra={"category": visit.category, "severity": visit.severity, "lon": lon, "lat": lat,
                       "located_node_code": chain[0].code, "duty_day": on.isoformat(),
                       "duty_leader_person_id": leader["leader_person_id"]})  # fmt: skip
        cases._record_assignment(w, route=route, people=[(leader["leader_person_id"], "leader")], deadlines=deadlines,
                                 at=now, from_state=State.reported.value, marks_hard=False,
                                 reason=f"坐班接访：由今天的坐班领导 {leader['leader_name']} 接访")  # fmt: skip
        await case_sql.insert_parties(conn, case_id=case_id, county_code=county_code, parties=[
            {"name": visit.visitor_name, "phone": visit.visitor_phone, "role": VISITOR_ROLE}])  # fmt: skip
        await repo.insert_visit(conn, case_id=case_id, county_code=county_code, visited_on=on,
                                leader_person_id=leader["leader_person_id"])  # fmt: skip
        await w.send(conn, at=now)
        case = await cases._detail(conn, actor=actor, case_id=case_id, audit=audit)
        assert case is not None
        return cases.Outcome(case=case, created=True)


async def _same_or_conflict(conn: Conn, actor: cases.Actor, existing: Any, fingerprint: str,
                            audit: ReadAudit | None) -> cases.Outcome:  # fmt: skip
    if existing["request_hash"] != fingerprint:
        raise IdempotencyConflict("这个 Idempotency-Key 已用于另一次来访登记；新的来访请换一个新的 Idempotency-Key",
                                  case_id=existing["id"])  # fmt: skip
    case = await cases._detail(conn, actor=actor, case_id=existing["id"], audit=audit)
    assert case is not None  # the reception desk may always read the visits it registered
    return cases.Outcome(case=case, created=False)


# --- the duty leader's decision ------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: str  # one of VISIT_ACTIONS
    note: str | None = None
    agreement_text: str | None = None  # settle: the result agreed on the spot
    tier: str | None = None  # route_to_tier
    department_code: str | None = None  # assign_unit; take_ownership (or township_code)
    township_code: str | None = None  # take_ownership


def _needs(decision: Decision) -> list[str]:
    given = asdict(decision)
    needed = {"settle": ("agreement_text",), "route_to_tier": ("tier",), "assign_unit": ("department_code",),
              "take_ownership": ()}[decision.action]  # fmt: skip
    return [f for f in needed if given.get(f) in (None, "")]


async def decide(
    *, conn: Conn, actor: cases.Actor, case_id: int, decision: Decision, now: datetime, signer: Signer,
    rooms: cases.Rooms,
) -> None:  # fmt: skip
    """The duty leader's decision on a visit waiting for them: checked, applied, signed."""
    if decision.action not in DECISIONS:
        names = "、".join(f"{action_name(a)}（{a}）" for a in VISIT_ACTIONS)
        raise InvalidInput(f"不认识的处理方式“{decision.action}”；可选：{names}", action=decision.action)
    async with conn.transaction():
        case = await cases._locked_for_actor(conn, actor=actor, case_id=case_id, may=lambda a, c: True)
        visit = await repo.visit_of(conn, case_id=case_id)
        if visit is None or visit["leader_person_id"] != actor.person_id:
            raise NotResponsible(f"案件 {case_id} 不是由你坐班接访的来访；只有接访的坐班{role_name('leader')}可以这样处理",
                                 case_id=case_id)  # fmt: skip
        if visit["decision"] is not None or case["state"] != State.assigned:
            done = word(VISIT_DECISION_NAMES, visit["decision"]) if visit["decision"] else case["state"]
            raise IllegalAction(f"这次来访已经处理过（{done}），不能再{action_name(decision.action)}",
                                case_id=case_id, decision=visit["decision"])  # fmt: skip
        missing = _needs(decision)
        if missing:
            raise MissingFields(f"{action_name(decision.action)}须填写：{'、'.join(missing)}", missing=missing)
        if decision.action == "take_ownership":
            unit = Unit(department_code=decision.department_code, township_code=decision.township_code)
            await own_case(conn=conn, case_id=case_id, by_person_id=actor.person_id, leader_person_id=actor.person_id,
                           unit=unit, now=now, signer=signer, note=decision.note)  # fmt: skip
        else:
            w = cases._Writes.for_case(case, signer)
            if decision.action == "settle":
                await _settle(w, actor=actor, decision=decision, now=now)
            elif decision.action == "route_to_tier":
                await _route(conn, w, actor=actor, decision=decision, now=now, rooms=rooms)
            else:
                await _to_unit(conn, w, actor=actor, decision=decision, now=now)
            await w.send(conn, at=now)
        await repo.decide_visit(conn, case_id=case_id, decision=DECISIONS[decision.action], at=now)


async def _settle(w: cases._Writes, *, actor: cases.Actor, decision: Decision, now: datetime) -> None:
    w.values.update(state=State.resolved.value, outcome=Outcome.agreement.value,
                    agreement_text=decision.agreement_text)  # fmt: skip
    seq = w.event(actor=actor.person_id, action="settle", from_state=State.assigned.value,
                  to_state=State.resolved.value, at=now, note=decision.note or decision.agreement_text,
                  extra={"agreement_text": decision.agreement_text})  # fmt: skip
    w.tell(action="resolve", seq=seq, people={w.case["reporter_person_id"]: cases.REPORTER}, actor=actor.person_id)


async def _route(conn: Conn, w: cases._Writes, *, actor: cases.Actor, decision: Decision, now: datetime,
                 rooms: cases.Rooms) -> None:  # fmt: skip
    try:
        tier = Tier(str(decision.tier))
    except ValueError:
        names = "、".join(f"{name}（{code}）" for code, name in TIER_NAMES.items())
        raise InvalidInput(f"不认识的层级“{decision.tier}”；可选：{names}", tier=decision.tier) from None
    rules = cases._case_rules(w.case)
    route = await cases._route_at(conn, w.case, tier=tier, rules=rules)
    w.event(actor=actor.person_id, action="route_to_tier", from_state=State.assigned.value,
            to_state=State.assigned.value, at=now, note=decision.note, extra={"tier": tier.value})  # fmt: skip
    await cases._assign(conn, w, route=route, rules=rules, at=now, from_state=State.assigned.value, rooms=rooms,
                        reason=f"坐班领导{action_name('route_to_tier')}：{decision.note or ''}".rstrip("："))  # fmt: skip


async def _to_unit(conn: Conn, w: cases._Writes, *, actor: cases.Actor, decision: Decision, now: datetime) -> None:
    department = await by_code(conn=conn, county_code=w.case["county_code"], code=str(decision.department_code))
    staff = await repo.department_staff(conn, department_id=department["id"])
    if not staff:
        raise InvalidInput(f"{department['name']}还没有{role_name('department_staff')}账号，无法交办；"
                           "请先由管理员开通，或选择其他部门", department=department["code"])  # fmt: skip
    rules = cases._case_rules(w.case)
    deadlines = cases._deadlines(rules, Tier(w.case["tier"]), now)
    w.values.update(deadlines, state=State.assigned.value, deadline_no=w.case["deadline_no"] + 1)
    w.recipients = [(pid, "staff") for pid in staff]
    seq = w.event(actor=actor.person_id, action="assign_unit", from_state=State.assigned.value,
                  to_state=State.assigned.value, at=now, note=decision.note,
                  extra={"department": {"code": department["code"], "name": department["name"]},
                         "recipients": staff})  # fmt: skip
    w.notify(person_ids=staff, kind="assigned", seq=seq, at=now, title=f"新的来访交办（{department['name']}）",
             body=f"案件 {w.case_id}：坐班领导交办{department['name']}，请在 "
                  f"{people_time.for_person(deadlines['accept_by'])} 前受理")  # fmt: skip
    await repo.set_owner_unit(conn, case_id=w.case_id, county_code=w.case["county_code"],
                              department_id=department["id"], node_id=None,
                              person_id=actor.person_id, at=now)  # fmt: skip
