"""Vector tile latency and size: grid and case tiles at z10, z12, z14 and z16.

    .venv/bin/python bench/tiles.py [--scale 1] [--cases 500] [--tiles 60] [--keep-db]

Needs DATABASE_URL (eval "$(bash scripts/dev.sh db-env)"). Makes the database
wuzhang_bench_tiles_s{scale} beside it (dropped at the end unless --keep-db), loads the
demo county, reports `--cases` cases at random households and units through
grid.cases.submit_report, runs VACUUM ANALYZE, then for each zoom picks up to `--tiles`
tiles under random leaves and builds each tile with geo/tiles.py's SQL, as the app does
(scope: the whole county, as a county leader sees it, so every case counts):

  cold  the first build of each tile on a new connection (no plan cached; the app's LRU
        empty). PostgreSQL's own buffers are warm from the load: a restart is not ours
        to do on a shared server.
  warm  the same tiles again on that connection.

The app serves a repeated grid tile from its in-process LRU (a dict look-up) and a
revalidation as a 304, neither of which touches the database; they are not timed here.
Nothing asserts on time; read medians and p99 over several runs (shared/notes/performance.md).
"""
from __future__ import annotations

import argparse
import math
import random
import time
import uuid
from datetime import datetime, timezone

import _common as c  # also puts the project root on sys.path
import numpy as np
import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.settings import get_settings
from geo import demo, tiles
from geo.crs import CRS
from grid import cases, service

SEED = 20261129
ZOOMS = (10, 12, 14, 16)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def prepare(scale: int, n_cases: int, county: demo.DemoCounty) -> str:
    name = f"wuzhang_bench_tiles_s{scale}"
    c.drop_database(name)
    url = c.create_database(name)
    c.migrate(url)
    engine = create_engine(url)
    with Session(engine) as session:
        service.load_county(session=session, county_code=demo.COUNTY_CODE, nodes=county.nodes, posts=county.posts)
        session.commit()
    rng = random.Random(SEED)
    leaves = [n for n in county.nodes if n.level in ("household", "unit")]
    signer, now = get_settings().ledger_signer(), datetime.now(timezone.utc)
    with Session(engine) as session:
        chiefs = dict(session.execute(text(
            "SELECT n.code, po.person_id FROM post po JOIN node n ON n.id = po.node_id"
            " WHERE po.role = 'chief' AND po.ended_at IS NULL AND n.level IN ('household', 'unit')")).all())  # fmt: skip
        for _ in range(n_cases):
            leaf = rng.choice(leaves)
            p = leaf.geom.point_on_surface()
            report = cases.Report(lon=p.x, lat=p.y, crs=CRS.wgs84, category="neighbours",
                                  severity=rng.randint(1, 4), description="bench")  # fmt: skip
            cases.submit_report(session=session, actor=cases.Actor(chiefs[leaf.code]), key=uuid.uuid4(),
                                report=report, now=now, signer=signer, county_code=demo.COUNTY_CODE)  # fmt: skip
        session.commit()
    engine.dispose()
    with psycopg.connect(c.libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def pick_tiles(county: demo.DemoCounty, z: int, count: int) -> list[tuple[int, int, int]]:
    rng = random.Random(SEED + z)
    leaves = [n for n in county.nodes if n.level in ("household", "unit")]
    found: dict[tuple[int, int, int], None] = {}
    for _ in range(count * 20):
        p = rng.choice(leaves).geom.point_on_surface()
        found[tile_of(p.x, p.y, z)] = None
        if len(found) >= count:
            break
    return list(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--tiles", type=int, default=60, help="tiles per zoom")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    county = demo.generate(scale=args.scale)
    t0 = time.perf_counter()
    url = prepare(args.scale, args.cases, county)
    print(f"scale {args.scale}: {len(county.nodes)} nodes, {args.cases} cases, loaded in {time.perf_counter() - t0:.1f} s")
    engine = create_engine(url, connect_args={"options": c.NO_PARALLEL})
    try:
        with Session(engine) as session:
            county_path = session.execute(text("SELECT path::text FROM node WHERE level = 'county'")).scalar_one()
        scope, params = cases.scope_clause(cases.Actor(person_id=0, read_paths=(county_path,)))
        now = datetime.now(timezone.utc)
        print(f"\n  {'zoom':<4} {'layer':<6} {'tiles':>5} {'cold p50':>9} {'cold p99':>9} {'warm p50':>9}"
              f" {'warm p99':>9} {'KB p50':>7} {'KB max':>7} {'features p50':>12}")  # fmt: skip
        for z in ZOOMS:
            tile_list = pick_tiles(county, z, args.tiles)
            for kind, build in (("grid", tiles.grid_tile), ("cases", tiles.case_tile)):
                engine.dispose()  # a new connection: no plan cached
                with Session(engine) as session:
                    passes = []
                    for _ in range(2):
                        ns, sizes = [], []
                        for (tz, tx, ty) in tile_list:
                            s0 = time.perf_counter_ns()
                            body = build(session, z=tz, x=tx, y=ty, scope=scope, scope_params=params,
                                         open_sql=cases.OPEN_SQL, overdue_sql=cases.OVERDUE_SQL, now=now)  # fmt: skip
                            ns.append(time.perf_counter_ns() - s0)
                            sizes.append(len(body))
                        passes.append((np.asarray(ns) / 1e6, np.asarray(sizes)))
                    import mapbox_vector_tile

                    n_feat = [sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(
                        build(session, z=tz, x=tx, y=ty, scope=scope, scope_params=params, open_sql=cases.OPEN_SQL,
                              overdue_sql=cases.OVERDUE_SQL, now=now)).values()) for (tz, tx, ty) in tile_list]  # fmt: skip
                (cold, sizes), (warm, _) = passes
                print(f"  z{z:<3} {kind:<6} {len(tile_list):>5} {np.percentile(cold, 50):>9.2f} "
                      f"{np.percentile(cold, 99):>9.2f} {np.percentile(warm, 50):>9.2f} {np.percentile(warm, 99):>9.2f} "
                      f"{np.percentile(sizes, 50) / 1024:>7.1f} {sizes.max() / 1024:>7.1f} "
                      f"{np.percentile(n_feat, 50):>12.0f}")  # fmt: skip
        print("\n  times in ms per tile, one client, serial; KB of MVT per tile")
    finally:
        engine.dispose()
        if not args.keep_db:
            c.drop_database(f"wuzhang_bench_tiles_s{args.scale}")


if __name__ == "__main__":
    main()
