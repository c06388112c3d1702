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
