"""The request path measured side by side: `wrk` on each route, and its floor in the same run.

    .venv/bin/python bench/request_path.py [--seconds 10] [--concurrency 1 16 64] [--soak 60] [--keep-db]

Needs DATABASE_URL (eval "$(bash scripts/dev.sh db-env)"), wrk and pgbench (Debian's
`wrk` and `postgresql-client`; `scripts/dev.sh bench` installs them and runs this).

It makes the database `wuzhang_bench_http` beside DATABASE_URL (the demo county, its demo
accounts, 500 open cases), starts `wuzhang serve --workers 2 --no-with-worker` on
127.0.0.1:8012, and then, for each route and each concurrency:

  HTTP   wrk on the route (keep-alive, the demo account's bearer token), req/s, p50, p99;
  floor  pgbench -M prepared on the exact statement the route runs, with the same
         values, the same concurrency and the app's session settings; for a report
         (a transaction of several statements and Python between them) the floor is the
         use case itself (grid.cases.service.submit_report) run in this process on as
         many connections, with no HTTP;

and prints one table with the ratio HTTP / floor. Cold tiles come from a second server
whose tile cache is off. With --soak S it then holds 500 connections for S seconds: 300
through wrk (locate, case reads and reports mixed) and 200 Server-Sent Event inbox
streams, and reports 5xx answers, p50/p99 and the servers' memory at the start, middle
and end.

All processes share the machine's cores: the figures are for this machine as a whole,
wrk and pgbench included. Read ratios and medians of several runs, never one number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as c  # also puts the project root on sys.path
import httpx
import numpy as np
import psycopg
from sqlalchemy import make_url

from app.accounts import demo as demo_accounts
from app.accounts import repository as accounts_sql
from app.accounts import security
from app.accounts.service import ROOMS
from app.settings import Settings
from geo import demo, tiles
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.db import connect, connect_kwargs, fetch_all, fetch_value
from grid.repository import nodes as node_sql

NAME = "wuzhang_bench_http"
PORT, COLD_PORT = 8012, 8013
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
LUA = Path(__file__).with_name("wrk")  # the wrk scripts
OUT = Path(__file__).with_name("out")


# --- the database --------------------------------------------------------------------


async def prepare(url: str) -> dict[str, Any]:
    """The demo county with its accounts and 500 open cases; returns what the runs need."""
    settings = Settings(database_url=url)
    county = demo.generate(scale=1)
    conn = await connect(c.libpq_url(url))
    async with conn:
        if not await node_sql.county_loaded(conn, code=demo.COUNTY_CODE):
            from grid import service

            async with conn.transaction():
                await service.load_county(conn=conn, county_code=demo.COUNTY_CODE, nodes=county.nodes,
                                          posts=county.posts)  # fmt: skip
        accounts, _ = await demo_accounts.ensure(conn=conn, settings=settings, county_code=demo.COUNTY_CODE)
        households = [n for n in county.nodes if n.level == "household" and n.code.startswith("610827001-")]
        household = households[0]
        reporter = await fetch_value(
            conn,
            "SELECT po.person_id FROM post po JOIN node n ON n.id = po.node_id"
            " WHERE n.code = %(c)s AND po.role = 'chief' AND po.ended_at IS NULL",
            {"c": household.code},
        )
        if await fetch_value(conn, "SELECT count(*) FROM case_file") < 500:
            rng = np.random.default_rng(20261203)
            # Severity 1, as the soak's reports (wrk/report.lua): the same route, the same people notified.
            for i, k in enumerate(rng.integers(len(households), size=500)):
                geom = (household if i == 0 else households[k]).geom
                assert geom is not None
                p = geom.point_on_surface()
                report = cases.Report(lon=p.x, lat=p.y, crs=cases.CRS.wgs84, category="neighbours", severity=1,
                                      description="压测", parties=(cases.Party("张三", "13800000001", "申请人"),))  # fmt: skip
                await cases.submit_report(conn=conn, actor=cases.Actor(reporter), key=uuid.uuid4(), report=report,
                                          now=datetime.now(UTC), signer=settings.ledger_signer(),
                                          rooms=ROOMS, county_code=demo.COUNTY_CODE)  # fmt: skip
        # Listeners for the soak's inbox streams: 200 chiefs with accounts of their own (no
        # password: the bench signs their tokens, as the server would). The first are the
        # people a report at the household notifies (the soak reports there), so some
        # streams have news to carry.
        notified = [r["person_id"] for r in await fetch_all(
            conn,
            "SELECT r.person_id FROM case_recipient r WHERE r.case_id = (SELECT max(c.id) FROM case_file c"
            " JOIN node n ON n.id = c.located_node_id WHERE n.code = %(household)s)",
            {"household": household.code})]  # fmt: skip
        await conn.execute(
            """
