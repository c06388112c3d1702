"""Response and request shapes of the HTTP API (apart from the ORM models)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.inputs import Id, Moment
from geo.crs import CRS
from grid.cases.enums import Section, State, Tier
from grid.levels import Chain


class ErrorDetail(BaseModel):
    code: str = Field(examples=["outside_jurisdiction"])
    message: str
    details: dict[str, Any] = {}


class ErrorOut(BaseModel):
    error: ErrorDetail


class NodeRef(BaseModel):
    code: str
    name: str
    level: str


class Holder(BaseModel):
    person_id: int
    name: str
    phone: str | None
    role: Literal["chief", "deputy"]


class ChainLink(NodeRef):
    level_name: str = Field(description="the level's Chinese name, e.g. 社区")
    chain: Chain | None
    floor_from: int | None = None
    floor_to: int | None = None
    chiefs: list[Holder] = Field(description="current chief first, then deputies")


class PointOut(BaseModel):
    lon: float
    lat: float
    crs: Literal["wgs84"] = "wgs84"


class LocateOut(BaseModel):
    point: PointOut = Field(description="the point after conversion to WGS-84")
    node: NodeRef = Field(description="the deepest node covering the point")
    chain: list[ChainLink] = Field(description="deepest first, county last")
    warnings: list[str] = []


class NodeSummary(NodeRef):
    level_name: str
    chain: Literal["urban", "rural"] | None
    parent_code: str | None
    floor_from: int | None = None
    floor_to: int | None = None


class NodePage(BaseModel):
    items: list[NodeSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class NodeChildren(BaseModel):
    node: NodeRef
    items: list[NodeSummary]


class NodeProperties(NodeSummary):
    path: list[str] = Field(description="codes from the county down to this node")


class NodeFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None = Field(description="GeoJSON MultiPolygon in WGS-84; a floor shows its unit's")
    properties: NodeProperties


class PostOut(BaseModel):
    id: int
    role: Literal["chief", "deputy"]
    person_id: int
    name: str
    phone: str | None
    started_at: datetime
    ended_at: datetime | None


class NodePosts(BaseModel):
    node: NodeRef
    current: list[PostOut]
    past: list[PostOut]


# --- accounts -------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the access token stays valid")
    refresh_token: str = Field(description="single use: /api/v1/auth/refresh spends it and returns a new one")
    refresh_expires_at: datetime


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class ScopeOut(BaseModel):
    role: Literal[
        "chief", "mediator", "dispatcher", "leader", "admin", "department_staff", "reception", "supervisor", "city"
    ]
    tier: Literal["village_house", "township_hall", "county_center"] | None = None
    node: NodeRef
    department_code: str | None = None


class PostHeld(BaseModel):
    post_id: int
    role: Literal["chief", "deputy"]
    node: NodeRef


class MeOut(BaseModel):
    user_id: int
    person_id: int
    name: str
    phone: str
    roles: list[str] = Field(description="the union of the roles of every grant and post")
    scopes: list[ScopeOut] = Field(description="nodes whose subtrees the user may read personal data in")
    posts: list[PostHeld] = Field(description="posts the user holds now")


class GrantIn(BaseModel):
    role: Literal["mediator", "dispatcher", "leader", "admin", "department_staff", "reception", "supervisor"]
    node_code: str
    tier: Literal["village_house", "township_hall", "county_center"] | None = None
    department_code: str | None = Field(default=None, max_length=32, description="department_staff only")


class UserCreateIn(BaseModel):
    phone: str = Field(pattern=r"^1\d{10}$", examples=["13800000000"])
    name: str = Field(min_length=1, max_length=100)
    password: str | None = Field(
        default=None, min_length=10, max_length=200, description="omit to have one generated and shown once"
    )
    grants: list[GrantIn] = []


class UserCreatedOut(BaseModel):
    id: int
    phone: str
    initial_password: str | None = Field(description="the generated password, shown this once; null if given")


class PasswordResetIn(BaseModel):
    password: str | None = Field(default=None, min_length=10, max_length=200)


class PasswordResetOut(BaseModel):
    password: str | None = Field(description="the generated password, shown this once; null if given")


class UserOut(BaseModel):
    id: int
    phone: str
    person_id: int
    name: str
    disabled_at: datetime | None
    created_at: datetime


class UserDetailOut(UserOut):
    roles: list[str]
    scopes: list[ScopeOut]


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: int | None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_user_id: int | None
    actor_phone: str | None
    action: str
    target: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: int | None = Field(description="pass as ?cursor= for older rows; null on the last page")


# --- cases ------------------------------------------------------------------------


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
    occurred_at: Moment | None = None
    client_recorded_at: Moment | None = None


class ActionIn(BaseModel):
    action: str = Field(description="accept, start_mediation, resolve, fail, escalate, return, return_visit, "
                                    "close, reopen, extend, terminate (依法终结, at the county centre)")  # fmt: skip
    note: str | None = Field(default=None, max_length=4000)
    next_recipient: str | None = Field(default=None, max_length=64, description="node code, for return (退回)")
    approver: str | None = Field(default=None, max_length=100, description="for extend: the person_id of who approved "
                                 "it, one tier up (whoever an escalation would reach now)")  # fmt: skip
    hours: float | None = Field(default=None, gt=0, le=720, allow_inf_nan=False)
    agreement_text: str | None = Field(default=None, max_length=20000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    tier: Tier | None = Field(default=None, description="for direct (交办, 包案 owners): the tier to hand it to")
    hard_outcome: Literal["case_closed", "complaint_withdrawn", "heart_settled"] | None = Field(
        default=None, description="for conclude (包案 owners): 案结事了, 息诉罢访 or 事心双结"
    )
    channel: Literal["litigation", "arbitration", "administrative_review"] | None = Field(
        default=None, description="for terminate (依法终结): the legal channel the parties are referred to"
    )
    work_group: list[Id] | None = Field(
        default=None, max_length=50, description="for start_mediation at a township hall: the ids of the team "
        "members who mediate (工作组; GET /api/v1/grid/nodes/{township}/team)")  # fmt: skip


class SectionIn(BaseModel):
    body: str = Field(min_length=1, max_length=20000)


class CaseOut(BaseModel):
    id: int
    state: State
    state_name: str = Field(description="the state's Chinese name, e.g. 待受理")
    source: Literal["grid", "visit", "hotline", "online", "handed_down"] = Field(
        description="where the case came from: a grid report, a walk-in visit, the 12345 hotline, online, handed down"
    )
    source_name: str = Field(description="its Chinese name, e.g. 网格上报, 来访, 中省交办")
    tier: Tier
    tier_name: str = Field(description="the tier's Chinese name (grid/glossary.py)")
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
    allowed_actions: list[str] = Field(
        default=[], description="what the caller may do now: empty for a reader who does not handle the case"
    )
    allowed_action_names: dict[str, str] = Field(default={}, description="each allowed action's Chinese name")


class PartyOut(BaseModel):
    name: str
    phone: str | None
    role: str


class RecipientOut(BaseModel):
    person_id: int
    name: str
    role: str
    role_name: str


class ReturnChoice(BaseModel):
    code: str
    name: str
    level: str


class AttachmentInfo(BaseModel):
    """One photo of the case file: what its EXIF says, and links to the served copies."""

    id: int
    sha256: str = Field(description="of the file as uploaded, which the ledger's attach step signs")
    content_type: str = Field(description="as uploaded (image/jpeg, image/png, image/heic); served as image/jpeg")
    size: int = Field(description="bytes, as uploaded")
    uploaded_at: datetime
    taken_at: datetime | None = Field(description="EXIF DateTimeOriginal; null when the photo has none")
    taken_lon: float | None = Field(description="EXIF GPS position, decimal WGS-84; null when the photo has none")
    taken_lat: float | None
    distance_m: float | None = Field(description="metres from the report's point to where the photo was taken")
    url: str = Field(description="the photo without its EXIF (GET, a personal-data read, audited)")
    thumbnail_url: str = Field(description="a JPEG at most 320 px on its long side (GET, audited)")


class PersonRef(BaseModel):
    person_id: int
    name: str


class UnitRef(BaseModel):
    kind: Literal["department", "township"]
    code: str
    name: str


class DutyOut(BaseModel):
    """One of the five duties (五包) of a hard case."""

    duty: str
    name: str = Field(description="e.g. 包掌握情况")
    done: bool
    note: str | None = None
    person_id: int | None = Field(default=None, description="who ticked it")
    by: str | None = Field(default=None, description="their name")
    at: datetime | None = None
    at_text: str | None = Field(default=None, description="when, as the county reads it (its time zone)")


class CaseDetail(CaseOut):
    parties: list[PartyOut] = Field(description="personal data: shown to readers in scope, every read audited")
    recipients: list[RecipientOut]
    sections: dict[Section, str]
    agreement_text: str | None
    failure_reason: str | None
    return_choices: list[str] = Field(
        default=[], description="node codes a return (退回) is offered: the case's own chain below its handling node; "
        "any live node with a chief inside the handling node's subtree is accepted")  # fmt: skip
    return_choice_nodes: list[ReturnChoice] = Field(
        default=[], description="the same nodes as return_choices, in the same order, with their names"
    )
    attachments: list[AttachmentInfo] = Field(default=[], description="the case's photos, oldest first")
    # 包案 (docs/leadership.md): a hard case's owners, its five duties and how it ended.
    hard: bool = Field(default=False, description="a hard case (包案)")
    owner_leader: PersonRef | None = Field(default=None, description="its owning county leader (包案领导)")
    owner_unit: UnitRef | None = Field(default=None, description="its owning unit (责任单位)")
    five_duties: list[DutyOut] = Field(default=[], description="五包, in their order; empty unless hard")
    hard_outcome: str | None = None
    hard_outcome_name: str | None = Field(default=None, description="案结事了, 息诉罢访 or 事心双结")
    closure_channel: str | None = Field(default=None, description="依法终结: the legal channel the case went to")
    closure_channel_name: str | None = None
    closure_reason: str | None = None
    joint_units: list[JointUnitOut] = Field(default=[], description="the centre's co-handling departments (联合办理)")
    work_group: list[TeamMemberRef] = Field(default=[], description="the township hall's work group (工作组)")


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: int | None


class Category(BaseModel):
    code: str
    name_zh: str
    name_en: str


class Severity(BaseModel):
    level: int
    name_zh: str
    meaning: str


class Word(BaseModel):
    code: str
    name: str = Field(description="what a person reads")


class Catalogue(BaseModel):
    categories: list[Category]
    severities: list[Severity]
    states: list[Word]
    tiers: list[Word]
    actions: list[Word] = Field(description="the workflow's actions and the other steps of the ledger")
    sections: list[Word] = Field(description="一事一案六公开")
    roles: list[Word]


class AttachmentOut(BaseModel):
    id: int
    sha256: str
    content_type: str
    size: int
    new: bool = Field(description="false when the same photo was already on the case")
    taken_at: datetime | None = Field(description="the photo's EXIF DateTimeOriginal (its offset if given, else "
                                      "the county's time zone); null when it has none")  # fmt: skip
    taken_lon: float | None = Field(description="the photo's EXIF GPS position, decimal WGS-84; null when none")
    taken_lat: float | None


class LedgerEvent(BaseModel):
    seq: int
    action: str
    action_name: str = Field(description="the step's Chinese name, e.g. 受理")
    actor_person_id: int | None
    actor: str | None
    from_state: str | None
    from_state_name: str | None
    to_state: str
    to_state_name: str
    note: str | None
    attachment_hashes: list[str]
    at: datetime
    details: dict[str, Any] = Field(description="what the step records beyond the columns above (the body)")
    hash: str
    prev_hash: str
    signature: str
    seal: int = Field(description="what the hash covers: 2 every field above, 1 the body only (before 0108)")
    key_id: str | None = Field(description="the signing key (`wuzhang ledger keys`); none on seal 1")


class LedgerOut(BaseModel):
    case_id: int
    events: list[LedgerEvent]


class VerifyOut(BaseModel):
    valid: bool
    first_bad_event: int | None = Field(description="the id of the first event that fails")
    first_bad_seq: int | None = Field(description="its step number (seq)")
    problem: str | None = Field(
        description="chain_broken, hash_mismatch, columns_differ_from_body, unknown_key, bad_signature, unknown_seal"
    )
    message: str = Field(description="the verdict in words")
    events: int
    sealed_body_only: int = Field(description="events written before migration 0108, sealed over their body only")
    key_ids: list[str] = Field(description="the keys that signed this ledger")


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class CaseFeatureProperties(BaseModel):
    id: int
    state: State
    state_name: str
    tier: Tier
    tier_name: str
    category: str
    severity: int
    overdue: bool
    handling_node: str
    handling_node_name: str
    located_node: str | None
    reported_at: datetime
    due_at: datetime | None


class CaseFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: int
    geometry: PointGeometry
    properties: CaseFeatureProperties


class CaseCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CaseFeature]
    truncated: bool = Field(description="more cases matched than `limit`")


class MyReport(CaseOut):
    """One of the caller's own reports, as the phone's "我的上报" list shows it."""

    recipients: list[RecipientOut] = Field(description="who holds it now: chief, deputies, mediators")
    last_action: str | None = Field(description="the last step on the case's ledger (report, assign, accept, ...)")
    last_step_at: datetime | None = Field(description="when that step was taken")


class MyReportPage(BaseModel):
    items: list[MyReport]
    next_cursor: int | None = Field(description="pass as ?cursor= for older reports; null on the last page")


class InboxItem(BaseModel):
    id: int
    case_id: int | None
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: int | None


class ReadIn(BaseModel):
    ids: list[Id] = Field(min_length=1, max_length=500)


class MarkedOut(BaseModel):
    marked: int


# --- the county's figures (GET /api/v1/stats/...; docs/statistics.md) ---------------


class RateOut(BaseModel):
    """A rate with what it is made of; `value` is null when the denominator is 0."""

    value: float | None
    numerator: int
    denominator: int


class Measures(BaseModel):
    """Counts of cases and of ledger steps, each dated as docs/statistics.md says."""

    received: int = Field(description="cases reported in the period")
    concluded: int = Field(description="cases whose final mediation outcome fell in the period, less the exclusions")
    succeeded: int = Field(description="of those, ended by an agreement (resolve)")
    excluded: int = Field(description="outcomes in the period left out of the success rate (WUZHANG_STATS_EXCLUDE_*)")
    success_rate: RateOut = Field(description="succeeded ÷ concluded")
    settled: int = Field(description="cases settled (final outcome resolve) in the period, whatever the exclusions")
    settled_in_village: int
    settled_in_village_rate: RateOut = Field(
        description="小事不出村: settled by the chiefs or the village house ÷ settled"
    )
    settled_in_township: int
    settled_in_township_rate: RateOut = Field(description="大事不出镇: settled at the township hall or below ÷ settled")
    settled_below_county: int
    settled_below_county_rate: RateOut = Field(description="矛盾不上交: settled below the county centre ÷ settled")
    escalated_cases: int
    escalations: int
    escalations_by_deadline: int = Field(description="by the worker, at a missed deadline")
    escalations_by_person: int
    returned_cases: int
    returns: int
    reopened_cases: int
    reopens: int
    extensions: int
    late_cases: int = Field(description="cases received in the period that ever missed a deadline")
    missed_deadlines: int
    visited: int = Field(description="return visits (latest per case) in the period")
    satisfaction_scored: int
    satisfaction_mean: float | None = Field(description="1 very unhappy ... 5 very happy")
    satisfied: int = Field(description="scored 4 or 5")
    satisfaction_rate: RateOut


class StatsPeriod(BaseModel):
    period_start: date = Field(description="the first county day counted")
    period_end: date = Field(description="the last county day counted")
    generated_at: datetime
    fresh_as_of: datetime = Field(description="the figures count every ledger step up to this time")
    rolled_up_at: datetime | None = Field(
        description="the daily roll-up's last refresh (null: computed from the ledger directly)"
    )
    pending_cases: int | None = Field(description="cases touched since that refresh, counted directly")


class StatsSummary(StatsPeriod, Measures):
    still_late: int = Field(description="missed deadlines whose step is not done yet")
    late_hours_median: float | None = Field(description="from a missed deadline until its step was done (or now)")
    late_hours_max: float | None
    accept_hours_median: float | None = Field(description="from an assignment to its acceptance, every tier")
    resolve_hours_median: float | None = Field(description="from an acceptance to the agreement at that tier")


class MonthMeasures(Measures):
    month: str = Field(description="YYYY-MM, the county's month")


class PlaceMeasures(Measures):
    code: str
    name: str


class StatsMonthly(StatsPeriod):
    items: list[MonthMeasures]


class StatsPlaces(StatsPeriod):
    items: list[PlaceMeasures]


class TierFigures(BaseModel):
    tier: str
    tier_name: str
    cases: int = Field(description="cases received in the period that reached this tier")
    assignments: int
    accepted: int
    settled: int
    failed: int
    escalated: int = Field(description="assignments that went up from here")
    returned: int
    missed_deadlines: int
    late_cases: int
    accept_hours_median: float | None
    resolve_hours_median: float | None


class StatsTiers(StatsPeriod):
    items: list[TierFigures]


class NodeFigures(BaseModel):
    code: str
    name: str
    township_code: str | None
    township_name: str | None
    reports: int = Field(description="reports located in the node during the period")
    last_report_at: datetime | None = Field(description="its latest report before the period's end")
    silent: bool = Field(description="no report in the `silent_days` before the period's end")


class StatsNodes(StatsPeriod):
    level: str
    level_name: str
    silent_days: int
    silent_count: int
    items: list[NodeFigures]


# --- 联席会议 and 督办 (app/routers/meetings.py, grid/leadership/meetings.py) --------------

# A county calendar day (a meeting's date, a task's due day).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


class TaskOwnerIn(BaseModel):
    department_code: str | None = Field(default=None, max_length=32, description="a department (部门), e.g. petition")
    township_code: str | None = Field(default=None, max_length=64, description="a township's node code")
    person_id: Id | None = Field(default=None, description="a person")


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=1000, description="the decision to carry out")
    owner: TaskOwnerIn = Field(description="exactly one of department_code, township_code, person_id")
    due_on: date = Field(ge=FIRST_DAY, le=LAST_DAY, description="the county's calendar day, included")
    case_ids: list[Id] = Field(default=[], max_length=50)
    parent_id: Id | None = Field(default=None, description="a township meeting's sub-task: the county task it splits")


class AttendeeIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    person_id: Id | None = None
    unit: str | None = Field(default=None, max_length=100)


class MeetingIn(BaseModel):
    level: Literal["county", "township"]
    node: str = Field(min_length=1, max_length=64, description="the county's code, or the township's")
    held_on: date = Field(ge=FIRST_DAY, le=LAST_DAY)
    title: str = Field(min_length=1, max_length=200)
    chair_person_id: Id | None = Field(default=None, description="who chaired (escalations go there); default: you")
    attendees: list[AttendeeIn] = Field(default=[], max_length=200)
    case_ids: list[Id] = Field(default=[], max_length=100, description="cases on the agenda")
    topics: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default=[], max_length=50, description="other agenda topics")  # fmt: skip
    minutes: str = Field(default="", max_length=20000)
    tasks: list[TaskIn] = Field(default=[], max_length=50)


class TasksIn(BaseModel):
    tasks: list[TaskIn] = Field(min_length=1, max_length=50)


class TaskNoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class TaskDoneIn(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class TaskOwnerOut(BaseModel):
    kind: Literal["department", "township", "person"]
    kind_name: str
    code: str = Field(description="department code, township code, or person id")
    name: str


class TaskNoteOut(BaseModel):
    id: int
    person_id: int
    person_name: str
    note: str
    created_at: datetime


class TaskOut(BaseModel):
    id: int
    meeting_id: int
    meeting_level: str
    meeting_level_name: str
    meeting_held_on: date
    parent_id: int | None
    title: str
    owner: TaskOwnerOut
    due_on: date
    case_ids: list[int]
    state: Literal["open", "done", "overdue"]
    state_name: str
    done_at: datetime | None
    done_note: str | None
    on_time: bool | None = Field(description="done on or before its due day (county calendar); null until done")
    on_time_name: str | None
    reminded_at: datetime | None = Field(description="when the owner was reminded it is overdue")
    escalated_at: datetime | None = Field(description="when it was escalated to the meeting's chair")
    created_at: datetime


class TaskDetail(TaskOut):
    notes: list[TaskNoteOut]
    subtasks: list[TaskOut]


class TaskCounts(BaseModel):
    open: int
    overdue: int
    done: int
    done_on_time: int
    done_late: int


class TaskList(BaseModel):
    items: list[TaskOut]
    counts: TaskCounts = Field(description="over the listed tasks")


class AttendeeOut(BaseModel):
    name: str
    person_id: int | None = None
    unit: str | None = None


class MeetingOut(BaseModel):
    id: int
    level: str
    level_name: str
    node: str
    node_name: str
    held_on: date
    title: str
    chair_person_id: int
    chair_name: str
    attendees: list[AttendeeOut]
    case_ids: list[int]
    topics: list[str]
    minutes: str
    created_at: datetime


class MeetingDetail(MeetingOut):
    tasks: list[TaskOut]


class MeetingList(BaseModel):
    items: list[MeetingOut]


# --- 坐班接访: the duty roster and walk-in visits (app/routers/duty.py) --------------------


class DutyDayIn(BaseModel):
    leader_person_id: Id = Field(description="the person id of a county leader (an account with the leader role)")
    body: str = Field(min_length=1, max_length=24, description="party_committee, peoples_congress, government or "
                      "cppcc (or its Chinese name: 县委, 县人大, 县政府, 县政协)")  # fmt: skip
    note: str | None = Field(default=None, max_length=500)


class DutyDayOut(BaseModel):
    day: date
    leader_person_id: int
    leader_name: str
    body: str
    body_name: str = Field(description="the body's Chinese name, e.g. 县委")
    note: str | None
    updated_at: datetime


class DutyTodayOut(BaseModel):
    day: date = Field(description="today in the county's time zone")
    on_duty: DutyDayOut | None = Field(description="null when nobody is on duty today: fill the roster")


class DutyList(BaseModel):
    first: date
    last: date
    items: list[DutyDayOut]


class VisitIn(BaseModel):
    visitor_name: str = Field(min_length=1, max_length=50)
    visitor_phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$", description="mainland mobile")
    category: str = Field(min_length=1, max_length=32)
    severity: int = Field(default=2, ge=1, le=4)
    description: str = Field(min_length=1, max_length=4000, description="the matter the visitor raises")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    crs: CRS = CRS.wgs84
    node_code: str | None = Field(default=None, max_length=64, description="the place as a node, instead of a point")


class VisitDecisionIn(BaseModel):
    action: str = Field(max_length=32, description="settle, route_to_tier, assign_unit or take_ownership")
    note: str | None = Field(default=None, max_length=4000)
    agreement_text: str | None = Field(default=None, max_length=20000, description="settle: the result agreed")
    tier: str | None = Field(default=None, max_length=32, description="route_to_tier: chief, village_house, "
                             "township_hall or county_center")  # fmt: skip
    department_code: str | None = Field(default=None, max_length=32, description="assign_unit, take_ownership")
    township_code: str | None = Field(default=None, max_length=64, description="take_ownership: a township as unit")


class VisitFigure(BaseModel):
    leader_person_id: int
    leader_name: str
    visits: int
    settle: int = Field(description="settled on the spot")
    route: int = Field(description="routed into the grid's tiers")
    unit: int = Field(description="given to a department")
    own: int = Field(description="taken as 包案 by the duty leader")
    undecided: int = Field(description="still waiting for the duty leader")
    resolved_later: int = Field(description="not settled on the spot, resolved since")


class VisitFigures(BaseModel):
    first: date
    last: date
    decision_names: dict[str, str]
    leaders: list[VisitFigure]


class SheetImportOut(BaseModel):
    source: str
    dry_run: bool
    rows: int
    imported: int
    ok: bool
    error_count: int
    errors: list[dict[str, Any]]


# --- 积案、双清零、零倒流 (app/routers/backlog.py) ------------------------------------------


class BatchImportOut(BaseModel):
    label: str
    source: str
    dry_run: bool
    rows: int
    imported: int
    batch_id: int | None
    case_ids: list[int]
    ok: bool
    error_count: int
    errors: list[dict[str, Any]]


class BatchOut(BaseModel):
    id: int
    label: str
    handed_down_on: date | None
    created_at: datetime
    total: int
    resolved: int = Field(description="resolved, in return visit, closed or ended lawfully (依法终结)")
    open: int
    owned: int = Field(description="cases with an owning leader (包案)")
    cleared: bool = Field(description="清零: the batch has cases and every one is resolved")
    reflows: int = Field(description="倒流: times a resolved case of the batch came back")


class BatchCase(BaseModel):
    id: int
    state: State
    state_name: str
    hard_outcome: str | None
    owner_leader_person_id: int | None
    owner_leader_name: str | None
    reflows: int


class BatchDetail(BatchOut):
    cases: list[BatchCase]


class ReflowIn(BaseModel):
    earlier_case_id: Id = Field(description="the resolved backlog case this one repeats")
    note: str = Field(min_length=1, max_length=4000, description="why it is the same party and matter")


class ReflowOut(BaseModel):
    case_id: int = Field(description="the earlier (backlog) case, now flagged as a reflow")
    new_case_id: int
    reflows: int = Field(description="how often the earlier case has come back")


# --- 包案 and the county's departments (app/routers/leadership.py) ----------------------


class DepartmentOut(BaseModel):
    code: str
    name: str
    active: bool


class DepartmentIn(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", examples=["veterans"], description="lower-case letters, "
                      "digits and _; stays as it is")  # fmt: skip
    name: str = Field(min_length=1, max_length=50, examples=["退役军人事务局"])


class DepartmentChangeIn(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = None


class UnitIn(BaseModel):
    department_code: str | None = Field(default=None, max_length=32)
    township_code: str | None = Field(default=None, max_length=64)


class OwnershipIn(BaseModel):
    leader_person_id: int = Field(ge=1, le=2**63 - 1, description="the owning county leader's person id")
    unit: UnitIn
    note: str | None = Field(default=None, max_length=4000)


class OwnershipOut(BaseModel):
    case_id: int
    hard: bool
    owner_leader: PersonRef
    owner_unit: UnitRef


class DutyIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="what was done for this duty")


class DutyTicked(BaseModel):
    case_id: int
    duty: str
    name: str
    done: int = Field(description="how many of the five are ticked now")
    total: int = 5


class OwnedCase(BaseModel):
    """One hard case the caller owns, for the leader's page."""

    id: int
    state: State
    state_name: str
    tier: Tier
    tier_name: str
    category: str
    category_name: str = Field(description="the category's Chinese name, e.g. 征地拆迁")
    severity: int
    source: str
    source_name: str
    handling_node: str
    handling_node_name: str
    reported_at: datetime
    overdue: bool
    as_leader: bool = Field(description="true: the caller is its 包案领导; false: staff of its 责任单位")
    owner_leader: PersonRef | None
    owner_unit: UnitRef | None
    duties_done: int = Field(description="of the five duties (五包)")
    duties_total: int = 5
    hard_outcome: str | None
    hard_outcome_name: str | None
    closed_at: datetime | None


