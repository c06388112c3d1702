"""Locate latency: the API over HTTP, the same SQL alone, and an in-memory shapely floor.

    .venv/bin/python bench/locate.py [--scale 1 17] [--points 2000] [--port 8011] [--keep-db]

Needs DATABASE_URL (eval "$(bash scripts/dev.sh db-env)"). For each scale it makes
the database wuzhang_bench_s{scale} beside DATABASE_URL, loads the demo county,
then times the same random points three ways, one client at a time:
  HTTP     `python -m app.cli serve --workers 1` on 127.0.0.1:8011 (--port), one keep-alive httpx client,
           logged in as two demo accounts (see CALLERS);
  SQL      grid.repository.nodes.LOCATE_SQL, prepared, on one async psycopg connection
           opened as the service opens its own, and through `pgbench -M prepared` with
           1 and 2 clients;
  shapely  an STRtree over the same leaf polygons, in this process.
It prints one table per scale and an EXPLAIN of the statement. Nothing here asserts
on time: the machine is shared and noisy, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c  # first: it puts the project root on sys.path
import httpx
import numpy as np
import psycopg
import shapely
from sqlalchemy import make_url

from app.accounts import demo as demo_accounts
from app.settings import Settings
from geo import demo
from grid import service
from grid.db import fetch_all, fetch_value
from grid.repository import nodes as node_sql

SEED = 20261128  # same points on every run
PORT = 8011
WARMUP = 200
PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
PGBENCH_SECONDS = 10

Stats = dict[str, float]


def locate_params(lon: float, lat: float) -> dict[str, Any]:
    """The statement's parameters for a point, no floor asked, no phone in scope: a plain
    read, as the app sends it to psycopg for a caller who may see no phone."""
    return node_sql.locate_params(lon=float(lon), lat=float(lat), floor=None, scope_ids=(), county=demo.COUNTY_CODE)


# --- database -----------------------------------------------------------------------


def prepare_database(scale: int, county: demo.DemoCounty) -> tuple[str, bool]:
    """The loaded, analysed bench database for `scale` (reused if a --keep-db run left
    one), and whether it was loaded just now."""
    name = f"wuzhang_bench_s{scale}"
    if c.database_exists(name):
        url = c.database_url(name)
        if asyncio.run(_county_loaded(url)):
            print(f"  reusing database {name}, left by a --keep-db run")
            c.migrate(url)  # the schema may have moved on since
            return url, False
        c.drop_database(name)  # half-made by an interrupted run
    url = c.create_database(name)
    c.migrate(url)
    t0 = time.perf_counter()
    asyncio.run(_load(url, county))
    t1 = time.perf_counter()
    asyncio.run(c.vacuum_analyze(url))
    t2 = time.perf_counter()
    print(f"  loaded {name}: {len(county.nodes):,} nodes in {t1 - t0:.1f} s, VACUUM ANALYZE {t2 - t1:.1f} s")
    return url, True


async def _load(url: str, county: demo.DemoCounty) -> None:
    async with await c.connect(url) as conn, conn.transaction():
        await service.load_county(conn=conn, county_code=demo.COUNTY_CODE, nodes=county.nodes, posts=county.posts)


async def _county_loaded(url: str) -> bool:
    try:
        async with await c.connect(url) as conn:
            return await node_sql.county_loaded(conn, code=demo.COUNTY_CODE)
    except psycopg.Error:
        return False


# --- points -------------------------------------------------------------------------


def sample_points(leaves: list[demo.DemoNode], n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """n points, each strictly inside a random leaf (rejection sampling in its bounds).

    Strictly inside, so the expected answer is that leaf: leaves tile without overlap.
    """
    points, expected = [], []
    for k in rng.integers(len(leaves), size=n):
        geom = leaves[k].geom
        assert geom is not None  # leaves are polygons
        x0, y0, x1, y1 = geom.bounds
        while True:
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if shapely.contains_xy(geom, x, y):
                break
        points.append((x, y))
        expected.append(leaves[k].code)
    return np.array(points), expected


# --- HTTP ---------------------------------------------------------------------------

# Who calls /locate (the API needs a login): the county leader sees every chief's
# phone, so each answer writes an audit row, in the same statement that reads; a
# central household chief sees no phone outside its own household, so its calls only read.
CALLERS = ("county leader", "central household chief")


def demo_callers(url: str) -> list[tuple[str, str, str]]:
    """(title, phone, password) of the benchmark's callers, made if missing (idempotent,
    as `wuzhang demo load` makes them)."""

    async def ensure() -> list[demo_accounts.DemoAccount]:
        async with await c.connect(url) as conn:
            accounts, _ = await demo_accounts.ensure(
                conn=conn, settings=Settings(database_url=url), county_code=demo.COUNTY_CODE
            )
        return accounts

    by_title = c.demo_phones(asyncio.run(ensure()))
    return [(t, by_title[t], demo_accounts.DEMO_PASSWORD) for t in CALLERS]


def bench_http(
    url: str, points: np.ndarray, port: int, log_path: Path, callers: list[tuple[str, str, str]]
) -> tuple[dict[str, Stats], Stats, list[str]]:
    """Serial GETs through the real server, per caller; returns locate stats by caller,
    /healthz stats, and the codes the last caller was routed to."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"port {port} is already in use: refusing to benchmark someone else's server (try --port)")
    env = {**os.environ, "DATABASE_URL": url}
    stats: dict[str, Stats] = {}
    answers: list[str] = []
    with log_path.open("w") as log:
        # `python -m app.cli` from the project root: this checkout's app, whatever the
        # `wuzhang` script on PATH was installed from. One server process, as one
        # client at a time needs; its own process group, since `serve` also starts the
        # background worker, which must stop too.
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"], cwd=c.ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                _wait_ready(client, server, log_path)
                for title, phone, password in callers:
                    headers = _login(client, phone, password)
                    times, wall, answers = _time_locate(client, points, headers)
                    stats[title] = c.summary(times, wall)
                # The same round trip with no database work: the HTTP + framework floor.
                h_times = []
                h_start = time.perf_counter()
                for _ in range(len(points)):
                    t0 = time.perf_counter_ns()
                    client.get("/healthz").raise_for_status()
                    h_times.append(time.perf_counter_ns() - t0)
                h_wall = time.perf_counter() - h_start
        finally:
            _stop(server)
    return stats, c.summary(h_times, h_wall), answers