INSERT INTO user_account (county_code, person_id, phone, password_hash)
SELECT '610827', pe.id, pe.phone, 'none' FROM post po JOIN person pe ON pe.id = po.person_id
 WHERE (po.role = 'chief' OR pe.id = ANY(%(notified)s)) AND po.ended_at IS NULL AND pe.phone IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM user_account u WHERE u.person_id = pe.id OR u.phone = pe.phone)
 ORDER BY pe.id = ANY(%(notified)s) DESC, po.id LIMIT 200
ON CONFLICT DO NOTHING
""",
            {"notified": notified},
        )
        listeners = [r["id"] for r in await fetch_all(
            conn, "SELECT id FROM user_account WHERE password_hash = 'none' OR person_id = ANY(%(notified)s)"
            " ORDER BY person_id = ANY(%(notified)s) DESC, id LIMIT 200", {"notified": notified})]  # fmt: skip
        print(f"  {len(listeners)} inbox listeners; a report at the household notifies persons {notified}")
        await conn.execute("VACUUM ANALYZE")
        case_id = await fetch_value(conn, "SELECT max(id) FROM case_file")
        phones = c.demo_phones(accounts)
        assert household.geom is not None
        p = household.geom.point_on_surface()
        return {"phones": phones, "household": household.code, "point": (p.x, p.y), "case_id": case_id,
                "reporter": reporter, "listeners": listeners}  # fmt: skip


# --- servers ---------------------------------------------------------------------------


def start_server(url: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-with-worker", "--workers", "2", "--port", str(port)],
        cwd=c.ROOT, env={**os.environ, "DATABASE_URL": url, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if r.status_code == 200 and r.json().get("listening"):
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            sys.exit(f"the server stopped; see {log}")
        time.sleep(0.3)
    stop(process)
    sys.exit(f"the server did not get ready; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    with_group = os.getpgid(process.pid)
    os.killpg(with_group, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(with_group, signal.SIGKILL)
        process.wait()


def server_pids(process: subprocess.Popen[bytes]) -> list[int]:
    """The serve process and its children (uvicorn's workers)."""
    found = [process.pid]
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(p) for p in children]
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def login(port: int, phone: str) -> str:
    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                   data={"username": phone, "password": demo_accounts.DEMO_PASSWORD})  # fmt: skip
    r.raise_for_status()
    return str(r.json()["access_token"])


# --- wrk -------------------------------------------------------------------------------


def wrk(url: str, *, connections: int, seconds: int, token: str, script: str = "get.lua",
        env: dict[str, str] | None = None) -> dict[str, float]:  # fmt: skip
    threads = min(connections, 2)
    out = subprocess.run(
        [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA / script), url],
        env={**os.environ, "TOKEN": token, "WRK_LUA_DIR": str(LUA), **(env or {})}, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    found = dict(re.findall(r"^(\w+): ([\d.]+)$", out, re.M))
    if "requests" not in found:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    return {k: float(v) for k, v in found.items()}


# --- pgbench ---------------------------------------------------------------------------


def pgbench(url: str, script: str, *, clients: int, seconds: int) -> dict[str, float]:
    u = make_url(url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        # The session settings of the API's own connections (parallel query and JIT off).
        options = connect_kwargs()["options"]
        env = {**os.environ, "PGPASSWORD": u.password or "", "PGOPTIONS": options}
        cmd = [PGBENCH, "-n", "-M", "prepared", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
               "-U", u.username or "", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
               "-f", str(path), "-l", "--log-prefix", f"{tmp}/log", u.database or ""]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tmp).stdout
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
        latencies = [int(line.split()[2]) for log in Path(tmp).glob("log*") for line in log.read_text().splitlines()]
    us = np.asarray(latencies, dtype=np.float64)
    return {"per_s": tps, "p50": float(np.percentile(us, 50)) / 1000, "p99": float(np.percentile(us, 99)) / 1000}