class OwnedPage(BaseModel):
    items: list[OwnedCase]
    next_cursor: int | None = Field(description="pass as ?cursor= for older cases; null on the last page")


# --- the county centre, the township hall's team, social assistance (grid/leadership) ---


class JointUnitOut(BaseModel):
    department_code: str
    department_name: str
    task: str | None
    done_at: datetime | None
    done_note: str | None


class TeamMemberRef(BaseModel):
    id: int
    name: str
    kind: str
    kind_name: str = Field(description="五位一体: 镇村干部, 派出所干警, ...")


class JointIn(BaseModel):
    department_code: str = Field(min_length=1, max_length=32)
    task: str = Field(min_length=1, max_length=4000, description="the department's part of the case")


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class TeamMemberIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    kind: Literal["cadre", "police", "judicial", "legal_adviser", "social_worker", "deputy"]


class TeamMemberPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    kind: Literal["cadre", "police", "judicial", "legal_adviser", "social_worker", "deputy"] | None = None
    active: bool | None = None


class TeamMemberOut(TeamMemberRef):
    phone: str | None = Field(description="personal data: only for readers whose scope holds the township")
    active: bool


class TeamOut(BaseModel):
    node: str
    node_name: str
    members: list[TeamMemberOut]
    kinds: list[Word] = Field(description="the kinds a member may be, with their names")


