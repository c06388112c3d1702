"""GET /api/v1/grid/locate: the chain of chiefs for a point, or a clear 422."""

import pytest
from shapely import Point

from geo.crs import gcj02_to_bd09, wgs84_to_gcj02

URBAN = ["floor", "unit", "grid", "community", "area", "township", "county"]
RURAL = ["household", "group", "village", "subarea", "area", "township", "county"]


def inside(county, level, index=0, *, with_floors=False):
    nodes = [n for n in county.nodes if n.level == level]
    if with_floors:
        has_floors = {n.parent_code for n in county.nodes if n.level == "floor"}
        nodes = [n for n in nodes if n.code in has_floors]
    node = nodes[index]
    p = node.geom.point_on_surface()
    return node, p.x, p.y


async def test_an_urban_point_with_a_floor_gets_seven_levels(api, loaded_county):
    unit, lon, lat = inside(loaded_county, "unit", with_floors=True)
    floor = next(n for n in loaded_county.nodes if n.parent_code == unit.code and n.floor_from <= 3 <= n.floor_to)
    r = await api.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat, "floor": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [link["level"] for link in body["chain"]] == URBAN
    assert body["node"]["code"] == floor.code
    assert body["chain"][1]["code"] == unit.code
    assert body["chain"][-1]["code"] == "610827"
    assert body["chain"][3]["level_name"] == "社区"
    chief = body["chain"][0]["chiefs"][0]
    assert chief["role"] == "chief" and chief["name"] and len(chief["phone"]) == 11


async def test_a_rural_point_gets_seven_levels_down_to_the_central_household(api, loaded_county):
    household, lon, lat = inside(loaded_county, "household", 123)
    body = (await api.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat})).json()
    assert [link["level"] for link in body["chain"]] == RURAL
    assert body["node"]["code"] == household.code
    assert all(link["chain"] == "rural" for link in body["chain"][:5])
    village = body["chain"][2]
    assert {h["role"] for h in village["chiefs"]} == {"chief", "deputy"}


async def test_without_floor_the_unit_is_the_deepest(api, loaded_county):
    unit, lon, lat = inside(loaded_county, "unit", 5, with_floors=True)
    body = (await api.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat})).json()
    assert body["node"]["code"] == unit.code and len(body["chain"]) == 6


async def test_a_floor_above_the_building_falls_back_to_the_unit_with_a_warning(api, loaded_county):
    unit, lon, lat = inside(loaded_county, "unit", 7, with_floors=True)
    body = (await api.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat, "floor": 99})).json()
    assert body["node"]["code"] == unit.code
    assert "99" in body["warnings"][0]


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
async def test_phone_sdk_coordinates_are_converted_before_routing(api, loaded_county, crs):
    household, lon, lat = inside(loaded_county, "household", 2000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    sent = (glon, glat) if crs == "gcj02" else gcj02_to_bd09(glon, glat)
    body = (await api.get("/api/v1/grid/locate", params={"lon": sent[0], "lat": sent[1], "crs": crs})).json()
    assert body["node"]["code"] == household.code
    assert body["point"]["crs"] == "wgs84"
    assert abs(body["point"]["lon"] - lon) < 2e-5 and abs(body["point"]["lat"] - lat) < 2e-5
    # Sent as if it were GPS, the same numbers land hundreds of metres away: the wrong leaf.
    wrong = (await api.get("/api/v1/grid/locate", params={"lon": sent[0], "lat": sent[1]})).json()
    assert wrong.get("node", {}).get("code") != household.code


async def test_a_point_on_a_shared_vertex_routes_to_the_lowest_code(api, loaded_county):
    household, _, _ = inside(loaded_county, "household", 40)
    siblings = [n for n in loaded_county.nodes if n.parent_code == household.parent_code]
    # A vertex of this household that another household also has.
    for x, y in household.geom.geoms[0].exterior.coords:
        sharing = sorted(n.code for n in loaded_county.leaf_polygons if n.geom.covers(Point(x, y)))
        if len(sharing) > 1:
            break
    else:
        pytest.fail(f"no shared vertex among {len(siblings)} siblings")
    body = (await api.get("/api/v1/grid/locate", params={"lon": x, "lat": y})).json()
    assert body["node"]["code"] == sharing[0]


async def test_a_point_outside_the_county_is_422_outside_jurisdiction(api):
    r = await api.get("/api/v1/grid/locate", params={"lon": 116.39, "lat": 39.91})  # Beijing
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "outside_jurisdiction"
    assert "米脂县" in err["message"] and "gcj02" in err["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"lon": "abc", "lat": "37.7"},
        {"lon": "110.2"},
        {"lon": "nan", "lat": "37.7"},
        {"lon": "inf", "lat": "37.7"},
        {"lon": "190", "lat": "37.7"},
        {"lon": "110.2", "lat": "-91"},
        {"lon": "110.2", "lat": "37.7", "crs": "mars"},
        {"lon": "110.2", "lat": "37.7", "floor": "third"},
        {"lon": "110.2", "lat": "37.7", "floor": "100000"},
        {"lon": "1e400", "lat": "37.7"},
    ],
)
async def test_garbage_parameters_get_422_with_a_message(api, params):
    r = await api.get("/api/v1/grid/locate", params=params)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert "查询参数“" in err["message"]


async def test_a_point_outside_every_deeper_node_gets_the_deepest_covering_ancestor(api, db, loaded_county):
    household, lon, lat = inside(loaded_county, "household", 77)
    # Retired, the household no longer covers anything: the group above it answers.
    await db.execute("UPDATE node SET retired_at = now() WHERE code = %(c)s", {"c": household.code})
    body = (await api.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat})).json()
    assert body["node"]["code"] == household.parent_code
    assert [link["level"] for link in body["chain"]] == RURAL[1:]