# --- the report use case without HTTP ----------------------------------------------------


async def report_floor(url: str, ctx: dict[str, Any], *, clients: int, seconds: float) -> dict[str, float]:
    settings = Settings(database_url=url)
    lon, lat = ctx["point"]
    report = cases.Report(lon=lon, lat=lat, crs=cases.CRS.wgs84, category="neighbours", severity=1,
                          description="压测")  # fmt: skip
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with await connect(c.libpq_url(url)) as conn:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                await cases.submit_report(conn=conn, actor=cases.Actor(ctx["reporter"]), key=uuid.uuid4(),
                                          report=report, now=datetime.now(UTC),
                                          signer=settings.ledger_signer(), rooms=ROOMS, county_code=demo.COUNTY_CODE,
                                          audit=None)  # fmt: skip
                latencies.append(time.perf_counter() - t0)

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.monotonic() - start
    ms = np.asarray(latencies) * 1000
    return {"per_s": len(latencies) / wall, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


# --- the runs -------------------------------------------------------------------------------


def statements(url: str, ctx: dict[str, Any], ids: Dispatcher) -> dict[str, str]:
    """pgbench scripts of the statements the routes run, with the values wrk sends."""
    lon, lat = ctx["point"]
    now = datetime.now(UTC)
    with psycopg.connect(c.libpq_url(url), autocommit=True) as conn:
        out: dict[str, str] = {}
        locate = node_sql.locate_params(lon=lon, lat=lat, floor=None, scope_ids=[], county=demo.COUNTY_CODE)
        out["locate_read"] = c.pgbench_script(conn, node_sql.LOCATE_SQL, locate, {"lon", "lat"})
        audit = accounts_sql.AuditedRead(county_code=demo.COUNTY_CODE, actor_user_id=ids.user_id,
                                         action="read.chief_phone", key="phones", ip="127.0.0.1")  # fmt: skip
        scoped = node_sql.locate_params(
            lon=lon, lat=lat, floor=None, scope_ids=[ids.township_id], county=demo.COUNTY_CODE
        )
        out["locate_audited"] = c.pgbench_script(conn, audit.wrap(node_sql.LOCATE_SQL), {**scoped, **audit.params},
                                                 {"lon", "lat", "audit_actor"})  # fmt: skip
        case_audit = accounts_sql.AuditedRead(county_code=demo.COUNTY_CODE, actor_user_id=ids.user_id,
                                              action="read.case_parties", key="parties", ip="127.0.0.1")  # fmt: skip
        detail = case_sql.case_detail_params(case_id=ctx["case_id"], person_id=ids.person_id,
                                             read_paths=[ids.township_path])  # fmt: skip
        out["case_read"] = c.pgbench_script(
            conn,
            case_audit.wrap(case_sql.CASE_DETAIL_SQL),
            {**detail, **case_audit.params},
            {"case_id", "reader_pid", "audit_actor"},
        )
        z, x, y = grid_tile_of(lon, lat, 14)
        reader = case_sql.reader_params(
            person_id=ids.person_id, read_paths=[ids.township_path], now=now, counties=[demo.COUNTY_CODE]
        )
        tile = {**reader, "z": z, "x": x, "y": y, "extent": tiles.EXTENT, "buffer": tiles.BUFFER,
                "levels": list(tiles.levels_for_zoom(z))}  # fmt: skip
        script = c.pgbench_script(conn, tiles._GRID_TILE, tile, {"z", "x", "y", "extent", "buffer", "reader_pid"})
        # The cold tiles walk a 4×4 block of z14 tiles around the point, as wrk's script does.
        out["tile"] = script.replace(f"\\set x {x}\n", f"\\set x {x - 2} + random(0, 3)\n").replace(
            f"\\set y {y}\n", f"\\set y {y - 2} + random(0, 3)\n")  # fmt: skip
    return out


def grid_tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    import math

    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@dataclass(frozen=True)
class Dispatcher:
    """The demo dispatcher: who reads the cases and tiles, and the township they see."""

    user_id: int
    person_id: int
    township_id: int
    township_path: str


def dispatcher(url: str, ctx: dict[str, Any]) -> Dispatcher:
    with psycopg.connect(c.libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT u.id, u.person_id, n.id AS node, n.path::text AS path FROM user_account u"
            ' JOIN "grant" g ON g.user_id = u.id JOIN node n ON n.id = g.node_id WHERE u.phone = %s',
            (ctx["phones"]["dispatcher"],),
        ).fetchone()
    assert row is not None
    return Dispatcher(*row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="per wrk and pgbench run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--soak", type=int, default=0, help="seconds of the 500-connection run (0: skip)")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database for the next run")
    args = parser.parse_args()
    for tool in (WRK, PGBENCH):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: scripts/dev.sh bench installs it")
    OUT.mkdir(exist_ok=True)
    if not c.database_exists(NAME):
        c.create_database(NAME)
    url = c.database_url(NAME)
    c.migrate(url)
    print("preparing the bench database (the demo county, its accounts, 500 cases) ...", flush=True)
    ctx = asyncio.run(prepare(url))
    ids = dispatcher(url, ctx)
    scripts = statements(url, ctx, ids)
    lon, lat = ctx["point"]
    z, x, y = grid_tile_of(lon, lat, 14)
    base = f"http://127.0.0.1:{PORT}"
    routes = [
        ("locate, no data scope (a read)", "admin", f"{base}/api/v1/grid/locate?lon={lon}&lat={lat}", "get.lua",
         {}, ("pgbench", "locate_read")),
        ("locate, dispatcher (read + audit row)", "dispatcher", f"{base}/api/v1/grid/locate?lon={lon}&lat={lat}",
         "get.lua", {}, ("pgbench", "locate_audited")),
        ("case read, dispatcher (+ audit row)", "dispatcher", f"{base}/api/v1/cases/{ctx['case_id']}", "get.lua",
         {}, ("pgbench", "case_read")),
        ("grid tile z14, warm (LRU)", "dispatcher", f"{base}/tiles/grid/{z}/{x}/{y}.mvt", "get.lua", {},
         ("pgbench", "tile")),
        ("grid tile z14, cold (no LRU), 16 tiles", "dispatcher",
         f"http://127.0.0.1:{COLD_PORT}/tiles/grid/{z}/{x - 2}/{y - 2}.mvt", "tiles.lua", {"TILES": "4"},
         ("pgbench", "tile")),
        ("report (unique Idempotency-Key)", "household", f"{base}/api/v1/reports", "report.lua",
         {"LON": str(lon), "LAT": str(lat)}, ("use case", "")),
        ("healthz (no database)", "admin", f"{base}/healthz", "get.lua", {}, None),
    ]  # fmt: skip
    log_dir = Path(tempfile.mkdtemp(prefix="wuzhang-bench-"))
    server = start_server(c.app_database_url(NAME), PORT, {}, log_dir / "server.log")
    cold = start_server(c.app_database_url(NAME), COLD_PORT, {"WUZHANG_TILE_CACHE_ENTRIES": "0"}, log_dir / "cold.log")
    results: list[dict[str, Any]] = []
    try:
        household_phone = next(p for t, p in ctx["phones"].items() if t == "central household chief")
        tokens = {"admin": login(PORT, ctx["phones"]["admin"]), "dispatcher": login(PORT, ctx["phones"]["dispatcher"]),
                  "household": login(PORT, household_phone)}  # fmt: skip
        for title, who, target, script, env, floor in routes:
            for conc in args.concurrency:
                wrk(target, connections=conc, seconds=2, token=tokens[who], script=script, env=env)  # warm up
                h = wrk(target, connections=conc, seconds=args.seconds, token=tokens[who], script=script, env=env)
                row: dict[str, Any] = {"route": title, "c": conc, "http": h}
                if floor and floor[0] == "pgbench":
                    row["floor"] = pgbench(url, scripts[floor[1]], clients=conc, seconds=args.seconds)
                    row["floor_kind"] = "pgbench"
                elif floor:
                    row["floor"] = asyncio.run(report_floor(url, ctx, clients=conc, seconds=args.seconds))
                    row["floor_kind"] = "use case"
                results.append(row)
                print_row(row, flush=True)
        soak = run_soak(server, tokens, ctx, args.soak) if args.soak else None
    finally:
        stop(cold)
        stop(server)
        if not args.keep_db:
            c.drop_database(NAME)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"http-{stamp}.json").write_text(json.dumps({"routes": results, "soak": soak}, indent=1))
    print_table(results)
    if soak:
        print_soak(soak)
    print(f"\nraw figures: {OUT / f'http-{stamp}.json'}; server logs: {log_dir}")