class ReferralIn(BaseModel):
    party: str = Field(min_length=1, max_length=100, description="a party of the case: its name, or its number "
                       "in the case file's list of parties, from 1")  # fmt: skip
    type: Literal["subsistence", "destitute", "medical", "education", "housing", "employment", "disaster",
                  "emergency", "social_forces"]  # fmt: skip
    note: str | None = Field(default=None, max_length=4000)


class OutcomeIn(BaseModel):
    outcome: Literal["approved", "declined"]
    amount: float | None = Field(default=None, ge=0, le=10_000_000, allow_inf_nan=False, description="yuan")
    note: str | None = Field(default=None, max_length=4000)


class ReferralOut(BaseModel):
    id: int
    case_id: int
    party_name: str = Field(description="personal data: the referred party")
    type: str
    type_name: str
    group: str
    group_name: str
    note: str | None
    referred_at: datetime
    outcome: str | None
    outcome_name: str | None
    amount: float | None
    decision_note: str | None
    decided_at: datetime | None


class ReferralPage(BaseModel):
    items: list[ReferralOut]


class ReferralCount(BaseModel):
    type: str
    type_name: str
    group: str
    group_name: str
    referred: int
    approved: int
    declined: int
    amount: float = Field(description="yuan approved")


class ReferralSummary(BaseModel):
    types: list[ReferralCount]
    referred: int
    approved: int
    declined: int
    amount: float


