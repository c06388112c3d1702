"""Where a request's time goes: CPU per request of the app itself, route by route.

    .venv/bin/python bench/request_cpu.py [--requests 3000]

Needs the database `bench/request_path.py --keep-db` leaves (`wuzhang_bench_http`). It
builds the real app with its lifespan (the pool, LISTEN) in this process and calls it as
an ASGI server would, with no network and no HTTP client in between, one request at a
time. It prints, per request, the wall time, this process's CPU time (the app: FastAPI,
the caller's step, psycopg, the answer) and the CPU time of the database's processes
(read from /proc: the server must run on this machine), from a route that does nothing
(`/healthz`) up to a report. The differences between the rows say what each layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import _common as c  # also puts the project root on sys.path

from app.accounts import demo as demo_accounts
from app.main import create_app
from app.settings import Settings
from geo import demo
from grid.db import fetch_one

NAME = "wuzhang_bench_http"


def database_cpu_s(postmaster: int) -> float:
    """CPU seconds used so far by the PostgreSQL server's processes (its backends, the WAL
    writer and the rest: every child of the postmaster)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process has ended
        if int(fields[1]) == postmaster:  # ppid
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def call(app: Any, scope: dict[str, Any], body: bytes = b"") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    return int(sent[0]["status"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    if not c.database_exists(NAME):
        raise SystemExit(f"no database {NAME}: run bench/request_path.py --keep-db first")
    app = create_app(Settings(database_url=c.app_database_url(NAME)))
    async with app.router.lifespan_context(app):
        while not app.state.principals.live:  # noqa: ASYNC110 - a flag, with no event to wait on
            await asyncio.sleep(0.05)
        async with app.state.db.connection() as conn:
            backend = Path(f"/proc/{conn.info.backend_pid}/stat")
            postmaster = int(backend.read_text().rsplit(")", 1)[1].split()[1])  # noqa: ASYNC240 - /proc, no disk
            phones = c.demo_phones(await demo_accounts.plan(conn, demo.COUNTY_CODE))
            row = await fetch_one(conn, "SELECT max(id) AS case_id FROM case_file")
            point = await fetch_one(
                conn,
                "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(geom) AS p FROM node"
                " WHERE level = 'household' AND code LIKE '610827001-%%' ORDER BY code LIMIT 1) x",
            )
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            tokens = {}
            for who in ("dispatcher", "central household chief"):
                r = await http.post("/api/v1/auth/token", data={"username": phones[who],
                                                                "password": demo_accounts.DEMO_PASSWORD})  # fmt: skip
                tokens[who] = r.json()["access_token"]
        assert row is not None and point is not None
        report = json.dumps({"lon": point["lon"], "lat": point["lat"], "category": "neighbours", "severity": 1,
                             "description": "压测"}).encode()  # fmt: skip
        routes = [  # (title, who, method, path, query, body)
            ("/healthz (nothing)", "dispatcher", "GET", "/healthz", "", b""),
            ("/api/v1/me (the caller's step only)", "dispatcher", "GET", "/api/v1/me", "", b""),
            ("grid tile z14, from the LRU", "dispatcher", "GET", "/tiles/grid/14/13202/6332.mvt", "", b""),
            ("locate, dispatcher (read + audit)", "dispatcher", "GET", "/api/v1/grid/locate",
             f"lon={point['lon']}&lat={point['lat']}", b""),
            ("case read, dispatcher (+ audit)", "dispatcher", "GET", f"/api/v1/cases/{row['case_id']}", "", b""),
            ("case list, 50 newest in scope", "dispatcher", "GET", "/api/v1/cases", "limit=50", b""),
            ("report (a new Idempotency-Key each)", "central household chief", "POST", "/api/v1/reports", "", report),
        ]  # fmt: skip
        print(f"in-process, one request at a time, {args.requests} requests each (us per request)")
        print(f"  {'route':<40} {'wall':>8} {'app CPU':>8} {'DB CPU':>8}")
        for title, who, method, path, query, body in routes:
            headers = [(b"host", b"bench"), (b"authorization", f"Bearer {tokens[who]}".encode())]
            if body:
                headers.append((b"content-type", b"application/json"))
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                     "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("bench", 80)}  # fmt: skip

            def request(scope: dict[str, Any] = scope) -> dict[str, Any]:
                if scope["method"] == "GET":
                    return scope
                key = (b"idempotency-key", str(uuid.uuid4()).encode())  # a new report each time
                return {**scope, "headers": [*scope["headers"], key]}

            n = args.requests if method == "GET" else args.requests // 5
            for _ in range(200):
                status = await call(app, request(), body)
            assert status in (200, 201), (path, status)
            w0, c0, d0 = time.perf_counter(), time.process_time(), database_cpu_s(postmaster)
            for _ in range(n):
                await call(app, request(), body)
            wall, cpu, db = time.perf_counter() - w0, time.process_time() - c0, database_cpu_s(postmaster) - d0
            print(f"  {title:<40} {wall / n * 1e6:>8.0f} {cpu / n * 1e6:>8.0f} {db / n * 1e6:>8.0f}")


if __name__ == "__main__":
    asyncio.run(main())