# --- 500 connections ----------------------------------------------------------------------


def run_soak(server: subprocess.Popen[bytes], tokens: dict[str, str], ctx: dict[str, Any], seconds: int) -> dict:
    lon, lat = ctx["point"]
    pids = server_pids(server)
    memory = [("start", rss_mib(pids))]
    env = {"LON": str(lon), "LAT": str(lat), "CASE": str(ctx["case_id"]), "REPORTER": tokens["household"]}
    settings = Settings()
    listener_tokens = Path(tempfile.mkstemp(prefix="wuzhang-sse-")[1])
    listener_tokens.write_text("\n".join(security.issue_access_token(settings=settings, user_id=u)[0]
                                         for u in ctx["listeners"]))  # fmt: skip
    sse = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sse_clients.py")), "--seconds",
                            str(seconds), "--port", str(PORT), "--tokens", str(listener_tokens)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    wrk_proc = subprocess.Popen(
        [WRK, "-t2", "-c300", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA / "mixed.lua"),
         f"http://127.0.0.1:{PORT}"], env={**os.environ, "TOKEN": tokens["dispatcher"], "WRK_LUA_DIR": str(LUA), **env},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(seconds / 2)
    memory.append(("middle", rss_mib(pids)))
    out, _ = wrk_proc.communicate()
    sse_out, _ = sse.communicate()
    memory.append(("end", rss_mib(pids)))
    found = {k: float(v) for k, v in re.findall(r"^(\w+): ([\d.]+)$", out, re.M)}
    return {"wrk": found, "sse": json.loads(sse_out.strip().splitlines()[-1]), "memory_mib": memory,
            "seconds": seconds}  # fmt: skip