CaseDetail.model_rebuild()  # its leadership parts are defined after it


# --- the leadership figures (GET /api/v1/stats/leadership; docs/statistics.md) ---------------


class LeadershipVisits(BaseModel):
    items: list[VisitFigure] = Field(description="per duty leader, visits on county days of the period")
    visits: int
    settle: int
    route: int
    unit: int
    own: int
    undecided: int
    resolved_later: int


class DutiesTicked(BaseModel):
    done: int = Field(description="how many of the five duties (五包) are ticked, 0 to 5")
    cases: int


class LeadershipOwnership(BaseModel):
    """包案 over the hard cases reported in the period, as they stand now."""

    hard: int
    owned: int = Field(description="with an owning leader")
    unowned: int
    open: int = Field(description="not yet closed or ended lawfully")
    concluded: int = Field(description="concluded by their owners with a hard outcome (the three below)")
    case_closed: int
    complaint_withdrawn: int
    heart_settled: int
    closed_otherwise: int = Field(description="closed by the ordinary workflow, without a hard outcome")
    terminated: int = Field(description="ended lawfully (依法终结)")
    duties: list[DutiesTicked]


class LeadershipBatches(BaseModel):
    items: list[BatchOut] = Field(description="batches imported before the period's end, counting their cases in scope")
    batches: int
    batches_cleared: int = Field(description="清零: every case of the batch (in scope) resolved")


