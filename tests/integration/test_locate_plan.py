"""The locate statement is planned once per connection, not on every call.

Planning it anew for each point cost more than running it (1.1 ms against 0.5 ms), so
its parameters reach the query through a MATERIALIZED CTE, which makes a plan for one
point as good as a plan for any: PostgreSQL then keeps a generic plan after five runs
of the prepared statement. These tests see that happen, and that the generic plan
answers as the custom plans do. No timing: only which plan ran.
"""

from geo import demo
from grid.db import fetch_all, fetch_value
from grid.repository.nodes import locate_rows

# psycopg prepares a statement on its 6th run; PostgreSQL tries custom plans for the
# first five runs of a prepared statement and then weighs a generic one.
RUNS = 20


def _points(county, n):
    leaves = [x for x in county.nodes if x.geom is not None and x.level in ("unit", "household")]
    return [leaves[i * 7 % len(leaves)].geom.point_on_surface() for i in range(n)]


async def _answers(db, points, floor):
    return [[(r["code"], r["is_floor"], r["role"]) for r in await locate_rows(db, lon=p.x, lat=p.y, floor=floor,
                                                                  county=demo.COUNTY_CODE)]
            for p in points]  # fmt: skip


async def test_locate_settles_on_one_generic_plan_per_connection(db, loaded_county):
    points = _points(loaded_county, RUNS)
    for floor in (None, 3):  # None and an int bind differently: two prepared statements
        await _answers(db, points, floor)
    plans = await fetch_all(
        db, "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%%node_piece%%'"
    )
    assert len(plans) == 2
    for p in plans:
        assert p["generic_plans"] >= RUNS - 5 - 5, plans  # every run after the trial custom plans


async def test_the_generic_plan_answers_as_custom_plans_do(db, loaded_county):
    points = _points(loaded_county, RUNS)
    for floor in (None, 3):
        await db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        planned_each_time = await _answers(db, points, floor)
        assert all(planned_each_time)
        await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        assert await _answers(db, points, floor) == planned_each_time
        await db.execute("SET LOCAL plan_cache_mode = auto")
    assert await fetch_value(db, "SELECT count(*) FROM pg_prepared_statements WHERE generic_plans > 0") >= 1