# --- printing -------------------------------------------------------------------------------


def print_row(row: dict[str, Any], flush: bool = False) -> None:
    h, f = row["http"], row.get("floor")
    ratio = f"{h['per_s'] / f['per_s']:.2f}" if f else "-"
    floor = f"{f['per_s']:>9.0f} {f['p50']:>8.2f} {f['p99']:>8.2f}" if f else f"{'-':>9} {'-':>8} {'-':>8}"
    print(f"  {row['route']:<42} {row['c']:>3} {h['per_s']:>9.0f} {h['p50_ms']:>8.2f} {h['p99_ms']:>8.2f}"
          f" {int(h.get('non2xx', 0)):>6}  {floor}  {row.get('floor_kind', ''):<9} {ratio:>6}", flush=flush)  # fmt: skip


def print_table(results: list[dict[str, Any]]) -> None:
    print("\nHTTP (wrk) against its floor in the same run (req/s; p50 and p99 in ms)")
    print(f"  {'route':<42} {'c':>3} {'HTTP/s':>9} {'p50':>8} {'p99':>8} {'non2xx':>6}  "
          f"{'floor/s':>9} {'p50':>8} {'p99':>8}  {'floor':<9} {'ratio':>6}")  # fmt: skip
    for row in results:
        print_row(row)


def print_soak(soak: dict[str, Any]) -> None:
    w, s = soak["wrk"], soak["sse"]
    print(f"\n500 connections for {soak['seconds']} s: 300 wrk (locate 50%, case read 30%, report 20%) + "
          f"{s['streams']} SSE inbox streams")  # fmt: skip
    print(f"  wrk: {w['requests']:.0f} requests, {w['per_s']:.0f}/s, p50 {w['p50_ms']:.1f} ms, "
          f"p99 {w['p99_ms']:.1f} ms, 5xx {w.get('fivexx', 0):.0f}, other non-2xx {w.get('non2xx', 0):.0f}, "
          f"socket errors {w.get('errors', 0):.0f}")  # fmt: skip
    print(f"  SSE: {s['opened']} streams opened, {s['events']} events, {s['failed']} failed")
    print("  server memory (MiB, all processes): " + ", ".join(f"{k} {v:.0f}" for k, v in soak["memory_mib"]))


if __name__ == "__main__":
    main()
