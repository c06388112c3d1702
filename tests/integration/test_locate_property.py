"""Locate agrees with shapely over the polygons the CLI exports.

Random points in random leaves, and points within 1 m of leaf edges on either side
(plus exact shared vertices, where the lowest code must win).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely import Point, STRtree
from shapely.geometry import shape

from app.main import create_app
from grid.levels import level_info
from tests.conftest import asgi_client, committed_admin_token, settings_for_tests

M_PER_DEG_LAT = 110_570.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(37.75))
SAFE_DEG = 1e-9  # 0.1 mm: closer than this to an edge, float rounding decides the side


@pytest.fixture(scope="module")
def exported(database_url, loaded_county, tmp_path_factory):
    """Leaves (deepest polygons) from `wuzhang grid export 610827`, run as a user would."""
    out = tmp_path_factory.mktemp("export") / "county.geojson"
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "app.cli", "grid", "export", "610827", "-o", str(out)],
                   env=env, check=True, capture_output=True)  # fmt: skip
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    parents = {f["properties"]["parent_code"] for f in features if f["properties"]["level"] != "floor"}
    leaves = [f for f in features if f["properties"]["level"] != "floor" and f["id"] not in parents]
    codes = [f["id"] for f in leaves]
    geoms = [shape(f["geometry"]) for f in leaves]
    depths = [level_info(f["properties"]["level"], f["properties"]["chain"]).depth for f in leaves]
    assert len(features) == len(loaded_county.nodes)
    return Leaves((codes, geoms, STRtree(geoms), depths))


class Leaves(tuple):
    def __repr__(self) -> str:  # keeps hypothesis's failure report readable
        return f"<{len(self[0])} exported leaves>"


@pytest.fixture
async def http(fresh_database):
    """The app with its lifespan (pool, LISTEN, caches), over HTTP in this process, as an admin
    committed in a database of the test's own. Every example of a test shares it: locating
    writes nothing (an admin sees no phone numbers, so no audit rows either)."""
    token = await committed_admin_token(fresh_database)
    app = create_app(settings_for_tests(fresh_database))
    async with (
        app.router.lifespan_context(app),
        asgi_client(app, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        yield client


def expected_code(exported, x, y):
    """The deepest leaf covering the point; among equals, the lowest code.

    Depth first matters where an urban unit (depth 5) meets a rural household (6).
    """
    codes, geoms, tree, depths = exported
    hits = tree.query(Point(x, y), predicate="intersects")
    covering = sorted((-depths[i], codes[i]) for i in hits if geoms[i].covers(Point(x, y)))
    return covering[0][1] if covering else None


async def located_code(http, x, y):
    r = await http.get("/api/v1/grid/locate", params={"lon": repr(float(x)), "lat": repr(float(y))})
    if r.status_code == 422 and r.json()["error"]["code"] == "outside_jurisdiction":
        return None
    assert r.status_code == 200, r.text
    return r.json()["node"]["code"]


def near_any_edge(exported, x, y):
    _, geoms, tree, _ = exported
    p = Point(x, y)
    near = tree.query(p.buffer(1e-6))
    return any(shapely.distance(geoms[i].boundary, p) < SAFE_DEG for i in near)


def _covering(exported, x, y):
    codes, geoms, tree, _ = exported
    return {codes[i] for i in tree.query(Point(x, y)) if geoms[i].covers(Point(x, y))}


# One app and database per test, shared by its examples (see `http`), hence function_scoped_fixture.
FAST = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FAST
@given(data=st.data())
async def test_random_points_in_random_leaves(exported, http, data):
    codes, geoms, _, _ = exported
    i = data.draw(st.integers(0, len(codes) - 1), label="leaf")
    x0, y0, x1, y1 = geoms[i].bounds
    u, v = data.draw(st.floats(0, 1)), data.draw(st.floats(0, 1))
    x, y = x0 + u * (x1 - x0), y0 + v * (y1 - y0)
    assume(geoms[i].contains(Point(x, y)) and not near_any_edge(exported, x, y))
    assert await located_code(http, x, y) == codes[i]


@FAST
@given(data=st.data())
async def test_points_within_a_metre_of_leaf_edges(exported, http, data):
    codes, geoms, _, _ = exported
    i = data.draw(st.integers(0, len(codes) - 1), label="leaf")
    ring = np.asarray(geoms[i].geoms[0].exterior.coords)
    k = data.draw(st.integers(0, len(ring) - 2), label="edge")
    (ax, ay), (bx, by) = ring[k], ring[k + 1]
    t = data.draw(st.floats(0, 1), label="along")
    metres = data.draw(st.floats(0.01, 1.0) | st.floats(-1.0, -0.01), label="off the edge (m)")
    # Offset perpendicular to the edge, in metres converted to degrees.
    ex, ey = (bx - ax) * M_PER_DEG_LON, (by - ay) * M_PER_DEG_LAT
    length = math.hypot(ex, ey)
    x = ax + t * (bx - ax) + (-ey / length) * metres / M_PER_DEG_LON
    y = ay + t * (by - ay) + (ex / length) * metres / M_PER_DEG_LAT
    assume(not near_any_edge(exported, x, y))
    assert await located_code(http, x, y) == expected_code(exported, x, y)


@FAST
@given(data=st.data())
async def test_shared_vertices_go_to_the_lowest_code(exported, http, data):
    codes, geoms, _, _ = exported
    i = data.draw(st.integers(0, len(codes) - 1), label="leaf")
    ring = geoms[i].geoms[0].exterior.coords
    x, y = ring[data.draw(st.integers(0, len(ring) - 2), label="vertex")]
    want = expected_code(exported, x, y)
    assert want is not None and (want == codes[i] or want in _covering(exported, x, y))
    assert await located_code(http, x, y) == want


def test_export_is_lossless(exported, loaded_county):
    codes, geoms, _, _ = exported
    generated = {n.code: n.geom for n in loaded_county.nodes}
    assert all(geoms[i].equals_exact(generated[codes[i]], 0) for i in range(0, len(codes), 7))
