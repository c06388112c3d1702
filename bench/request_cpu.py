"""Where a request's time goes: CPU per request of the app itself, route by route.

    .venv/bin/python bench/request_cpu.py [--requests 3000]

Needs the database `bench/request_path.py --keep-db` leaves (`wuzhang_bench_http`). It
builds the real app with its lifespan (the pool, LISTEN) in this process and calls it as
an ASGI server would, with no network and no HTTP client in between, one request at a
time. It prints wall time and this process's CPU time per request (the database's CPU is
another process's and not counted), from a route that does nothing (`/healthz`) up to
the ones that query. The differences between the rows say what each layer costs:
FastAPI's own handling, the caller's login step, the query and its rows, the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _common as c  # also puts the project root on sys.path

from app.accounts import demo as demo_accounts
from app.main import create_app
from app.settings import Settings
from grid.db import fetch_one

NAME = "wuzhang_bench_http"


async def call(app: Any, scope: dict[str, Any]) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

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
    app = create_app(Settings(database_url=c.database_url(NAME)))
    async with app.router.lifespan_context(app):
        while not app.state.principals.live:  # noqa: ASYNC110 - a flag, with no event to wait on
            await asyncio.sleep(0.05)
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            r = await http.post("/api/v1/auth/token", data={"username": "19100000001",
                                                            "password": demo_accounts.DEMO_PASSWORD})  # fmt: skip
            token = r.json()["access_token"]
        async with app.state.db.connection() as conn:
            row = await fetch_one(conn, "SELECT max(id) AS case_id FROM case_file")
            point = await fetch_one(
                conn,
                "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(geom) AS p FROM node"
                " WHERE level = 'household' AND code LIKE '610827001-%%' ORDER BY code LIMIT 1) x",
            )
        assert row is not None and point is not None
        routes = [
            ("/healthz (nothing)", "/healthz", ""),
            ("/api/v1/me (the caller's step only)", "/api/v1/me", ""),
            ("grid tile z14, from the LRU", "/tiles/grid/14/13202/6332.mvt", ""),
            ("locate, dispatcher (read + audit)", "/api/v1/grid/locate", f"lon={point['lon']}&lat={point['lat']}"),
            ("case read, dispatcher (+ audit)", f"/api/v1/cases/{row['case_id']}", ""),
            ("case list, 50 newest in scope", "/api/v1/cases", "limit=50"),
        ]
        print(f"in-process, one request at a time, {args.requests} requests each (us per request)")
        print(f"  {'route':<40} {'wall':>8} {'CPU':>8}")
        for title, path, query in routes:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                     "root_path": "", "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
                     "client": ("127.0.0.1", 1), "server": ("bench", 80)}  # fmt: skip
            for _ in range(200):
                status = await call(app, scope)
            assert status == 200, (path, status)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                await call(app, scope)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            print(f"  {title:<40} {wall / args.requests * 1e6:>8.0f} {cpu / args.requests * 1e6:>8.0f}")


if __name__ == "__main__":
    asyncio.run(main())
