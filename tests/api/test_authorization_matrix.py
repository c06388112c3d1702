"""The authorization matrix, generated from the app's own route table.

Every /api/v1 route × every role (and anonymous) × in scope / out of scope gets the
status its declared policy promises. A new route fails here until it declares a
policy (create_app refuses it otherwise) *and* gets a row in CASES below.

Scope targets: "in" is the rural village `demo_nodes.village` (inside every test
role's scope: chief and village_house sit on it, township roles on its township,
county roles on the county); "out" is a village of another township. County-wide
roles have no "out"; admin has no data scope at all, so it never sees a phone.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app import policy
from app.main import create_app
from app.settings import Settings
from grid.db import fetch_one
from tests.conftest import PASSWORD, ROLE_SETUPS, holder_person_id
from tests.photos import png

ROLES = ["anonymous", *ROLE_SETUPS]
# County-wide node scopes; and roles with no node scope at all (nothing to be "out" of).
COUNTY_READERS = {"mediator_county_center", "leader"}
NO_NODE_SCOPE = {"admin", "department_staff", "reception", "supervisor"}
COUNTY_WIDE = COUNTY_READERS | NO_NODE_SCOPE
WITH_DATA_SCOPE = {r for r in ROLE_SETUPS if r not in NO_NODE_SCOPE}


@dataclass
class Ctx:
    client: Any
    account: Any  # tests.conftest.Account, or None when anonymous
    nodes: Any
    make_account: Callable[..., Any]
    in_scope: bool
    db: Any = None

    async def case_id(self) -> int:
        """A fresh case reported by the household's chief: handled by the village's harmony
        house (severity 2), in `village` when in scope, in `other_village` when not."""
        import uuid
        from datetime import UTC, datetime

        from app.accounts.service import ROOMS
        from app.settings import get_settings
        from geo.crs import CRS
        from grid.cases import service as cases

        code = self.nodes.household if self.in_scope else self.nodes.other_household
        lon, lat = self.nodes.points[code]
        reporter = await holder_person_id(self.db, code)
        report = cases.Report(lon=lon, lat=lat, crs=CRS.wgs84, category="neighbours", severity=2, description="矩阵")
        out = await cases.submit_report(conn=self.db, actor=cases.Actor(reporter, counties=("610827",)), key=uuid.uuid4(), report=report,
                                        now=datetime.now(UTC), signer=get_settings().ledger_signer(),
                                        rooms=ROOMS, county_code="610827")  # fmt: skip
        return out.case["id"]

    @property
    def village(self) -> str:
        return self.nodes.village if self.in_scope else self.nodes.other_village

    @property
    def household_point(self) -> dict[str, float]:
        lon, lat = self.nodes.points[self.nodes.household if self.in_scope else self.nodes.other_household]
        return {"lon": lon, "lat": lat}

    @property
    def township(self) -> str:
        return self.nodes.township if self.in_scope else self.nodes.other_township

    async def target_user(self) -> int:
        return (await self.make_account("dispatcher")).user_id


Request = tuple[str, dict[str, Any]]


async def on_case(ctx: Ctx, build: Callable[[int], Request]) -> Request:
    """The request `build` makes for a fresh case (see Ctx.case_id)."""
    return build(await ctx.case_id())


async def in_mediation(ctx: Ctx, *, with_agreement: bool = False) -> int:
    """A fresh case its village chief has accepted and started mediating (an agreement may
    be issued now), and, `with_agreement`, one issued."""
    from datetime import UTC, datetime

    from app.accounts.service import ROOMS
    from app.settings import get_settings
    from grid.cases import publishing
    from grid.cases import service as cases

    case_id, now, signer = await ctx.case_id(), datetime.now(UTC), get_settings().ledger_signer()
    chief = cases.Actor(await holder_person_id(ctx.db, ctx.village), counties=("610827",))
    for action in ("accept", "start_mediation"):
        await cases.act(conn=ctx.db, actor=chief, case_id=case_id, action=action, fields={}, now=now, signer=signer,
                        rooms=ROOMS)  # fmt: skip
    if with_agreement:
        terms = publishing.Terms(terms="楼上修好水管", performance="自行维修", due="一周内")
        await publishing.issue_agreement(conn=ctx.db, actor=chief, case_id=case_id, terms=terms, now=now,
                                         signer=signer, county_name="米脂县")  # fmt: skip
    return case_id


async def _then(case_id: Awaitable[int], build: Callable[[int], Request]) -> Request:
    return build(await case_id)


async def on_photo(ctx: Ctx, build: Callable[[int, int], Request]) -> Request:
    """The request `build` makes for a photo its reporter attached to a fresh case."""
    from datetime import UTC, datetime

    from app import photos
    from app.settings import get_settings
    from grid.cases import service as cases

    case_id = await ctx.case_id()
    reporter = await holder_person_id(ctx.db, ctx.nodes.household if ctx.in_scope else ctx.nodes.other_household)
    sha256, path, _ = photos.store(png(), get_settings().media_dir, "image/png")
    photo_id, _ = await cases.record_attachment(
        conn=ctx.db, actor=cases.Actor(reporter, counties=("610827",)), case_id=case_id, now=datetime.now(UTC),
        signer=get_settings().ledger_signer(),
        file={"sha256": sha256, "content_type": "image/png", "size": path.stat().st_size, "path": str(path),
              "taken_at": None, "taken_lon": None, "taken_lat": None},
    )  # fmt: skip
    return build(case_id, photo_id)


async def _leader_person(ctx: Ctx) -> int:
    leader = await ctx.make_account("leader")
    row = await fetch_one(ctx.db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": leader.user_id})
    assert row is not None
    return int(row["person_id"])


async def on_owned_case(ctx: Ctx, build: Callable[[int], Request]) -> Request:
    """The request `build` makes for a fresh case owned (包案) by another leader and 信访局
    (the department of the matrix's department_staff)."""
    from datetime import UTC, datetime

    from app.settings import get_settings
    from grid.leadership.ownership import Unit, own_case

    case_id, leader = await ctx.case_id(), await _leader_person(ctx)
    await own_case(conn=ctx.db, case_id=case_id, by_person_id=leader, leader_person_id=leader,
                   unit=Unit(department_code="petition"), now=datetime.now(UTC),
                   signer=get_settings().ledger_signer())  # fmt: skip
    return build(case_id)


def marks_hard(role: str, in_scope: bool) -> int:
    """包案 is marked by the county centre's mediators (422 here: the leader named is nobody)
    and the petition office, on cases it reads (not this fresh one: 404); other mediators
    who read the case get 403, those who do not 404."""
    if role == "mediator_county_center":
        return 422
    return 403 if in_scope and role != "department_staff" else 404


def owners_only(role: str, in_scope: bool) -> int:
    """The five duties: the owning unit's staff (信访局's); readers 403, others 404."""
    if role == "department_staff":
        return 200
    return 403 if role in COUNTY_READERS or (role in WITH_DATA_SCOPE and in_scope) else 404


async def on_user(ctx: Ctx, build: Callable[[int], Request]) -> Request:
    """The request `build` makes for a fresh dispatcher's account (see Ctx.target_user)."""
    return build(await ctx.target_user())


@dataclass
class Case:
    policy: str  # the policy the route must declare
    request: Callable[[Ctx], Request | Awaitable[Request]]  # -> (url, httpx kwargs)
    ok: int = 200
    anonymous: int = 401  # public routes say what a caller without an account gets
    check: Callable[[Ctx, Any], None] | None = None  # more than the status, on success
    # Records in a scope: "read" and "write" answer 404 outside it (nothing tells the record
    # exists); "write" answers 403 to readers who are not responsible (a leader).
    # "figures": the county's figures need a data scope (403 without, an admin) and a
    # township in it (404 outside).
    scoped: str | None = None
    # The status per (role, in scope), where the rules above do not say it (leadership routes).
    expect: Callable[[str, bool], int] | None = None


def phones_of_posts(ctx: Ctx, r: Any) -> None:
    phones = [p["phone"] for p in r.json()["current"]]
    assert phones, "a village has a chief and a deputy"
    visible = ctx.in_scope and ctx.account.role in WITH_DATA_SCOPE
    assert all((p is not None) == visible for p in phones), (ctx.account.role, ctx.in_scope, phones)


def phones_of_locate(ctx: Ctx, r: Any) -> None:
    household, county = r.json()["chain"][0], r.json()["chain"][-1]
    visible = ctx.in_scope and ctx.account.role in WITH_DATA_SCOPE
    assert (household["chiefs"][0]["phone"] is not None) == visible, (ctx.account.role, ctx.in_scope)
    # The county's chief is outside every scope but the county-wide ones.
    assert (county["chiefs"][0]["phone"] is not None) == (ctx.account.role in COUNTY_READERS)


def login_form(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    if ctx.account is None:
        return "/api/v1/auth/token", {"data": {"username": "19912345678", "password": PASSWORD}}
    return "/api/v1/auth/token", {"data": {"username": ctx.account.phone, "password": PASSWORD}}


def refresh_body(ctx: Ctx) -> dict[str, Any]:
    return {"json": {"refresh_token": ctx.account.refresh_token if ctx.account else "no-such-token"}}


async def village_file(c: Ctx) -> tuple[str, dict[str, Any]]:
    """The village as stored, as a one-feature GeoJSON, for a dry-run import."""
    import json

    row = await fetch_one(
        c.db,
        "SELECT n.code, n.name, n.level, n.chain, p.code AS parent_code, ST_AsGeoJSON(n.geom, 15) AS g"
        " FROM node n JOIN node p ON p.id = n.parent_id WHERE n.code = %(c)s",
        {"c": c.village},
    )
    assert row is not None, c.village
    props = {k: row[k] for k in ("code", "name", "level", "chain", "parent_code")}
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": props, "geometry": json.loads(row["g"])}],
    }
    return "/api/v1/grid/imports", {
        "files": {"file": ("v.geojson", json.dumps(fc).encode(), "application/geo+json")},
        "data": {"dry_run": "true"},
    }


def own_figures(ctx: Ctx, r: Any) -> None:
    """The figures of the caller's township only: no row names another township."""
    path, items = r.request.url.path, r.json().get("items", [])
    if path.endswith("/townships"):
        assert {i["code"] for i in items} <= {ctx.nodes.township}, items
    if path.endswith("/nodes"):
        assert items and {i["township_code"] for i in items} == {ctx.nodes.township}, items[:3]


CASES: dict[str, Case] = {
    "GET /api/v1/grid/locate": Case("logged_in", lambda c: ("/api/v1/grid/locate", {"params": c.household_point}),
                                    check=phones_of_locate),
    "GET /api/v1/grid/nodes": Case("logged_in", lambda c: ("/api/v1/grid/nodes", {"params": {"parent": c.village}})),
    "GET /api/v1/grid/nodes/{code}": Case("logged_in", lambda c: (f"/api/v1/grid/nodes/{c.village}", {})),
    "GET /api/v1/grid/nodes/{code}/children": Case(
        "logged_in", lambda c: (f"/api/v1/grid/nodes/{c.village}/children", {})),
    "GET /api/v1/grid/nodes/{code}/posts": Case(
        "logged_in", lambda c: (f"/api/v1/grid/nodes/{c.village}/posts", {}), check=phones_of_posts),
    "POST /api/v1/auth/token": Case("public", login_form),
    "POST /api/v1/auth/refresh": Case("public", lambda c: ("/api/v1/auth/refresh", refresh_body(c))),
    "POST /api/v1/auth/logout": Case("public", lambda c: ("/api/v1/auth/logout", refresh_body(c)), ok=204,
                                     anonymous=204),
    "GET /api/v1/me": Case("logged_in", lambda c: ("/api/v1/me", {})),
    "POST /api/v1/admin/users": Case("admin", lambda c: ("/api/v1/admin/users", {"json": {
        "phone": "19712345678", "name": "新用户",
        "grants": [{"role": "mediator", "tier": "village_house", "node_code": c.village}]}}), ok=201),
    "GET /api/v1/admin/users": Case("admin", lambda c: ("/api/v1/admin/users", {})),
    "GET /api/v1/admin/users/{user_id}": Case("admin", lambda c: on_user(c, lambda uid: (f"/api/v1/admin/users/{uid}", {}))),
    "POST /api/v1/admin/users/{user_id}/grants": Case("admin", lambda c: on_user(c, lambda uid: (
        f"/api/v1/admin/users/{uid}/grants",
        {"json": [{"role": "dispatcher", "node_code": c.nodes.township}]})), ok=204),
    "POST /api/v1/admin/users/{user_id}/disable": Case(
        "admin", lambda c: on_user(c, lambda uid: (f"/api/v1/admin/users/{uid}/disable", {})), ok=204),
    "POST /api/v1/admin/users/{user_id}/enable": Case(
        "admin", lambda c: on_user(c, lambda uid: (f"/api/v1/admin/users/{uid}/enable", {})), ok=204),
    "POST /api/v1/admin/users/{user_id}/password": Case(
        "admin", lambda c: on_user(c, lambda uid: (f"/api/v1/admin/users/{uid}/password", {"json": {}}))),
    "GET /api/v1/audit": Case("admin", lambda c: ("/api/v1/audit", {})),
    "POST /api/v1/grid/imports": Case("admin", village_file),
    "GET /api/v1/grid/nodes/{code}/export": Case("admin", lambda c: (f"/api/v1/grid/nodes/{c.village}/export", {})),
    "POST /api/v1/roster/imports": Case("admin", lambda c: ("/api/v1/roster/imports", {
        "files": {"file": ("r.csv", f"node_code,role,name,phone,start_date\n{c.village},deputy,测试,13700000000,2024-01-01\n"
                  .encode(), "text/csv")}, "data": {"dry_run": "true"}})),
    "GET /api/v1/roster/export": Case("admin", lambda c: ("/api/v1/roster/export", {"params": {"code": c.village}})),
    "GET /api/v1/categories": Case("logged_in", lambda c: ("/api/v1/categories", {})),
    "POST /api/v1/reports": Case("logged_in", lambda c: ("/api/v1/reports", {
        "json": {**c.household_point, "category": "neighbours", "severity": 1, "description": "矩阵"},
        "headers": {"Idempotency-Key": str(__import__("uuid").uuid4())}}), ok=201),
    "POST /api/v1/reports/{case_id}/attachments": Case("logged_in", lambda c: on_case(c, lambda cid: (
        f"/api/v1/reports/{cid}/attachments",
        {"files": {"file": ("a.png", png(), "image/png")}})), ok=201, scoped="write"),
    "GET /api/v1/cases/{case_id}/attachments/{attachment_id}": Case("logged_in", lambda c: on_photo(
        c, lambda cid, aid: (f"/api/v1/cases/{cid}/attachments/{aid}", {})), scoped="read"),
    "GET /api/v1/cases/{case_id}/attachments/{attachment_id}/thumbnail": Case("logged_in", lambda c: on_photo(
        c, lambda cid, aid: (f"/api/v1/cases/{cid}/attachments/{aid}/thumbnail", {})), scoped="read"),
    "GET /api/v1/cases": Case("logged_in", lambda c: ("/api/v1/cases", {"params": {"node": c.village}})),
    "GET /api/v1/cases.geojson": Case("logged_in", lambda c: ("/api/v1/cases.geojson", {
        "params": {"bbox": "109.0,37.0,111.0,39.0"}})),
    "GET /api/v1/grid/nodes.geojson": Case("logged_in", lambda c: ("/api/v1/grid/nodes.geojson", {
        "params": {"bbox": "109.0,37.0,111.0,39.0", "level": "township"}})),
    "GET /api/v1/me/tasks": Case("logged_in", lambda c: ("/api/v1/me/tasks", {})),
    "GET /api/v1/me/reports": Case("logged_in", lambda c: ("/api/v1/me/reports", {})),
    "GET /api/v1/cases/{case_id}": Case("logged_in", lambda c: on_case(c, lambda cid: (f"/api/v1/cases/{cid}", {})), scoped="read"),
    "POST /api/v1/cases/{case_id}/actions": Case("logged_in", lambda c: on_case(c, lambda cid: (
        f"/api/v1/cases/{cid}/actions", {"json": {"action": "accept"}})), scoped="write"),
    "PUT /api/v1/cases/{case_id}/sections/{section}": Case("logged_in", lambda c: on_case(c, lambda cid: (
        f"/api/v1/cases/{cid}/sections/facts", {"json": {"body": "事实"}})), ok=204, scoped="write"),
    # The case is fresh (assigned), so passing the door means meeting the state rule: 409
    # not_publishable (a notice follows a resolved mediation; tests/api/test_publishing.py).
    "POST /api/v1/cases/{case_id}/publish": Case("logged_in", lambda c: on_case(c, lambda cid: (
        f"/api/v1/cases/{cid}/publish", {})), ok=409, scoped="write"),
    "POST /api/v1/cases/{case_id}/agreement": Case("logged_in", lambda c: _then(in_mediation(c), lambda cid: (
        f"/api/v1/cases/{cid}/agreement", {"json": {"terms": "修好水管", "performance": "自行维修", "due": "一周内"}})),
        ok=201, scoped="write"),
    "GET /api/v1/cases/{case_id}/agreement.pdf": Case("logged_in", lambda c: _then(
        in_mediation(c, with_agreement=True), lambda cid: (f"/api/v1/cases/{cid}/agreement.pdf", {})), scoped="read"),
    "POST /api/v1/cases/{case_id}/agreement/signed": Case("logged_in", lambda c: _then(
        in_mediation(c, with_agreement=True), lambda cid: (
            f"/api/v1/cases/{cid}/agreement/signed", {"files": {"file": ("signed.pdf", b"%PDF-1.4 signed", "application/pdf")}})),
        ok=201, scoped="write"),
    "GET /api/v1/cases/{case_id}/ledger": Case(
        "logged_in", lambda c: on_case(c, lambda cid: (f"/api/v1/cases/{cid}/ledger", {})), scoped="read"),
    "GET /api/v1/cases/{case_id}/ledger/verify": Case(
        "logged_in", lambda c: on_case(c, lambda cid: (f"/api/v1/cases/{cid}/ledger/verify", {})), scoped="read"),
    "GET /api/v1/me/inbox": Case("logged_in", lambda c: ("/api/v1/me/inbox", {})),
    "POST /api/v1/me/inbox/read": Case("logged_in", lambda c: ("/api/v1/me/inbox/read", {"json": {"ids": [1]}})),
    "GET /api/v1/me/inbox/stream": Case("logged_in", lambda c: ("/api/v1/me/inbox/stream", {"params": {"max_s": 0.01}})),
    "POST /api/v1/me/devices": Case("logged_in", lambda c: ("/api/v1/me/devices", {"json": {
        "token": f"matrix-{__import__('uuid').uuid4()}", "platform": "android", "app_version": "1.0.0"}}), ok=204),
    "DELETE /api/v1/me/devices/{token}": Case(
        "logged_in", lambda c: ("/api/v1/me/devices/matrix-no-such-token", {}), ok=204),
    **{f"GET /api/v1/stats/{view}": Case("logged_in", lambda c, view=view: (f"/api/v1/stats/{view}", {
        "params": {"township": c.township, "from": "2026-01-01", "level": "village"}}), scoped="figures", check=own_figures)
       for view in ("summary", "tiers", "monthly", "townships", "categories", "nodes")},
    # 包案 and departments (app/routers/leadership.py).
    "GET /api/v1/departments": Case("logged_in", lambda c: ("/api/v1/departments", {})),
    "POST /api/v1/admin/departments": Case("admin", lambda c: ("/api/v1/admin/departments", {
        "json": {"code": f"m{__import__('uuid').uuid4().hex[:12]}", "name": "矩阵局"}}), ok=201),
    "PATCH /api/v1/admin/departments/{code}": Case(
        "admin", lambda c: ("/api/v1/admin/departments/health", {"json": {"active": True}})),
    "POST /api/v1/cases/{case_id}/ownership": Case("case_ownership", lambda c: on_case(c, lambda cid: (
        f"/api/v1/cases/{cid}/ownership", {"json": {"leader_person_id": 2**40, "unit": {"department_code": "petition"}}})),
        expect=lambda role, in_scope: marks_hard(role, in_scope)),
    "POST /api/v1/cases/{case_id}/duties/{duty}": Case("logged_in", lambda c: on_owned_case(c, lambda cid: (
        f"/api/v1/cases/{cid}/duties/know", {"json": {"note": "已掌握"}})),
        expect=lambda role, in_scope: owners_only(role, in_scope)),
    "GET /api/v1/me/owned": Case("logged_in", lambda c: ("/api/v1/me/owned", {})),
    "GET /api/v1/stats/report": Case("logged_in", lambda c: ("/api/v1/stats/report", {
        "params": {"township": c.township, "quarter": "2026Q1", "format": "xlsx"}}), scoped="figures"),
    # The leadership figures: a data scope as for the figures, and the county for the roles
    # that read these records county-wide already (discipline inspection, department staff).
    "GET /api/v1/stats/leadership": Case("logged_in", lambda c: ("/api/v1/stats/leadership", {
        "params": {"township": c.township, "from": "2026-01-01"}}),
        expect=lambda role, in_scope: 200 if role in ("supervisor", "department_staff") or (
            role in WITH_DATA_SCOPE and in_scope) else 403 if role in NO_NODE_SCOPE else 404),
}  # fmt: skip

# --- 联席会议 and 督办 (app/routers/meetings.py) ----------------------------------------


async def township_task(ctx: Ctx) -> tuple[int, int]:
    """A township meeting of the village's township (in scope) or another's (out), recorded
    by that township's dispatcher, with one task owned by the township: (meeting, task)."""
    from datetime import UTC, date, datetime

    from grid.leadership import meetings

    code = ctx.nodes.township if ctx.in_scope else ctx.nodes.other_township
    node = await fetch_one(ctx.db, "SELECT id, path::text AS path FROM node WHERE code = %(c)s", {"c": code})
    assert node is not None
    pid = await holder_person_id(ctx.db, ctx.village)
    member = meetings.Member(person_id=pid, county_code="610827", grants=(("dispatcher", None, node["id"]),),
                             read_paths=(node["path"],))  # fmt: skip
    task = meetings.TaskIn(title="排查", owner=meetings.Owner(township_code=code), due_on=date(2099, 1, 1))
    view = await meetings.record_meeting(conn=ctx.db, member=member, now=datetime.now(UTC), meeting=meetings.MeetingIn(
        level="township", node_code=code, held_on=date(2026, 12, 1), title="乡镇联席会议", tasks=(task,)))  # fmt: skip
    return view.meeting["id"], view.tasks[0]["id"]


# Who records a township meeting, and works on the township's tasks: its dispatchers and hall mediators.
TOWNSHIP_RECORDERS = {"dispatcher", "mediator_township_hall"}
# Who reads every meeting (scope covers the county, or discipline inspection).
MEETING_READERS = COUNTY_READERS | {"supervisor"}


def township_record(role: str, in_scope: bool, ok: int) -> int:
    """Recording on a township meeting: its recorders; readers who are not: 403; the rest: 404."""
    if role in TOWNSHIP_RECORDERS and in_scope:
        return ok
    return 403 if role in MEETING_READERS else 404


def task_read(role: str, in_scope: bool) -> int:
    return 200 if role in MEETING_READERS or (role in TOWNSHIP_RECORDERS and in_scope) else 404


def _meeting_body(c: Ctx) -> dict[str, Any]:
    return {"json": {"level": "township", "node": c.nodes.township if c.in_scope else c.nodes.other_township,
                     "held_on": "2026-12-01", "title": "乡镇联席会议"}}  # fmt: skip


async def _on_township_task(c: Ctx, build: Callable[[int, int], Request]) -> Request:
    return build(*(await township_task(c)))


CASES |= {
    "POST /api/v1/meetings": Case("meetings", lambda c: ("/api/v1/meetings", _meeting_body(c)), ok=201,
                                  expect=lambda role, in_scope: 201 if role in TOWNSHIP_RECORDERS and in_scope else 403),
    "GET /api/v1/meetings": Case("meetings", lambda c: ("/api/v1/meetings", {})),
    "GET /api/v1/meetings/{meeting_id}": Case("meetings", lambda c: _on_township_task(
        c, lambda mid, _: (f"/api/v1/meetings/{mid}", {})), expect=task_read),
    "POST /api/v1/meetings/{meeting_id}/tasks": Case("meetings", lambda c: _on_township_task(c, lambda mid, _: (
        f"/api/v1/meetings/{mid}/tasks", {"json": {"tasks": [{"title": "再排查", "due_on": "2099-01-01",
            "owner": {"township_code": c.nodes.township if c.in_scope else c.nodes.other_township}}]}})),
        ok=201, expect=lambda role, in_scope: township_record(role, in_scope, 201)),
    "GET /api/v1/tasks": Case("logged_in", lambda c: ("/api/v1/tasks", {})),
    "GET /api/v1/tasks/{task_id}": Case("logged_in", lambda c: _on_township_task(
        c, lambda _, tid: (f"/api/v1/tasks/{tid}", {})), expect=task_read),
    "POST /api/v1/tasks/{task_id}/progress": Case("logged_in", lambda c: _on_township_task(
        c, lambda _, tid: (f"/api/v1/tasks/{tid}/progress", {"json": {"note": "进展"}})), ok=201,
        expect=lambda role, in_scope: township_record(role, in_scope, 201)),
    "POST /api/v1/tasks/{task_id}/done": Case("logged_in", lambda c: _on_township_task(
        c, lambda _, tid: (f"/api/v1/tasks/{tid}/done", {"json": {}})),
        expect=lambda role, in_scope: township_record(role, in_scope, 200)),
}  # fmt: skip

# --- 坐班接访 and 积案 (app/routers/duty.py, backlog.py) --------------------------------------


async def _person(ctx: Ctx, account: Any) -> int:
    return int((await fetch_one(ctx.db, "SELECT person_id FROM user_account WHERE id = %(u)s",
                                {"u": account.user_id}))["person_id"])  # type: ignore[index]  # fmt: skip


async def _on_duty(ctx: Ctx, day: Any = None) -> Any:
    """A leader on duty on `day` (default today): the caller if they are a leader; (account, person id)."""
    from datetime import UTC, datetime

    from grid.leadership import duty

    leader = (
        ctx.account if ctx.account is not None and ctx.account.role == "leader" else await ctx.make_account("leader")
    )
    pid = await _person(ctx, leader)
    await duty.set_day(conn=ctx.db, county_code="610827", on=day or duty.today(datetime.now(UTC)), leader_person_id=pid,
                       body="government", note=None, by_person_id=pid, now=datetime.now(UTC))  # fmt: skip
    return leader, pid


async def _duty_sheet(ctx: Ctx) -> Request:
    import io

    from openpyxl import Workbook

    leader = await ctx.make_account("leader")
    book = Workbook()
    book.active.append(["日期", "领导手机号", "所属班子"])
    book.active.append(["2031-01-02", leader.phone, "县委"])
    out = io.BytesIO()
    book.save(out)
    return "/api/v1/duty/imports", {"files": {"file": ("d.xlsx", out.getvalue(), "application/octet-stream")},
                                    "data": {"dry_run": "true"}}  # fmt: skip


async def _backlog_sheet(ctx: Ctx) -> Request:
    import io

    from openpyxl import Workbook

    leader = await ctx.make_account("leader")
    book = Workbook()
    book.active.append(["事项", "类别", "所在网格编码", "包案领导手机号", "责任单位"])
    book.active.append(["矩阵积案", "neighbours", ctx.village, leader.phone, "housing"])
    out = io.BytesIO()
    book.save(out)
    return "/api/v1/backlog/imports", {"files": {"file": ("b.xlsx", out.getvalue(), "application/octet-stream")},
                                       "data": {"dry_run": "true", "label": "矩阵批"}}  # fmt: skip


async def _visit(ctx: Ctx) -> Request:
    await _on_duty(ctx)
    return "/api/v1/visits", {"json": {"visitor_name": "矩阵", "category": "neighbours", "description": "矩阵",
                                       "node_code": ctx.village},
                              "headers": {"Idempotency-Key": str(__import__("uuid").uuid4())}}  # fmt: skip


async def _decision(ctx: Ctx) -> Request:
    """A visit waiting for the duty leader (the caller, if a leader), settled on the spot."""
    import uuid
    from datetime import UTC, datetime

    from app.settings import get_settings
    from grid.cases import service as cases
    from grid.leadership import visits

    await _on_duty(ctx)
    desk = cases.Actor(await holder_person_id(ctx.db, ctx.village), counties=("610827",))
    out = await visits.register_visit(
        conn=ctx.db, actor=desk, key=uuid.uuid4(), now=datetime.now(UTC), signer=get_settings().ledger_signer(),
        county_code="610827", visit=visits.Visit(visitor_name="矩阵", visitor_phone=None, category="neighbours",
                                                 severity=2, description="矩阵", node_code=ctx.village),
    )  # fmt: skip
    return f"/api/v1/visits/{out.case['id']}/decision", {"json": {"action": "settle", "agreement_text": "当场说清"}}


async def _cleared_day(ctx: Ctx) -> Request:
    from datetime import date

    await _on_duty(ctx, date(2031, 3, 4))
    return "/api/v1/duty/2031-03-04", {}


async def _batch(ctx: Ctx) -> Request:
    from datetime import UTC, datetime

    from grid.leadership import repository as leadership_sql

    batch_id = await leadership_sql.insert_batch(ctx.db, county_code="610827", label="矩阵批", handed_down_on=None,
                                                 person_id=None, at=datetime.now(UTC))  # fmt: skip
    return f"/api/v1/backlog/batches/{batch_id}", {}


async def _reflow(ctx: Ctx) -> Request:
    """Two fresh cases in the caller's area; the earlier is no resolved backlog case, so one
    who may act on the new case and read both meets the state rule: 409."""
    earlier, new = await ctx.case_id(), await ctx.case_id()
    return f"/api/v1/cases/{new}/reflow", {"json": {"earlier_case_id": earlier, "note": "矩阵"}}


async def _leader_body(ctx: Ctx) -> Request:
    return "/api/v1/duty/2031-01-01", {"json": {"leader_person_id": await _person(ctx, await ctx.make_account("leader")),
                                                "body": "cppcc"}}  # fmt: skip


CASES.update({
    "GET /api/v1/duty": Case("logged_in", lambda c: ("/api/v1/duty", {})),
    "GET /api/v1/duty/today": Case("logged_in", lambda c: ("/api/v1/duty/today", {})),
    "PUT /api/v1/duty/{day}": Case("petition_office", _leader_body),
    "DELETE /api/v1/duty/{day}": Case("petition_office", _cleared_day, ok=204),
    "POST /api/v1/duty/imports": Case("petition_office", _duty_sheet),
    "GET /api/v1/duty/visits": Case("leadership_figures", lambda c: ("/api/v1/duty/visits", {}),
                                    expect=lambda role, in_scope: 200),
    "POST /api/v1/visits": Case("reception", _visit, ok=201, expect=lambda role, in_scope: 201),
    "POST /api/v1/visits/{case_id}/decision": Case("duty_leader", _decision, expect=lambda role, in_scope: 200),
    "POST /api/v1/backlog/imports": Case("petition_office", _backlog_sheet),
    "GET /api/v1/backlog/batches": Case("leadership_figures", lambda c: ("/api/v1/backlog/batches", {}),
                                        expect=lambda role, in_scope: 200),
    "GET /api/v1/backlog/batches/{batch_id}": Case("leadership_figures", _batch, expect=lambda role, in_scope: 200),
    "POST /api/v1/cases/{case_id}/reflow": Case("reflow", _reflow, ok=409, scoped="write"),
})  # fmt: skip

# --- the county centre, the hall's team, social assistance (tests/api/test_centre.py) ----------


async def centre_case(ctx: Ctx, *, joint: str | None = None, party: bool = False) -> int:
    """A fresh severity-4 case, routed to the county centre (handled on the county node,
    located in `village` or `other_village`); with `joint`, that department co-handles it;
    with `party`, it has one party."""
    import uuid
    from datetime import UTC, datetime

    from app.accounts.service import ROOMS
    from app.settings import get_settings
    from geo.crs import CRS
    from grid.cases import service as cases

    code = ctx.nodes.household if ctx.in_scope else ctx.nodes.other_household
    lon, lat = ctx.nodes.points[code]
    report = cases.Report(lon=lon, lat=lat, crs=CRS.wgs84, category="neighbours", severity=4, description="矩阵",
                          parties=(cases.Party("李四", None, "申请人"),) if party else ())  # fmt: skip
    out = await cases.submit_report(conn=ctx.db, actor=cases.Actor(await holder_person_id(ctx.db, code), counties=("610827",)),
                                    key=uuid.uuid4(), report=report, now=datetime.now(UTC),
                                    signer=get_settings().ledger_signer(), rooms=ROOMS, county_code="610827")  # fmt: skip
    case_id = out.case["id"]
    if joint is not None:
        await ctx.db.execute(
            "INSERT INTO case_unit (case_id, county_code, part, department_id, task, created_at)"
            " SELECT %(c)s, county_code, 'joint', id, '矩阵', now() FROM department WHERE code = %(d)s",
            {"c": case_id, "d": joint},
        )
    return case_id


async def with_party(ctx: Ctx) -> int:
    """A fresh case (Ctx.case_id) with one party, to refer to assistance."""
    case_id = await ctx.case_id()
    await ctx.db.execute(
        "INSERT INTO case_party (case_id, county_code, name, role) VALUES (%(c)s, '610827', '李四', '申请人')",
        {"c": case_id},
    )
    return case_id


async def team_member(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    township = ctx.nodes.township if ctx.in_scope else ctx.nodes.other_township
    row = await fetch_one(
        ctx.db,
        "INSERT INTO hall_member (node_id, county_code, name, kind, created_at)"
        " SELECT id, county_code, '矩阵', 'cadre', now() FROM node"
        " WHERE code = %(t)s RETURNING id",
        {"t": township},
    )
    assert row is not None
    return f"/api/v1/grid/nodes/{township}/team/{row['id']}", {"json": {"kind": "police"}}


def _reads_centre(role: str, in_scope: bool) -> bool:
    """Who reads a county-centre case located in `village`: county readers, discipline
    inspection, and the roles whose scope holds the located node."""
    return role in COUNTY_READERS or role == "supervisor" or (role in WITH_DATA_SCOPE and in_scope)


def _centre_mediators_only(ok: int) -> Callable[[str, bool], int]:
    return lambda role, in_scope: (
        ok if role == "mediator_county_center" else 403 if _reads_centre(role, in_scope) else 404
    )


def _hall_editors(ok: int) -> Callable[[str, bool], int]:
    """The township's dispatchers and its hall's mediators edit its team; nobody else (not secret: 403)."""
    return lambda role, in_scope: ok if role in ("dispatcher", "mediator_township_hall") and in_scope else 403


CENTRE_CASES: dict[str, Case] = {
    "POST /api/v1/cases/{case_id}/joint": Case("logged_in", lambda c: _then(centre_case(c), lambda cid: (
        f"/api/v1/cases/{cid}/joint", {"json": {"department_code": "justice", "task": "出具法律意见"}})), ok=201,
        expect=_centre_mediators_only(201)),
    # Reaches the domain only as department_staff (of 信访局, a joint unit of the case here).
    "POST /api/v1/cases/{case_id}/joint/{department_code}/done": Case("department_desk", lambda c: _then(
        centre_case(c, joint="petition"), lambda cid: (f"/api/v1/cases/{cid}/joint/petition/done",
                                                       {"json": {"note": "完成"}})), expect=lambda r, s: 200),
    "POST /api/v1/cases/{case_id}/supervision": Case("supervision", lambda c: _then(centre_case(c), lambda cid: (
        f"/api/v1/cases/{cid}/supervision", {"json": {"note": "请报告进展"}})), ok=204, expect=lambda r, s: 204),
    "GET /api/v1/supervision/cases": Case("supervision", lambda c: ("/api/v1/supervision/cases", {}),
                                          expect=lambda r, s: 200),
    "GET /api/v1/grid/nodes/{code}/team": Case("logged_in", lambda c: (
        f"/api/v1/grid/nodes/{c.nodes.township if c.in_scope else c.nodes.other_township}/team", {})),
    "POST /api/v1/grid/nodes/{code}/team": Case("logged_in", lambda c: (
        f"/api/v1/grid/nodes/{c.nodes.township if c.in_scope else c.nodes.other_township}/team",
        {"json": {"name": "矩阵", "kind": "cadre"}}), ok=201, expect=_hall_editors(201)),
    "PATCH /api/v1/grid/nodes/{code}/team/{member_id}": Case("logged_in", team_member, expect=_hall_editors(200)),
    "POST /api/v1/cases/{case_id}/referrals": Case("logged_in", lambda c: _then(with_party(c), lambda cid: (
        f"/api/v1/cases/{cid}/referrals", {"json": {"party": "1", "type": "medical"}})), ok=201, scoped="write"),
    # 民政局's desk: other departments' staff (信访局 here) are refused by the domain; tests/api/test_centre.py
    # shows 民政局's own answers.
    "GET /api/v1/referrals": Case("department_desk", lambda c: ("/api/v1/referrals", {}), expect=lambda r, s: 403),
    "POST /api/v1/referrals/{referral_id}/outcome": Case("department_desk", lambda c: (
        "/api/v1/referrals/1/outcome", {"json": {"outcome": "approved"}}), expect=lambda r, s: 403),
    "GET /api/v1/referrals/summary": Case("assistance_stats", lambda c: ("/api/v1/referrals/summary", {}),
                                          expect=lambda r, s: 200),
}  # fmt: skip
CASES.update(CENTRE_CASES)

# Who may act on a case in their area: its holders, dispatchers and mediators; a leader reads only.
ACTORS = WITH_DATA_SCOPE - {"leader"}


_APP = create_app(Settings(database_url="postgresql://unused/unused"))  # routes only; never connects
ROUTES = [f"{m} {r.path}" for r in policy.api_routes(_APP) for m in sorted(r.methods - {"HEAD", "OPTIONS"})]
# The roles each policy admits (empty: any account); the rest is the domain's to say.
POLICY_ROLES = {p.name: p.roles for r in policy.api_routes(_APP) if (p := policy.policy_of(r)) is not None}
MATRIX = [
    pytest.param(route, role, scope, id=f"{route}|{role}|{scope}")
    for route in ROUTES
    for role in ROLES
    for scope in ("in", "out")
    if not (scope == "out" and (role in COUNTY_WIDE or role == "anonymous"))
]


def base_role(kind: str) -> str:
    return "mediator" if kind.startswith("mediator_") else kind


def expected_status(case: Case, role: str, in_scope: bool) -> int:
    if role == "anonymous":
        return case.anonymous if case.policy == "public" else 401
    allowed = POLICY_ROLES[case.policy]
    if allowed and base_role(role) not in allowed:
        return 403
    if case.expect is not None:
        return case.expect(role, in_scope)
    if case.policy == "admin":
        return case.ok
    readable = role in WITH_DATA_SCOPE and in_scope
    if case.scoped == "read":
        return case.ok if readable else 404
    if case.scoped == "figures":
        # No node scope at all (admin and the leadership's desk roles): 403 no_data_scope.
        return case.ok if readable else 403 if role in NO_NODE_SCOPE else 404
    if case.scoped == "write":
        return case.ok if role in ACTORS and in_scope else 403 if readable else 404
    # Boundaries and names are open to every logged-in user; personal data inside
    # the answer is filtered by scope, which `check` verifies.
    return case.ok


def test_every_route_declares_a_policy_and_has_a_matrix_row():
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    for route in policy.api_routes(app):
        declared = policy.policy_of(route)
        for method in route.methods - {"HEAD", "OPTIONS"}:
            key = f"{method} {route.path}"
            assert declared is not None, f"{key} declares no access policy (app/policy.py)"
            assert key in CASES, f"{key} has no row in the authorization matrix (CASES)"
            assert CASES[key].policy == declared.name, (
                f"{key} declares {declared.name}, the matrix expects {CASES[key].policy}"
            )
    assert set(CASES) == set(ROUTES), f"matrix rows for routes that no longer exist: {set(CASES) - set(ROUTES)}"


def test_a_route_without_a_policy_stops_the_app_from_starting(settings):
    from fastapi import APIRouter

    from app import main

    stray = APIRouter(prefix="/api/v1/stray")
    stray.add_api_route("/open", lambda: {"oops": True}, methods=["GET"])
    original = main.health.router
    try:
        main.health.router = stray  # included like any router
        with pytest.raises(RuntimeError, match="/api/v1/stray/open"):
            create_app(settings)
    finally:
        main.health.router = original


@pytest.mark.parametrize(("route", "role", "scope"), MATRIX)
async def test_matrix(route, role, scope, client, make_account, demo_nodes, db):
    case = CASES.get(route)
    assert case is not None, f"{route} has no row in the authorization matrix (CASES)"
    account = None if role == "anonymous" else await make_account(role)
    ctx = Ctx(client=client, account=account, nodes=demo_nodes, make_account=make_account, in_scope=scope == "in",
              db=db)  # fmt: skip
    request = case.request(ctx)
    url, kwargs = await request if inspect.isawaitable(request) else request
    headers = {**(account.headers if account and case.policy != "public" else {}), **kwargs.pop("headers", {})}
    r = await client.request(route.split(" ")[0], url, headers=headers, **kwargs)
    want = expected_status(case, role, ctx.in_scope)
    assert r.status_code == want, f"{route} as {role} ({scope} scope): {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"code", "message", "details"}
    elif case.check and account is not None:
        case.check(ctx, r)


# The city (市级), granted on the county's root: it reads the figures and the map (the
# township's figures, nodes, cases and their list, locate) like a county leader, and any
# write is 403 whatever the route's own rule; role doors it does not hold stay shut.
CITY_CASES = {
    "GET /api/v1/stats/summary": 200, "GET /api/v1/stats/townships": 200, "GET /api/v1/stats/nodes": 200,
    "GET /api/v1/grid/locate": 200, "GET /api/v1/grid/nodes/{code}": 200, "GET /api/v1/grid/nodes/{code}/posts": 200,
    "GET /api/v1/cases": 200, "GET /api/v1/cases/{case_id}": 200, "GET /api/v1/me": 200,
    "POST /api/v1/reports": 403, "POST /api/v1/cases/{case_id}/actions": 403,
    "PUT /api/v1/cases/{case_id}/sections/{section}": 403, "POST /api/v1/me/devices": 403,
    "POST /api/v1/admin/users": 403, "GET /api/v1/admin/users": 403, "POST /api/v1/meetings": 403,
    "GET /api/v1/stats/leadership": 200,
}  # fmt: skip


@pytest.mark.parametrize(("route", "want"), CITY_CASES.items(), ids=list(CITY_CASES))
async def test_city_matrix(route, want, client, settings, demo_nodes, db, make_account):
    from app.accounts import service

    phone = "19600000017"
    await service.create_user(conn=db, settings=settings, county_code=demo_nodes.county, phone=phone, name="测试市级",
                              password=PASSWORD, grants=[service.GrantIn(role="city", node_code=demo_nodes.county)],
                              actor=None, ip=None)  # fmt: skip
    r = await client.post("/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    ctx = Ctx(client=client, account=None, nodes=demo_nodes, make_account=make_account, in_scope=True, db=db)
    request = CASES[route].request(ctx)
    url, kwargs = await request if inspect.isawaitable(request) else request
    r = await client.request(route.split(" ")[0], url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
    assert r.status_code == want, f"{route} as city: {r.status_code} {r.text[:300]}"
    if want == 403 and route.split(" ")[0] != "GET":
        assert "市级" in r.json()["error"]["message"]
