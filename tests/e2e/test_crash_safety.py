"""kill -9 the API in the middle of a burst of reports: every report that got a 2xx is
in the database whole (case, ledger events, outbox rows), and no case is half-written.

A real server process (`wuzhang serve --workers 1`, so the process killed is the one
serving) on a database of the test's own."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from app.accounts import security, service
from app.settings import libpq_url
from geo import demo
from grid.db import connect, fetch_all, fetch_value
from tests.conftest import PASSWORD, TEST_JWT_SECRET, current_chief_phone, settings_for_tests

LEDGER_KEY = base64.b64encode(b"k" * 32).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_on(url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`wuzhang serve` with one server process and no worker, up and ready."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "WUZHANG_JWT_SECRET": TEST_JWT_SECRET, "WUZHANG_LEDGER_KEY": LEDGER_KEY}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-with-worker", "--workers", "1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        ready = False
        for _ in range(150):  # bounded: up to about 30 s for the server to come up
            if server.poll() is not None:
                break
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    ready = True
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready, f"the server did not come up (exit code {server.poll()})"
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)


async def chief_tokens(url: str, county: demo.DemoCounty, household_codes: list[str]) -> list[str]:
    """One committed account per household's chief, and an access token for each."""
    settings = settings_for_tests(url)
    tokens = []
    async with await connect(libpq_url(url)) as conn:
        for code in household_codes:
            user_id, _ = await service.create_user(
                conn=conn, settings=settings, county_code=demo.COUNTY_CODE, phone=current_chief_phone(county, code),
                name="测试", password=PASSWORD, grants=[], actor=None, ip=None,
            )  # fmt: skip
            tokens.append(security.issue_access_token(settings=settings, user_id=user_id)[0])
    return tokens


async def test_kill_9_during_a_burst_leaves_only_whole_reports(fresh_database, loaded_county):
    households = [n for n in loaded_county.nodes if n.level == "household"][1000:1008]
    tokens = await chief_tokens(fresh_database, loaded_county, [h.code for h in households])
    accepted: list[int] = []
    refused: list[tuple[int, str]] = []
    killed_while_up = False

    def burst() -> None:
        nonlocal killed_while_up
        with server_on(fresh_database) as (server, base):
            stop = threading.Event()

            def phone(i: int) -> None:
                h, token = households[i], tokens[i]
                p = h.geom.point_on_surface()
                with httpx.Client(base_url=base, timeout=5) as c:
                    for _ in range(200):  # bounded: the loop ends by itself
                        if stop.is_set():
                            return
                        body = {"lon": p.x, "lat": p.y, "category": "neighbours", "severity": 1, "description": "压测"}
                        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
                        try:
                            r = c.post("/api/v1/reports", json=body, headers=headers)
                        except httpx.HTTPError:
                            return  # the server died under us
                        if r.status_code in (200, 201):
                            accepted.append(r.json()["id"])
                        else:
                            refused.append((r.status_code, r.text))

            threads = [threading.Thread(target=phone, args=(i,)) for i in range(len(households))]
            for t in threads:
                t.start()
            # Until 40 reports are in (or every phone has given up, which fails below).
            while len(accepted) < 40 and server.poll() is None and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            killed_while_up = server.poll() is None
            server.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
            stop.set()
            for t in threads:
                t.join(timeout=30)
            server.wait(timeout=30)

    await asyncio.to_thread(burst)
    assert killed_while_up, "the server had exited before it was killed"
    assert len(accepted) >= 40, refused[:3]
    async with await connect(libpq_url(fresh_database)) as c:
        for case_id in accepted:
            events = await fetch_value(c, "SELECT count(*) FROM case_event WHERE case_id = %(c)s", {"c": case_id})
            outbox = await fetch_value(c, "SELECT count(*) FROM notification WHERE case_id = %(c)s", {"c": case_id})
            assert events >= 2 and outbox >= 1, (case_id, events, outbox)
        half = await fetch_all(
            c,
            "SELECT c.id FROM case_file c WHERE NOT EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = c.id)"
            " OR NOT EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id)",
        )
        assert half == []  # every case, also one committed but whose answer the kill cut off


async def test_twenty_concurrent_posts_with_one_key_make_one_case(fresh_database, loaded_county):
    """A phone on a weak signal retries: 20 simultaneous sends of one report over HTTP."""
    household = [n for n in loaded_county.nodes if n.level == "household"][1100]
    [token] = await chief_tokens(fresh_database, loaded_county, [household.code])
    key = str(uuid.uuid4())
    p = household.geom.point_on_surface()
    body = {"lon": p.x, "lat": p.y, "category": "homestead", "severity": 2, "description": "宅基地边界"}
    answers: list[tuple[int, dict]] = []

    def retries() -> None:
        with server_on(fresh_database) as (server, base):
            barrier = threading.Barrier(20, timeout=30)

            def send() -> None:
                with httpx.Client(base_url=base, timeout=30) as c:
                    barrier.wait()
                    r = c.post("/api/v1/reports", json=body,
                               headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})  # fmt: skip
                    answers.append((r.status_code, r.json()))

            threads = [threading.Thread(target=send) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            server.terminate()

    await asyncio.to_thread(retries)
    assert sorted(status for status, _ in answers) == [200] * 19 + [201], answers[:3]
    assert len({a["id"] for _, a in answers}) == 1
    async with await connect(libpq_url(fresh_database)) as c:
        n = await fetch_value(c, "SELECT count(*) FROM case_file WHERE idempotency_key = %(k)s", {"k": key})
        assert n == 1