class LeadershipReflows(BaseModel):
    reflows: int = Field(description="倒流 recorded in the period")
    reopen: int
    linked: int


class LeadershipTasks(BaseModel):
    """Supervised tasks due on a day of the period."""

    due: int
    done: int
    on_time: int = Field(description="done on or before the due day (county calendar)")
    late: int
    open: int = Field(description="not done, due day not past")
    overdue: int = Field(description="not done, due day past")
    on_time_rate: RateOut = Field(description="on_time ÷ (done + overdue)")


class LeadershipReferrals(BaseModel):
    types: list[ReferralCount] = Field(description="referrals made in the period, their outcomes as now")
    referred: int
    approved: int
    declined: int
    amount: float


class ClosureCount(BaseModel):
    channel: str
    channel_name: str
    lawful_closures: int


class LeadershipClosures(BaseModel):
    lawful_closures: int = Field(description="cases ended lawfully (依法终结) in the period")
    items: list[ClosureCount]


class LeadershipNames(BaseModel):
    """The Chinese words a page shows with the figures (grid/glossary.py)."""

    title: str = Field(description="the dashboard's section: 领导工作")
    sections: dict[str, str] = Field(description="each part's name, by its key above")
    figures: dict[str, str] = Field(description="each figure's name, by its key (the ownership's open: hard_open)")


class StatsLeadership(StatsPeriod):
    visits: LeadershipVisits
    ownership: LeadershipOwnership
    batches: LeadershipBatches
    reflows: LeadershipReflows
    tasks: LeadershipTasks
    referrals: LeadershipReferrals
    closures: LeadershipClosures
    names: LeadershipNames
