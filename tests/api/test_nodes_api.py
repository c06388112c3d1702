"""Reading the grid: nodes, children, posts, pages; and the one error shape."""

from datetime import UTC, datetime

from grid import service


async def test_a_node_is_a_geojson_feature_with_its_path(api, loaded_county):
    village = next(n for n in loaded_county.nodes if n.level == "village")
    r = await api.get(f"/api/v1/grid/nodes/{village.code}")
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == village.code
    assert f["geometry"]["type"] == "MultiPolygon"
    assert f["properties"]["level_name"] == "村" and f["properties"]["chain"] == "rural"
    assert f["properties"]["path"][0] == "610827" and f["properties"]["path"][-1] == village.code
    assert len(f["properties"]["path"]) == 5


async def test_a_floor_shows_its_units_footprint(api, loaded_county):
    floor = next(n for n in loaded_county.nodes if n.level == "floor")
    unit = next(n for n in loaded_county.nodes if n.code == floor.parent_code)
    f = (await api.get(f"/api/v1/grid/nodes/{floor.code}")).json()
    ring = f["geometry"]["coordinates"][0][0]
    assert len(ring) == len(unit.geom.geoms[0].exterior.coords)
    assert f["properties"]["floor_from"] == floor.floor_from


async def test_children_are_listed_in_code_order(api, loaded_county):
    kids = sorted(n.code for n in loaded_county.nodes if n.parent_code == "610827")
    body = (await api.get("/api/v1/grid/nodes/610827/children")).json()
    assert [k["code"] for k in body["items"]] == kids and len(kids) == 9
    assert all(k["level"] == "township" for k in body["items"])


async def test_pages_walk_every_node_of_a_level_once(api, loaded_county):
    expected = sorted(n.code for n in loaded_county.nodes if n.level == "village")
    seen, cursor = [], None
    while True:
        params = {"level": "village", "limit": 70} | ({"cursor": cursor} if cursor else {})
        body = (await api.get("/api/v1/grid/nodes", params=params)).json()
        seen += [n["code"] for n in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_bbox_and_parent_filters(api, loaded_county):
    township = next(n for n in loaded_county.nodes if n.level == "township")
    x0, y0, _x1, _y1 = township.geom.bounds
    body = (await api.get("/api/v1/grid/nodes", params={"level": "area", "parent": township.code})).json()
    assert body["items"] and all(i["parent_code"] == township.code for i in body["items"])
    tiny = f"{x0},{y0},{x0 + 0.001},{y0 + 0.001}"
    few = (await api.get("/api/v1/grid/nodes", params={"level": "household", "bbox": tiny})).json()["items"]
    assert len(few) < 20


async def test_posts_show_current_and_past_holders(api, db, loaded_county):
    village = next(n for n in loaded_county.nodes if n.level == "village")
    before = (await api.get(f"/api/v1/grid/nodes/{village.code}/posts")).json()
    old = next(p for p in before["current"] if p["role"] == "chief")
    await service.hand_over(conn=db, county_code="610827", node_code=village.code, name="接任者", phone="13900000009",
                            at=datetime.now(UTC))  # fmt: skip
    after = (await api.get(f"/api/v1/grid/nodes/{village.code}/posts")).json()
    assert [p["name"] for p in after["current"] if p["role"] == "chief"] == ["接任者"]
    assert old["id"] in [p["id"] for p in after["past"]]


async def test_unknown_node_is_404_in_the_one_error_shape(api):
    r = await api.get("/api/v1/grid/nodes/NOPE/children")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "node_not_found", "message": "没有编码为“NOPE”的网格节点，请核对编码",
                                  "details": {"code": "NOPE"}}}  # fmt: skip


async def test_bad_filters_are_422_with_a_message(api):
    for params, word in [({"bbox": "1,2,3"}, "四个数字"), ({"bbox": "5,5,1,1"}, "最小经度"),
                         ({"level": "street"}, "不认识的层级“street”"), ({"limit": 0}, "查询参数“limit”：应不小于 1")]:  # fmt: skip
        r = await api.get("/api/v1/grid/nodes", params=params)
        assert r.status_code == 422 and word in r.json()["error"]["message"], (params, r.text)


async def test_unknown_routes_and_methods_use_the_error_shape(api):
    r = await api.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.post("/api/v1/grid/locate")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_health_and_readiness_need_no_login(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert (await client.get("/docs")).status_code == 200
    assert "/api/v1/grid/locate" in (await client.get("/openapi.json")).json()["paths"]


async def test_a_nul_character_is_refused_with_a_message(api):
    for url in ["/api/v1/grid/nodes?parent=%00", "/api/v1/grid/nodes/61%0027/children"]:
        r = await api.get(url)
        assert r.status_code == 422 and "NUL" in r.json()["error"]["message"], r.text
