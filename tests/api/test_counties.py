"""Two counties in one deployment (issue 15 §1): each county's users never see the other's
cases, nodes, tiles, figures or accounts (404, or absent from lists), cannot report a point
in the other, and the city (市级) reads both counties' figures and map and writes nothing.

The second county (绥德县) is loaded once, into a database of this module's own made from
the template (which keeps one county, for speed); each test then runs in a rolled-back
transaction on it, as everywhere else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.accounts import service as accounts
from app.accounts.service import ROOMS
from app.settings import get_settings, libpq_url
from geo import demo
from geo.crs import CRS
from grid import service as grid_service
from grid.cases import service as cases
from grid.db import connect, fetch_value
from grid.leadership import departments
from tests.api.test_tiles_api import tile_of
from tests.conftest import PASSWORD, app_url, create_database, drop_database, holder_person_id, settings_for_tests

A, B = demo.MIZHI, demo.SUIDE
_phones = iter(range(10**6))


@pytest.fixture(scope="module")
def suide() -> demo.DemoCounty:
    return demo.generate(scale=1, code=B.code, name=B.name, centre=B.centre)


@pytest.fixture(scope="module")
async def two_county_url(template_url, suide):
    """A database of this module's own: the template's 米脂县 and 绥德县, committed once."""
    url = create_database("wuzhang_counties", template=template_url)
    try:
        async with await connect(libpq_url(url)) as conn, conn.transaction():
            await grid_service.load_county(conn=conn, county_code=B.code, nodes=suide.nodes, posts=suide.posts)
            await departments.ensure_standard(conn=conn, county_code=B.code)
        yield url
    finally:
        drop_database(url)


@pytest.fixture
async def db(two_county_url):
    """The rolled-back connection of tests/conftest.py, on the two-county database."""
    conn = await connect(libpq_url(app_url(two_county_url)))
    try:
        async with conn.transaction(force_rollback=True):
            yield conn
    finally:
        await conn.close()


@pytest.fixture
def settings(two_county_url):
    return settings_for_tests(app_url(two_county_url))


@pytest.fixture
def two_counties(suide):
    return suide


def first_household(county: demo.DemoCounty) -> tuple[str, tuple[float, float]]:
    node = next(n for n in county.nodes if n.level == "household")
    p = node.geom.point_on_surface()
    return node.code, (p.x, p.y)


async def login(client, db, settings, *, county: str, role: str | None, node: str | None = None,
                grants: list | None = None, phone: str | None = None) -> dict[str, str]:  # fmt: skip
    """A user of `county` (granted `role` on `node`, or the chief with `phone`), logged in."""
    if phone is None:
        phone = f"1971{next(_phones):07d}"
        grants = grants if grants is not None else [accounts.GrantIn(role=role or "", node_code=node or county)]
    await accounts.create_user(conn=db, settings=settings, county_code=county, phone=phone, name="测试",
                               password=PASSWORD, grants=grants or [], actor=None, ip=None)  # fmt: skip
    r = await client.post("/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def report_in(db, county: demo.DemoPlace, household: str, point: tuple[float, float], severity: int = 2) -> int:
    """A case reported by the household's chief in their own county (severity 4: the county centre's)."""
    reporter = await holder_person_id(db, household)
    out = await cases.submit_report(
        conn=db, actor=cases.Actor(reporter, counties=(county.code,)), key=uuid.uuid4(), now=datetime.now(UTC),
        report=cases.Report(lon=point[0], lat=point[1], crs=CRS.wgs84, category="neighbours", severity=severity,
                            description="两县测试"),
        signer=get_settings().ledger_signer(), rooms=ROOMS, county_code=county.code,
    )  # fmt: skip
    return int(out.case["id"])


async def test_two_counties_never_see_each_other(client, db, settings, loaded_county, two_counties):
    a_house, a_point = first_household(loaded_county)
    b_house, b_point = first_household(two_counties)
    a_case, b_case = await report_in(db, A, a_house, a_point), await report_in(db, B, b_house, b_point)
    a_leader = await login(client, db, settings, county=A.code, role="leader")
    b_leader = await login(client, db, settings, county=B.code, role="leader")
    # 纪检监督 reads every county-centre case, by a rule without node paths: of its own county only.
    a_hard, b_hard = await report_in(db, A, a_house, a_point, 4), await report_in(db, B, b_house, b_point, 4)
    a_supervisor = await login(client, db, settings, county=A.code, role="supervisor")
    assert (await client.get(f"/api/v1/cases/{a_hard}", headers=a_supervisor)).status_code == 200
    assert (await client.get(f"/api/v1/cases/{b_hard}", headers=a_supervisor)).status_code == 404
    listed = [c["id"] for c in (await client.get("/api/v1/cases", headers=a_supervisor)).json()["items"]]
    assert a_hard in listed and b_hard not in listed
    # The tiles over each county's household at z14 touch only that county.
    a_tile, b_tile = (
        "/tiles/grid/{}/{}/{}.mvt".format(*tile_of(*a_point, 14)),
        "/tiles/cases/{}/{}/{}.mvt".format(*tile_of(*b_point, 14)),
    )

    for mine, case, other_case, node, other_node, tile, other_tile in (
        (a_leader, a_case, b_case, A.code, B.code, a_tile, b_tile),
        (b_leader, b_case, a_case, B.code, A.code, b_tile, a_tile),
    ):
        # Its own: readable, so a 404 below is the county rule, not a broken request.
        assert (await client.get(f"/api/v1/cases/{case}", headers=mine)).status_code == 200
        assert (await client.get(f"/api/v1/grid/nodes/{node}", headers=mine)).status_code == 200
        assert (await client.get(tile, headers=mine)).status_code == 200
        for url in (f"/api/v1/cases/{other_case}", f"/api/v1/cases/{other_case}/ledger",
                    f"/api/v1/grid/nodes/{other_node}", f"/api/v1/grid/nodes/{other_node}/children",
                    f"/api/v1/grid/nodes/{other_node}/posts", other_tile):  # fmt: skip
            r = await client.get(url, headers=mine)
            assert r.status_code == 404, (url, r.status_code, r.text[:200])
            assert set(r.json()["error"]) == {"code", "message", "details"}
        # Writes on the other county's case: the same 404, and nothing written.
        r = await client.post(f"/api/v1/cases/{other_case}/actions", headers=mine, json={"action": "accept"})
        assert r.status_code == 404, r.text

        # Lists never hold the other county's rows.
        ids = [c["id"] for c in (await client.get("/api/v1/cases", headers=mine)).json()["items"]]
        assert case in ids and other_case not in ids
        counties = (await client.get("/api/v1/grid/nodes", headers=mine, params={"level": "county"})).json()
        assert [n["code"] for n in counties["items"]] == [node]
        towns = (await client.get("/api/v1/stats/townships", headers=mine)).json()["items"]
        assert towns and all(t["code"].startswith(node) for t in towns), towns
        box = ",".join(map(str, (109.9, 37.2, 110.5, 37.95)))  # both counties
        shapes = (await client.get("/api/v1/grid/nodes.geojson", headers=mine,
                                   params={"bbox": box, "level": "county"})).json()  # fmt: skip
        assert [f["id"] for f in shapes["features"]] == [node]


async def test_a_point_in_the_other_county_is_refused_in_chinese_and_writes_nothing(
    client, db, settings, loaded_county, two_counties
):
    a_house, a_point = first_household(loaded_county)
    _, b_point = first_household(two_counties)
    from tests.conftest import current_chief_phone

    chief = await login(
        client, db, settings, county=A.code, role=None, phone=current_chief_phone(loaded_county, a_house)
    )
    before = await fetch_value(db, "SELECT count(*) FROM case_file")
    r = await client.post("/api/v1/reports", headers=chief | {"Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": b_point[0], "lat": b_point[1], "category": "neighbours", "severity": 2,
                                "description": "在邻县"})  # fmt: skip
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (
        error["code"] == "outside_jurisdiction"
        and B.name in error["message"]
        and error["details"]["county_code"] == B.code
    )
    assert await fetch_value(db, "SELECT count(*) FROM case_file") == before
    # Locating it answers the same; a point of its own county still locates.
    r = await client.get("/api/v1/grid/locate", headers=chief, params={"lon": b_point[0], "lat": b_point[1]})
    assert r.status_code == 422 and B.name in r.json()["error"]["message"], r.text
    r = await client.get("/api/v1/grid/locate", headers=chief, params={"lon": a_point[0], "lat": a_point[1]})
    assert r.status_code == 200 and r.json()["node"]["code"] == a_house


async def test_a_county_admin_manages_only_its_own_accounts(client, db, settings, two_counties):
    a_admin = await login(client, db, settings, county=A.code, role="admin")
    b_admin = await login(client, db, settings, county=B.code, role="admin")
    b_user = int(await fetch_value(db, "SELECT max(id) FROM user_account WHERE county_code = %(c)s", {"c": B.code}))
    listed = [u["id"] for u in (await client.get("/api/v1/admin/users", headers=a_admin)).json()["items"]]
    assert listed and b_user not in listed
    assert (await client.get(f"/api/v1/admin/users/{b_user}", headers=a_admin)).status_code == 404
    assert (await client.get(f"/api/v1/admin/users/{b_user}", headers=b_admin)).status_code == 200
    r = await client.post(f"/api/v1/admin/users/{b_user}/disable", headers=a_admin)
    assert r.status_code == 404, r.text
    # B's audit log holds B's reads (the user read above), not A's listing of its own users.
    actions = [a["action"] for a in (await client.get("/api/v1/audit", headers=b_admin)).json()["items"]]
    assert "admin.user_read" in actions and "admin.user_list" not in actions, actions
    # A grant on the other county's node is refused: not found, as a node that does not exist.
    r = await client.post("/api/v1/admin/users", headers=a_admin, json={
        "phone": "19700000001", "name": "越界", "grants": [{"role": "leader", "node_code": B.code}]})  # fmt: skip
    assert r.status_code == 404, r.text


async def test_the_city_reads_both_counties_and_writes_nothing(client, db, settings, loaded_county, two_counties):
    grants = [accounts.GrantIn(role="city", node_code=A.code), accounts.GrantIn(role="city", node_code=B.code)]
    city = await login(client, db, settings, county=A.code, role=None, grants=grants)
    a_house, a_point = first_household(loaded_county)
    b_house, b_point = first_household(two_counties)
    a_case, b_case = await report_in(db, A, a_house, a_point), await report_in(db, B, b_house, b_point)

    towns = (await client.get("/api/v1/stats/townships", headers=city)).json()["items"]
    assert {t["code"][:6] for t in towns} == {A.code, B.code}, towns
    assert len(towns) == 18  # nine townships in each
    summary = (await client.get("/api/v1/stats/summary", headers=city)).json()
    assert summary["received"] >= 2, summary
    for code, case, point in ((A.code, a_case, a_point), (B.code, b_case, b_point)):
        assert (await client.get(f"/api/v1/grid/nodes/{code}", headers=city)).status_code == 200
        assert (await client.get(f"/api/v1/cases/{case}", headers=city)).status_code == 200
        r = await client.get("/tiles/cases/{}/{}/{}.mvt".format(*tile_of(*point, 14)), headers=city)
        assert r.status_code == 200 and r.content, code
        r = await client.get("/api/v1/grid/locate", headers=city, params={"lon": point[0], "lat": point[1]})
        assert r.status_code == 200 and r.json()["chain"][-1]["code"] == code, r.text
    ids = [c["id"] for c in (await client.get("/api/v1/cases", headers=city)).json()["items"]]
    assert {a_case, b_case} <= set(ids)

    # Every write is refused, whatever the route's own rule.
    for method, url, body in (
        ("POST", "/api/v1/reports", {"lon": a_point[0], "lat": a_point[1], "category": "neighbours", "severity": 2,
                                     "description": "市级"}),
        ("POST", f"/api/v1/cases/{a_case}/actions", {"action": "accept"}),
        ("PUT", f"/api/v1/cases/{b_case}/sections/facts", {"body": "市级"}),
        ("POST", "/api/v1/me/devices", {"token": "x" * 40, "platform": "android"}),
    ):  # fmt: skip
        r = await client.request(method, url, headers=city | {"Idempotency-Key": str(uuid.uuid4())}, json=body)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["error"]["code"] == "forbidden" and "市级" in r.json()["error"]["message"]
    assert await fetch_value(db, "SELECT count(*) FROM case_event WHERE case_id = ANY(%(i)s) AND action = 'accept'",
                             {"i": [a_case, b_case]}) == 0  # fmt: skip


async def test_a_county_admin_cannot_grant_the_city_role(db, settings, two_counties):
    from app.accounts.exceptions import InvalidGrant
    from app.accounts.scope import Principal

    admin = Principal(user_id=1, county_code=A.code, person_id=1, name="x", phone="1")
    with pytest.raises(InvalidGrant, match="命令行"):
        await accounts.create_user(conn=db, settings=settings, county_code=A.code, phone="19700000002", name="市",
                                   password=PASSWORD, grants=[accounts.GrantIn(role="city", node_code=B.code)],
                                   actor=admin, ip=None)  # fmt: skip


async def test_the_second_county_and_city_demo_accounts_log_in_and_match_the_readme(client, db, settings, two_counties):
    from app.accounts import demo as demo_accounts
    from tests.api.test_demo_accounts import readme_rows

    codes = [p.code for p in demo.DEMO_PLACES]
    accounts_, created = await demo_accounts.ensure_second(conn=db, settings=settings, county_code=B.code,
                                                          city_counties=codes)  # fmt: skip
    assert created == len(accounts_) == 5
    assert (await demo_accounts.ensure_second(conn=db, settings=settings, county_code=B.code,
                                              city_counties=codes))[1] == 0  # fmt: skip
    password, _, rows = readme_rows()
    assert rows == [(a.title, a.node_code, a.node_name, a.phone) for a in accounts_]
    for a in accounts_:
        r = await client.post("/api/v1/auth/token", data={"username": a.phone, "password": password})
        assert r.status_code == 200, (a.title, r.text)
        me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
        assert me["roles"] == ([a.grant.role] if a.grant else ["chief"]), a.title
    assert sorted(s["node"]["code"] for s in me["scopes"]) == sorted(codes)  # the city's, last


async def test_an_import_naming_the_other_countys_node_is_refused_and_writes_nothing(
    client, db, settings, two_counties
):
    import json

    village = next(n for n in two_counties.nodes if n.level == "village")
    a_admin = await login(client, db, settings, county=A.code, role="admin")
    feature = {"type": "Feature", "geometry": json.loads(json.dumps(village.geom.__geo_interface__)),
               "properties": {"code": village.code, "name": "改名", "level": "village", "chain": "rural",
                              "parent_code": village.parent_code}}  # fmt: skip
    body = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    r = await client.post("/api/v1/grid/imports", headers=a_admin,
                          files={"file": ("v.geojson", body, "application/geo+json")})  # fmt: skip
    assert r.status_code == 422, r.text
    problems = r.json()["error"]["details"]["report"]["problems"]
    assert ("other_county", village.code) in [(p["check"], p["code"]) for p in problems]
    assert await fetch_value(db, "SELECT name FROM node WHERE code = %(c)s", {"c": village.code}) == village.name
    # The roster too: a post on the other county's node is a bad row, nothing written.
    csv = f"node_code,role,name,phone,start_date\n{village.code},deputy,越界,13700000099,2024-01-01\n"
    r = await client.post(
        "/api/v1/roster/imports", headers=a_admin, files={"file": ("r.csv", csv.encode(), "text/csv")}
    )
    assert r.status_code in (200, 422) and r.json().get("imported", 0) == 0, r.text
    assert await fetch_value(db, "SELECT count(*) FROM person WHERE phone = '13700000099'") == 0
