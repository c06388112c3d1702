"""Response and request shapes of the HTTP API (apart from the ORM models)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

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
    role: Literal["chief", "mediator", "dispatcher", "leader", "admin", "department_staff", "reception", "supervisor"]
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
                                    "close, reopen, extend")  # fmt: skip
    note: str | None = Field(default=None, max_length=4000)
    next_recipient: str | None = Field(default=None, max_length=64, description="node code, for return (退回)")
    approver: str | None = Field(default=None, max_length=100, description="for extend: the person_id of who approved "
                                 "it, one tier up (whoever an escalation would reach now)")  # fmt: skip
    hours: float | None = Field(default=None, gt=0, le=720, allow_inf_nan=False)
    agreement_text: str | None = Field(default=None, max_length=20000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)


class SectionIn(BaseModel):
    body: str = Field(min_length=1, max_length=20000)


class CaseOut(BaseModel):
    id: int
    state: State
    state_name: str = Field(description="the state's Chinese name, e.g. 待受理")
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
