"""Vector tiles and GeoJSON for the map, decoded the way a map client reads them."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime

import mapbox_vector_tile
import pytest

from geo.tiles import BUFFER, EXTENT, levels_for_zoom

LEVELS_AT = {10: {"township"}, 12: {"area", "community", "subarea", "village"}, 14: {"grid", "group"},
             16: {"unit", "household"}}  # fmt: skip


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body)


async def report(db, household: str, lon: float, lat: float, severity: int = 2) -> int:
    """A case reported by the household's chief, in the test's rolled-back connection (the
    chief needs no account of their own for that)."""
    from app.accounts.service import ROOMS
    from app.settings import get_settings
    from geo.crs import CRS
    from grid.cases import service as cases
    from tests.conftest import holder_person_id

    reporter = await holder_person_id(db, household)
    out = await cases.submit_report(
        conn=db, actor=cases.Actor(reporter, counties=("610827",)), key=uuid.uuid4(), now=datetime.now(UTC),
        report=cases.Report(lon=lon, lat=lat, crs=CRS.wgs84, category="neighbours", severity=severity,
                            description="地图测试"),
        signer=get_settings().ledger_signer(), rooms=ROOMS, county_code="610827",
    )  # fmt: skip
    return out.case["id"]


def coords(geometry) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []

    def walk(c):
        if isinstance(c[0], (int, float)):
            out.append((c[0], c[1]))
        else:
            for part in c:
                walk(part)

    walk(geometry["coordinates"])
    return out


def test_zoom_gates_the_levels():
    assert {z: set(levels_for_zoom(z)) for z in LEVELS_AT} == LEVELS_AT
    assert set(levels_for_zoom(0)) == {"township"} and set(levels_for_zoom(22)) == {"unit", "household"}


@pytest.mark.parametrize("z", [10, 12, 14, 16])
async def test_grid_tiles_carry_the_right_levels_with_their_properties_clipped_to_the_tile(
    z, client, make_account, demo_nodes
):
    dispatcher = await make_account("dispatcher")
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.household], z)
    r = await client.get(f"/tiles/grid/{z}/{x}/{y}.mvt", headers=dispatcher.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(r.content)
    assert "grid" in layers and set(layers) <= {"grid", "grid_labels"}
    features = layers["grid"]["features"]
    assert features, f"no polygons in the tile over the household at z{z}"
    assert {f["properties"]["level"] for f in features} <= LEVELS_AT[z]
    for f in features:
        assert {"code", "name", "level", "open_cases", "overdue_cases"} <= set(f["properties"])
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        # Cut to the tile and its buffer: a county-sized polygon does not leak out.
        assert all(-BUFFER <= px <= EXTENT + BUFFER and -BUFFER <= py <= EXTENT + BUFFER
                   for px, py in coords(f["geometry"]))  # fmt: skip
    if z == 16:
        assert demo_nodes.household in {f["properties"]["code"] for f in features}
    # Labels: points inside the tile, one per node, for nodes drawn in it.
    labels = layers.get("grid_labels", {}).get("features", [])
    assert labels, f"no labels at z{z}"
    codes = [f["properties"]["code"] for f in labels]
    assert len(codes) == len(set(codes)) and set(codes) <= {f["properties"]["code"] for f in features}
    assert all(f["geometry"]["type"] == "Point" and 0 <= f["geometry"]["coordinates"][0] <= EXTENT
               and 0 <= f["geometry"]["coordinates"][1] <= EXTENT for f in labels)  # fmt: skip


async def test_a_big_polygon_is_clipped_not_shipped_whole(client, make_account, demo_nodes):
    # At z10 the township is far bigger than the tile's neighbourhood in some directions:
    # its outline must still stay within the buffer.
    dispatcher = await make_account("dispatcher")
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.household], 13)
    layers = decode((await client.get(f"/tiles/grid/{z}/{x}/{y}.mvt", headers=dispatcher.headers)).content)
    xs = [px for f in layers["grid"]["features"] for px, _ in coords(f["geometry"])]
    assert min(xs) >= -BUFFER and max(xs) <= EXTENT + BUFFER


async def test_case_counts_follow_reports_and_stay_in_scope(client, make_account, demo_nodes, db):
    dispatcher = await make_account("dispatcher")  # on demo_nodes.township
    stranger = await make_account("dispatcher", node_code=demo_nodes.other_township)
    lon, lat = demo_nodes.points[demo_nodes.household]
    z, x, y = tile_of(lon, lat, 16)

    async def counts(who, code=demo_nodes.household, tile=(z, x, y)):
        layers = decode((await client.get("/tiles/grid/{}/{}/{}.mvt".format(*tile), headers=who.headers)).content)
        f = next(f for f in layers["grid"]["features"] if f["properties"]["code"] == code)
        return f["properties"]["open_cases"], f["properties"]["overdue_cases"]

    village_tile = tile_of(lon, lat, 12)
    before = (await counts(dispatcher))[0]
    village_before = (await counts(dispatcher, demo_nodes.village, village_tile))[0]
    await report(db, demo_nodes.household, lon, lat)
    await report(db, demo_nodes.household, lon, lat, severity=3)
    # Not the tile from before the reports (no tile cache here: the LRU test below has one).
    assert await counts(dispatcher) == (before + 2, 0)
    # A village counts the cases of its households, at the zoom that draws villages.
    assert await counts(dispatcher, demo_nodes.village, village_tile) == (village_before + 2, 0)
    # Another township's dispatcher sees the boundary, but no count of cases it may not read.
    assert await counts(stranger) == (0, 0)


async def test_case_tiles_hold_only_cases_in_the_callers_scope(client, make_account, demo_nodes, db):
    dispatcher = await make_account("dispatcher")

    async def cluster_count(tile):
        layers = decode(
            (await client.get("/tiles/cases/{}/{}/{}.mvt".format(*tile), headers=dispatcher.headers)).content
        )
        feats = layers.get("cases", {}).get("features", [])
        assert all("count" in f["properties"] for f in feats)
        return sum(f["properties"]["count"] for f in feats)

    # Cases other tests committed may share these tiles: count them first.
    low_tiles = {(z, code): tile_of(*demo_nodes.points[code], z)
                 for z in (8, 10, 12) for code in (demo_nodes.household, demo_nodes.other_household)}  # fmt: skip
    before = {key: await cluster_count(tile) for key, tile in low_tiles.items()}
    mine = await report(db, demo_nodes.household, *demo_nodes.points[demo_nodes.household], severity=3)
    theirs = await report(db, demo_nodes.other_household, *demo_nodes.points[demo_nodes.other_household])

    z, x, y = tile_of(*demo_nodes.points[demo_nodes.household], 16)
    layers = decode((await client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=dispatcher.headers)).content)
    found = {f["properties"]["id"]: f for f in layers["cases"]["features"]}
    assert mine in found
    props = found[mine]["properties"]
    assert props["category"] == "neighbours" and props["severity"] == 3 and props["state"] == "assigned"
    assert props["overdue"] is False
    assert found[mine]["geometry"]["type"] == "Point"

    # The other case's own tile, asked by this dispatcher: nothing.
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.other_household], 16)
    r = await client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=dispatcher.headers)
    assert r.status_code == 200
    assert theirs not in {f["properties"].get("id") for f in decode(r.content).get("cases", {}).get("features", [])}
    # ... and at low zoom, where both may share a tile, the clusters count only the one in scope.
    for (z, code), tile in low_tiles.items():
        mine_tile = low_tiles[(z, demo_nodes.household)]
        # One more where `mine` is, never one for `theirs`.
        assert await cluster_count(tile) == before[(z, code)] + (tile == mine_tile), (z, code)
    # Its owner's township sees it.
    owner = await make_account("dispatcher", node_code=demo_nodes.other_township)
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.other_household], 16)
    layers = decode((await client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=owner.headers)).content)
    assert theirs in {f["properties"].get("id") for f in layers["cases"]["features"]}


async def test_clusters_below_z13_and_single_points_from_z13(client, make_account, demo_nodes, db):
    dispatcher = await make_account("dispatcher")
    lon, lat = demo_nodes.points[demo_nodes.household]
    ids = {await report(db, demo_nodes.household, lon, lat) for _ in range(3)}
    r = await client.get("/tiles/cases/{}/{}/{}.mvt".format(*tile_of(lon, lat, 12)), headers=dispatcher.headers)
    feats = decode(r.content)["cases"]["features"]
    assert [f["properties"]["count"] for f in feats] == [3]  # three reports at one spot: one cluster
    assert "id" not in feats[0]["properties"]
    r = await client.get("/tiles/cases/{}/{}/{}.mvt".format(*tile_of(lon, lat, 13)), headers=dispatcher.headers)
    feats = decode(r.content)["cases"]["features"]
    assert {f["properties"]["id"] for f in feats} == ids


async def test_etag_answers_304_and_tiles_need_a_login(client, make_account, demo_nodes):
    dispatcher = await make_account("dispatcher")
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.household], 14)
    for kind in ("grid", "cases"):
        url = f"/tiles/{kind}/{z}/{x}/{y}.mvt"
        r = await client.get(url, headers=dispatcher.headers)
        assert r.status_code == 200 and r.headers["etag"]
        again = await client.get(url, headers=dispatcher.headers | {"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert (await client.get(url)).status_code == 401
    assert (await client.get("/tiles/grid/3/8/0.mvt", headers=dispatcher.headers)).status_code == 422
    assert (await client.get("/tiles/grid/23/0/0.mvt", headers=dispatcher.headers)).status_code == 422


def calls_of(obj, *methods: str) -> asyncio.Event:
    """An event set after each call of these methods of `obj` (the listener calling in)."""
    called = asyncio.Event()
    for name in methods:
        real = getattr(obj, name)

        def spy(*args, _real=real, **kw):
            result = _real(*args, **kw)
            called.set()
            return result

        setattr(obj, name, spy)
    return called


async def until(called: asyncio.Event, condition, limit_s: float = 30.0) -> None:
    """Wait for the listener to make `condition` true; the limit only stops a hang."""
    async with asyncio.timeout(limit_s):
        while not condition():
            called.clear()
            await called.wait()


async def test_grid_tiles_are_served_from_the_cache_until_the_grid_changes(fresh_database, demo_nodes, monkeypatch):
    """The LRU is only used beside the LISTEN connection, so this app runs its lifespan
    (pool, LISTEN) on a database of its own, and the grid change is committed."""
    from app.main import create_app
    from app.routers import tiles as tiles_router
    from app.settings import libpq_url
    from grid.db import connect
    from tests.conftest import asgi_client, committed_admin_token, settings_for_tests

    fixed = datetime.now(UTC)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # the cache key holds the minute: it must not turn between requests
            return fixed

    monkeypatch.setattr(tiles_router, "datetime", Clock)
    app = create_app(settings_for_tests(fresh_database))
    token = await committed_admin_token(fresh_database)  # grid tiles are every logged-in user's
    headers = {"Authorization": f"Bearer {token}"}
    cache, versions = app.state.tile_cache, app.state.tile_versions
    listened = calls_of(versions, "reset", "bump")
    z, x, y = tile_of(*demo_nodes.points[demo_nodes.household], 16)
    url = f"/tiles/grid/{z}/{x}/{y}.mvt"
    async with app.router.lifespan_context(app), asgi_client(app) as http:
        await until(listened, lambda: versions.live)  # the LISTEN connection is up
        first = await http.get(url, headers=headers)
        assert first.status_code == 200, first.text
        hits = cache.hits
        assert (await http.get(url, headers=headers)).content == first.content
        assert cache.hits == hits + 1
        grid_version = versions.grid
        async with await connect(libpq_url(fresh_database)) as conn:  # autocommit: committed at once
            await conn.execute("UPDATE node SET name = '改名户' WHERE code = %(c)s", {"c": demo_nodes.household})
        await until(listened, lambda: versions.grid > grid_version)  # the commit's NOTIFY arrived
        changed = await http.get(url, headers=headers)
        assert cache.hits == hits + 1  # a miss: the grid version moved
    names = {f["properties"]["code"]: f["properties"]["name"] for f in decode(changed.content)["grid"]["features"]}
    assert names[demo_nodes.household] == "改名户"


async def test_geojson_of_cases_is_scoped_and_of_nodes_is_filtered(client, make_account, demo_nodes, db):
    dispatcher = await make_account("dispatcher")
    mine = await report(db, demo_nodes.household, *demo_nodes.points[demo_nodes.household])
    theirs = await report(db, demo_nodes.other_household, *demo_nodes.points[demo_nodes.other_household])
    r = await client.get("/api/v1/cases.geojson", params={"bbox": "100,30,120,45"}, headers=dispatcher.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    ids = {f["id"] for f in body["features"]}
    assert mine in ids and theirs not in ids
    f = next(f for f in body["features"] if f["id"] == mine)
    assert f["geometry"]["type"] == "Point" and {"category", "severity", "state", "overdue"} <= set(f["properties"])

    lon, lat = demo_nodes.points[demo_nodes.household]
    bbox = f"{lon - 0.0001},{lat - 0.0001},{lon + 0.0001},{lat + 0.0001}"
    r = await client.get("/api/v1/grid/nodes.geojson", params={"bbox": bbox, "level": "household"},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 200
    feats = r.json()["features"]
    assert feats and {f["properties"]["level"] for f in feats} == {"household"}
    assert demo_nodes.household in {f["id"] for f in feats}
    r = await client.get("/api/v1/grid/nodes.geojson", params={"bbox": bbox, "level": "castle"},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 422
    assert (await client.get("/api/v1/grid/nodes.geojson", headers=dispatcher.headers)).status_code == 422


async def test_an_overdue_case_is_marked_on_its_point_and_counted_on_its_node(client, make_account, demo_nodes, db):
    dispatcher = await make_account("dispatcher")
    lon, lat = demo_nodes.points[demo_nodes.household]
    late = await report(db, demo_nodes.household, lon, lat)
    await db.execute("UPDATE case_file SET accept_by = now() - interval '1 hour' WHERE id = %(id)s", {"id": late})
    z, x, y = tile_of(lon, lat, 16)
    grid = decode((await client.get(f"/tiles/grid/{z}/{x}/{y}.mvt", headers=dispatcher.headers)).content)["grid"]
    household = next(f for f in grid["features"] if f["properties"]["code"] == demo_nodes.household)
    assert household["properties"]["overdue_cases"] >= 1
    points = decode((await client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=dispatcher.headers)).content)["cases"]
    assert next(f for f in points["features"] if f["properties"]["id"] == late)["properties"]["overdue"] is True


# --- label glyphs -----------------------------------------------------------------------


def glyph_ids(body: bytes) -> set[int]:
    """The code points in a glyph PBF (glyphs.stacks[].glyphs[].id), read with a few lines
    of protobuf wire format rather than a compiled .proto."""

    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            kind = key & 7
            if kind == 0:
                value, i = varint(buf, i)
            elif kind == 2:
                size, i = varint(buf, i)
                value, i = buf[i : i + size], i + size
            else:
                raise AssertionError(f"unexpected wire type {kind}")
            yield key >> 3, value

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        shift = result = 0
        while True:
            b = buf[i]
            result |= (b & 0x7F) << shift
            i, shift = i + 1, shift + 7
            if not b & 0x80:
                return result, i

    return {gid for n, stack in fields(body) if n == 1 for m, glyph in fields(stack) if m == 3
            for k, gid in fields(glyph) if k == 1}  # fmt: skip


async def test_the_maps_label_glyphs_hold_digits_and_latin_letters(client):
    # Built by scripts/dev.sh web (make test runs it first).
    r = await client.get("/map/fonts/DejaVu Sans Book/0-255.pbf")
    assert r.status_code == 200, "no glyphs: run scripts/dev.sh web"
    assert r.headers["content-type"] == "application/x-protobuf"
    assert {ord(c) for c in "0123456789ABCXYZabcxyz-"} <= glyph_ids(r.content)


@pytest.mark.parametrize("path", ["/map/fonts/Arial Unicode MS Regular/0-255.pbf", "/map/fonts/DejaVu Sans Book/0-300.pbf",
                                  "/map/fonts/DejaVu Sans Book/1-256.pbf", "/map/fonts/DejaVu Sans Book/65536-65791.pbf",
                                  "/map/fonts/DejaVu Sans Book/x.pbf", "/map/fonts/../0-255.pbf"])  # fmt: skip
async def test_a_glyph_range_that_is_not_there_is_a_404_that_says_so(client, path):
    r = await client.get(path)
    assert r.status_code == 404, r.text
    if ".." in path:  # the client resolves it to /map/0-255.pbf: nothing is served there
        assert r.json()["error"]["code"] == "not_found"
    else:  # MapLibre then draws those characters with a browser font
        assert r.json()["error"]["code"] == "glyphs_not_found" and "scripts/dev.sh web" in r.json()["error"]["message"]
