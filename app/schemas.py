"""Response and request shapes of the HTTP API (apart from the ORM models)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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
    chain: Literal["urban", "rural"] | None
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
    role: Literal["chief", "mediator", "dispatcher", "leader", "admin"]
    tier: Literal["village_house", "township_hall", "county_center"] | None = None
    node: NodeRef


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
    role: Literal["mediator", "dispatcher", "leader", "admin"]
    node_code: str
    tier: Literal["village_house", "township_hall", "county_center"] | None = None


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