def _login(client: httpx.Client, phone: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": phone, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _time_locate(
    client: httpx.Client, points: np.ndarray, headers: dict[str, str]
) -> tuple[list[int], float, list[str]]:
    def locate(lon: float, lat: float) -> httpx.Response:
        return client.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat}, headers=headers)

    for lon, lat in points[:WARMUP]:  # lets the pool connect and psycopg prepare
        locate(lon, lat).raise_for_status()
    times, responses = [], []
    start = time.perf_counter()
    for lon, lat in points:
        t0 = time.perf_counter_ns()
        response = locate(lon, lat)
        times.append(time.perf_counter_ns() - t0)
        responses.append(response)
    wall = time.perf_counter() - start
    bad = [r.status_code for r in responses if r.status_code != 200]
    if bad:
        print(f"  !! {len(bad)} locate answers were not 200: {sorted(set(bad))}")
    return times, wall, [r.json()["node"]["code"] if r.status_code == 200 else "" for r in responses]


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn and the worker it started)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone
            os.killpg(server.pid, sig)  # the group outlives a server that already exited
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_ready(client: httpx.Client, server: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until /readyz says the database answers and the process hears its notifications
    (until then the server bypasses its caches of callers)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            # The log lives in a temporary directory: show its end before it goes.
            tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
            sys.exit(f"{tail}\nwuzhang serve exited with {server.returncode} before it was ready")
        try:
            r = client.get("/readyz")
            if r.status_code == 200 and r.json().get("listening"):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("wuzhang serve was not ready within 60 s")


# --- SQL ----------------------------------------------------------------------------


async def bench_sql(url: str, points: np.ndarray) -> tuple[Stats, list[str], tuple[int, int]]:
    """The statement alone, prepared, one connection, serially; returns stats, answers,
    and how many runs of the prepared statement used a generic and a custom plan."""
    async with await c.connect(url) as conn:

        async def locate(lon: float, lat: float) -> list[dict[str, Any]]:
            return await fetch_all(conn, node_sql.LOCATE_SQL, locate_params(lon, lat), prepare=True)

        for lon, lat in points[:WARMUP]:
            await locate(lon, lat)
        times, answers = [], []
        start = time.perf_counter()
        for lon, lat in points:
            t0 = time.perf_counter_ns()
            rows = await locate(lon, lat)
            times.append(time.perf_counter_ns() - t0)
            answers.append(rows[0]["code"] if rows else "")  # deepest first
        stats = c.summary(times, time.perf_counter() - start)
        # After five runs PostgreSQL may switch a prepared statement to a generic plan,
        # which the EXPLAIN (a custom plan) does not show.
        plans = await fetch_all(conn, "SELECT generic_plans, custom_plans FROM pg_prepared_statements")
    return stats, answers, (sum(r["generic_plans"] for r in plans), sum(r["custom_plans"] for r in plans))


async def prewarm(url: str, points: np.ndarray) -> int:
    """One untimed pass over every point, so no method pays for pages read cold; returns
    the number of node_piece rows."""
    async with await c.connect(url) as conn:
        for lon, lat in points:
            await fetch_all(conn, node_sql.LOCATE_SQL, locate_params(lon, lat))
        return int(await fetch_value(conn, "SELECT count(*) FROM node_piece"))


async def explain(url: str, lon: float, lat: float) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) for one point as the app runs it, and a parallel check."""
    sql = "EXPLAIN (ANALYZE, BUFFERS) " + node_sql.LOCATE_SQL
    async with await c.connect(url) as conn:
        plan = [r["QUERY PLAN"] for r in await fetch_all(conn, sql, locate_params(lon, lat))]
    print(f"\n  EXPLAIN (ANALYZE, BUFFERS) at ({lon:.6f}, {lat:.6f}), the service's session settings"
          f" ({c.SESSION_OPTIONS}):")  # fmt: skip
    for line in plan:
        print("    " + line.rstrip())
    parallel = any("Gather" in line or "Workers" in line for line in plan)
    gist = any("ix_node_piece_geom" in line for line in plan)
    print(f"  parallel workers: {'YES (!)' if parallel else 'none'}; GiST ix_node_piece_geom used: {gist}")
    # The trap the session settings avoid: what the server's defaults would do.
    async with await c.connect(url, options="") as conn:
        default = [r["QUERY PLAN"] for r in await fetch_all(conn, sql, locate_params(lon, lat))]
    d_parallel = any("Gather" in line for line in default)
    d_time = next((line.strip() for line in default if line.startswith("Execution Time")), "?")
    print(f"  with the server defaults instead: parallel {'YES' if d_parallel else 'no'}; {d_time}")


def bench_pgbench(url: str, bbox: tuple[float, float, float, float], clients: int, workdir: Path) -> Stats:
    """pgbench -M prepared on the same statement; points uniform in the county's bbox."""
    x0, y0, x1, y1 = bbox
    # lon and lat are pgbench variables (bound, as the app binds them), drawn afresh for
    # every transaction; floor and scope_ids are literals of the values the SQL pass uses.
    params = {
        **locate_params(0.0, 0.0),
        "lon": f"{x0!r} + random(0, 1000000) / 1000000.0 * {x1 - x0!r}",
        "lat": f"{y0!r} + random(0, 1000000) / 1000000.0 * {y1 - y0!r}",
    }
    with psycopg.connect(c.libpq_url(url)) as conn:
        text = c.pgbench_script(conn, node_sql.LOCATE_SQL, params, {"lon", "lat"})
    script = workdir / "locate.pgbench"
    script.write_text(text)
    u = make_url(url)
    env = {
        **os.environ,
        "PGHOST": u.host or "127.0.0.1", "PGPORT": str(u.port or 5432), "PGUSER": u.username or "",
        "PGPASSWORD": u.password or "", "PGDATABASE": u.database or "",
        "PGOPTIONS": c.SESSION_OPTIONS,  # as the app's connections
    }  # fmt: skip
    cmd = [PGBENCH, "-M", "prepared", "-n", "-T", str(PGBENCH_SECONDS), "-c", str(clients), "-f", str(script)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if failed and int(failed.group(1)):
        print(f"  !! pgbench -c {clients}: {failed.group(1)} failed transactions")
    return {"mean": _number(r"latency average = ([\d.]+) ms", out), "per_s": _number(r"tps = ([\d.]+)", out)}


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    if found is None:
        sys.exit(f"pgbench printed no {pattern!r}:\n{text}")
    return float(found.group(1))


# --- shapely ------------------------------------------------------------------------


def bench_shapely(leaves: list[demo.DemoNode], points: np.ndarray) -> tuple[Stats, Stats, list[str]]:
    """STRtree over the leaf polygons: one query per point, then one bulk query."""
    geoms = np.array([n.geom for n in leaves])  # leaves sorted by code: lowest index = lowest code
    codes = [n.code for n in leaves]
    t0 = time.perf_counter()
    tree = shapely.STRtree(geoms)
    tree.query(shapely.points(points[:1]), predicate="covered_by")  # the tree is built lazily
    print(f"  STRtree over {len(leaves):,} leaves built in {time.perf_counter() - t0:.2f} s")
    pts = shapely.points(points)
    # query(p, predicate=P) keeps tree geometries g with P(p, g). "covers" would test
    # whether the point covers the polygon (never); "within" misses points on an edge.
    # "covered_by" is the polygon covering the point, like ST_Covers(geom, point).
    _check_predicate(tree, geoms, pts, leaves)
    for p in pts[:WARMUP]:
        tree.query(p, predicate="covered_by")
    times, answers = [], []
    start = time.perf_counter()
    for p in pts:
        t0 = time.perf_counter_ns()
        hits = tree.query(p, predicate="covered_by")
        best = hits.min() if hits.size else -1  # ties on shared edges: the lowest code, as the SQL
        times.append(time.perf_counter_ns() - t0)
        answers.append(codes[best] if best >= 0 else "")
    one = c.summary(times, time.perf_counter() - start)
    t0 = time.perf_counter()
    tree.query(pts, predicate="covered_by")
    bulk_s = time.perf_counter() - t0
    bulk = {"mean": bulk_s * 1e3 / len(pts), "per_s": len(pts) / bulk_s}
    return one, bulk, answers


def _check_predicate(tree: shapely.STRtree, geoms: np.ndarray, pts: np.ndarray, leaves: list[demo.DemoNode]) -> None:
    """The tree's answer against brute force on a few points, inside and on shared vertices."""
    probes = list(pts[:10]) + [shapely.Point(shapely.get_coordinates(leaves[i].geom)[0]) for i in (0, 7, 42)]
    for p in probes:
        brute = set(np.flatnonzero(shapely.covers(geoms, p)))
        tree_hits = set(tree.query(p, predicate="covered_by"))
        if brute != tree_hits:
            sys.exit(f"STRtree covered_by disagrees with brute force at {p}: {tree_hits} != {brute}")
    print(f"  STRtree 'covered_by' agrees with brute-force covers on {len(probes)} points (3 on shared vertices)")


# --- main ---------------------------------------------------------------------------


def run_scale(scale: int, n_points: int, port: int, keep_db: bool, workdir: Path) -> dict[str, Stats]:
    print(f"\n=== scale {scale} ===")
    t0 = time.perf_counter()
    county = demo.generate(scale=scale)
    print(f"  generated {len(county.nodes):,} nodes in {time.perf_counter() - t0:.1f} s")
    name = f"wuzhang_bench_s{scale}"
    try:
        url, loaded = prepare_database(scale, county)
        if loaded:
            print(f"  generate + load + analyse: {time.perf_counter() - t0:.1f} s")
        leaves = sorted(county.leaf_polygons, key=lambda n: n.code)
        points, expected = sample_points(leaves, n_points, np.random.default_rng(SEED))
        county_geom = county.nodes[0].geom
        assert county_geom is not None  # the county's outline
        bbox = county_geom.bounds
        pieces = asyncio.run(prewarm(url, points))
        print(f"  {len(leaves):,} leaf polygons, {pieces:,} node_piece rows, {n_points:,} points")
        asyncio.run(explain(url, float(points[0][0]), float(points[0][1])))

        callers = demo_callers(url)
        http, healthz, http_answers = bench_http(url, points, port, workdir / f"serve-s{scale}.log", callers)
        sql, sql_answers, (generic, custom) = asyncio.run(bench_sql(url, points))
        print(f"  prepared locate statement: {generic} runs on a generic plan, {custom} on custom plans")
        pgb1 = bench_pgbench(url, bbox, 1, workdir)
        pgb2 = bench_pgbench(url, bbox, 2, workdir)
        one, bulk, shp_answers = bench_shapely(leaves, points)
    finally:
        if not keep_db:
            c.drop_database(name)

    for label, answers in (("HTTP", http_answers), ("SQL", sql_answers), ("shapely", shp_answers)):
        wrong = sum(a != e for a, e in zip(answers, expected, strict=True))
        if wrong:
            print(f"  !! {label}: {wrong} of {len(expected)} points not routed to the leaf they were drawn in")
    # Share of pgbench's bbox points that fall outside the county (they return no row).
    probe = np.random.default_rng(SEED).uniform(bbox[:2], bbox[2:], size=(20000, 2))
    outside = 1 - shapely.contains_xy(county_geom, probe[:, 0], probe[:, 1]).mean()

    rows = [(f"HTTP /locate, {title}", r) for title, r in http.items()] + [
        ("HTTP GET /healthz (no database)", healthz),
        ("SQL prepared, psycopg, 1 connection", sql),
        ("pgbench -M prepared -c 1 (bbox points)", pgb1),
        ("pgbench -M prepared -c 2 (bbox points)", pgb2),
        ("shapely STRtree, one query per point", one),
        ("shapely STRtree, one bulk query", bulk),
    ]
    c.print_table(f"scale {scale}: {len(leaves):,} leaves, {n_points:,} points, serial unless noted", rows)
    # Other work on a shared machine shows up here first; quote it with the figures.
    print(f"  load average now: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    print(f"  pgbench points: uniform in the county bbox, {outside:.0%} of them outside the county (no row)")
    for title, r in http.items():
        print(f"  HTTP/SQL, {title}: {r['p50'] / sql['p50']:.1f}x at p50, {r['mean'] / sql['mean']:.1f}x mean")
    print(
        f"  SQL/shapely: {sql['p50'] / one['p50']:.0f}x at p50 (one at a time),"
        f" {sql['mean'] / bulk['mean']:.0f}x mean against bulk"
    )
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 17], help="demo scales (default: 1 17)")
    parser.add_argument("--points", type=int, default=2000, help="random points per scale (default 2000)")
    parser.add_argument("--port", type=int, default=PORT, help=f"port of the server (default {PORT}); must be free")
    parser.add_argument("--keep-db", action="store_true", help="keep wuzhang_bench_s{scale} for the next run")
    args = parser.parse_args()
    if not shutil.which(PGBENCH):
        sys.exit(f"pgbench not found at {PGBENCH} (set PGBENCH)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"locate benchmark: {os.cpu_count()} CPUs shared, unpinned, by this client, the server and PostgreSQL;"
          f" load average {load}")  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wuzhang-bench-") as tmp:
        for scale in args.scale:
            run_scale(scale, args.points, args.port, args.keep_db, Path(tmp))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
