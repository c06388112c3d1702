"""Vector tile latency and size: grid and case tiles at z10, z12, z14 and z16.

    .venv/bin/python bench/tiles.py [--scale 1] [--cases 500] [--tiles 60] [--keep-db]

Needs DATABASE_URL (eval "$(bash scripts/dev.sh db-env)"). Makes the database
wuzhang_bench_tiles_s{scale} beside it (dropped at the end unless --keep-db), loads the
demo county, reports `--cases` cases at random households and units through
grid.cases.service.submit_report, runs VACUUM ANALYZE, then for each zoom picks up to
`--tiles` tiles under random leaves and builds each tile with geo.tiles.grid_tile and
case_tile, as the app does, on an async psycopg connection opened as the service opens
its own (reader: the whole county, as a county leader sees it, so every case counts):

  cold  the first build of each tile on a new connection (no plan cached; the app's LRU
        empty). PostgreSQL's own buffers are warm from the load: a restart is not ours
        to do on a shared server.
  warm  the same tiles again on that connection.

The app serves a repeated grid tile from its in-process LRU (app.tile_cache, a dict
look-up) and a revalidation as a 304, neither of which touches the database; they are
not timed here. Nothing asserts on time; read medians and p99 over several runs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import _common as c  # first: it puts the project root on sys.path
import mapbox_vector_tile
import numpy as np

from app.accounts.service import ROOMS
from app.settings import get_settings
from geo import demo, tiles
from geo.crs import CRS
from grid import service
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.db import Conn, fetch_all, fetch_value

SEED = 20261129
ZOOMS = (10, 12, 14, 16)

Build = Callable[..., Awaitable[bytes | None]]  # geo.tiles.grid_tile or case_tile


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def leaves_of(county: demo.DemoCounty) -> list[demo.DemoNode]:
    return [n for n in county.nodes if n.level in ("household", "unit") and n.geom is not None]


async def fill(url: str, n_cases: int, county: demo.DemoCounty) -> None:
    """The demo county, then `n_cases` reports by the chiefs of random leaves, each its
    own transaction as in the app; then fresh statistics."""
    rng = random.Random(SEED)
    leaves = leaves_of(county)
    signer, now = get_settings().ledger_signer(), datetime.now(UTC)
    async with await c.connect(url) as conn:
        async with conn.transaction():
            await service.load_county(conn=conn, county_code=demo.COUNTY_CODE, nodes=county.nodes, posts=county.posts)
        rows = await fetch_all(
            conn,
            "SELECT n.code, po.person_id FROM post po JOIN node n ON n.id = po.node_id"
            " WHERE po.role = 'chief' AND po.ended_at IS NULL AND n.level IN ('household', 'unit')",
        )
        chiefs = {r["code"]: r["person_id"] for r in rows}
        for _ in range(n_cases):
            leaf = rng.choice(leaves)
            assert leaf.geom is not None
            p = leaf.geom.point_on_surface()
            report = cases.Report(lon=p.x, lat=p.y, crs=CRS.wgs84, category="neighbours",
                                  severity=rng.randint(1, 4), description="bench")  # fmt: skip
            await cases.submit_report(conn=conn, actor=cases.Actor(chiefs[leaf.code]), key=uuid.uuid4(),
                                      report=report, now=now, signer=signer, rooms=ROOMS,
                                      county_code=demo.COUNTY_CODE)  # fmt: skip
        await conn.execute("VACUUM ANALYZE")


def pick_tiles(county: demo.DemoCounty, z: int, count: int) -> list[tuple[int, int, int]]:
    rng = random.Random(SEED + z)
    leaves = leaves_of(county)
    found: dict[tuple[int, int, int], None] = {}
    for _ in range(count * 20):
        geom = rng.choice(leaves).geom
        assert geom is not None
        p = geom.point_on_surface()
        found[tile_of(p.x, p.y, z)] = None
        if len(found) >= count:
            break
    return list(found)


async def time_tiles(
    conn: Conn, build: Build, tile_list: list[tuple[int, int, int]], reader: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """ms per tile and bytes per tile, one tile at a time."""
    ns, sizes = [], []
    for tz, tx, ty in tile_list:
        s0 = time.perf_counter_ns()
        body = await build(conn, z=tz, x=tx, y=ty, reader=reader)
        ns.append(time.perf_counter_ns() - s0)
        sizes.append(len(body or b""))
    return np.asarray(ns) / 1e6, np.asarray(sizes)


async def measure(url: str, county: demo.DemoCounty, n_tiles: int) -> None:
    async with await c.connect(url) as conn:
        county_path = await fetch_value(conn, "SELECT path::text FROM node WHERE level = 'county'")
    # Person 0 holds no post and reported nothing: the county path alone makes every case readable.
    reader = case_sql.reader_params(
        person_id=0, read_paths=[county_path], now=datetime.now(UTC), counties=[demo.COUNTY_CODE]
    )
    print(f"\n  {'zoom':<4} {'layer':<6} {'tiles':>5} {'cold p50':>9} {'cold p99':>9} {'warm p50':>9}"
          f" {'warm p99':>9} {'KB p50':>7} {'KB max':>7} {'features p50':>12}")  # fmt: skip
    builders: tuple[tuple[str, Build], ...] = (("grid", tiles.grid_tile), ("cases", tiles.case_tile))
    for z in ZOOMS:
        tile_list = pick_tiles(county, z, n_tiles)
        for kind, build in builders:
            async with await c.connect(url) as conn:  # a new connection: no plan cached
                cold, sizes = await time_tiles(conn, build, tile_list, reader)
                warm, _ = await time_tiles(conn, build, tile_list, reader)
                n_feat = []
                for tz, tx, ty in tile_list:
                    decoded = mapbox_vector_tile.decode(await build(conn, z=tz, x=tx, y=ty, reader=reader) or b"")
                    n_feat.append(sum(len(layer["features"]) for layer in decoded.values()))
            print(f"  z{z:<3} {kind:<6} {len(tile_list):>5} {np.percentile(cold, 50):>9.2f} "
                  f"{np.percentile(cold, 99):>9.2f} {np.percentile(warm, 50):>9.2f} {np.percentile(warm, 99):>9.2f} "
                  f"{np.percentile(sizes, 50) / 1024:>7.1f} {sizes.max() / 1024:>7.1f} "
                  f"{np.percentile(n_feat, 50):>12.0f}")  # fmt: skip
    print("\n  times in ms per tile, one client, serial; KB of MVT per tile")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--tiles", type=int, default=60, help="tiles per zoom")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    county = demo.generate(scale=args.scale)
    name = f"wuzhang_bench_tiles_s{args.scale}"
    t0 = time.perf_counter()
    c.drop_database(name)
    url = c.create_database(name)
    try:
        c.migrate(url)
        asyncio.run(fill(url, args.cases, county))
        print(f"scale {args.scale}: {len(county.nodes)} nodes, {args.cases} cases, "
              f"loaded in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        asyncio.run(measure(url, county, args.tiles))
    finally:
        if not args.keep_db:
            c.drop_database(name)


if __name__ == "__main__":
    main()
