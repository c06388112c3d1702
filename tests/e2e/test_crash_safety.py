"""kill -9 the API in the middle of a burst of reports: every report that got a 2xx is
in the database whole (case, ledger events, outbox rows), and no case is half-written."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.accounts import security, service
from geo import demo
from tests.conftest import PASSWORD, TEST_JWT_SECRET, current_chief_phone, settings_for_tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kill_9_during_a_burst_leaves_only_whole_reports(engine, database_url, loaded_county):
    settings = settings_for_tests(database_url)
    households = [n for n in loaded_county.nodes if n.level == "household"][1000:1008]
    tokens = []
    with Session(engine) as s:
        for h in households:  # one committed account per reporting chief
            user_id, _ = service.create_user(
                session=s, settings=settings, county_code=demo.COUNTY_CODE, phone=current_chief_phone(loaded_county, h.code),
                name="测试", password=PASSWORD, grants=[], actor=None, ip=None,
            )  # fmt: skip
            tokens.append(security.issue_access_token(settings=settings, user_id=user_id)[0])
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_JWT_SECRET": TEST_JWT_SECRET}
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--no-with-worker", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        accepted: list[int] = []
        stop = threading.Event()

        def phone(i: int) -> None:
            h, token = households[i], tokens[i]
            p = h.geom.point_on_surface()
            with httpx.Client(base_url=base, timeout=5) as c:
                for _ in range(200):  # bounded: the loop ends by itself
                    if stop.is_set():
                        return
                    body = {"lon": p.x, "lat": p.y, "category": "neighbours", "severity": 1, "description": "压测"}
                    try:
                        r = c.post("/api/v1/reports", json=body, headers={"Authorization": f"Bearer {token}",
                                                                          "Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
                    except httpx.HTTPError:
                        return  # the server died under us
                    if r.status_code in (200, 201):
                        accepted.append(r.json()["id"])

        threads = [threading.Thread(target=phone, args=(i,)) for i in range(len(households))]
        for t in threads:
            t.start()
        while len(accepted) < 40 and server.poll() is None:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
    assert len(accepted) >= 40
    with engine.connect() as c:
        for case_id in accepted:
            events = c.execute(text("SELECT count(*) FROM case_event WHERE case_id = :c"), {"c": case_id}).scalar()
            outbox = c.execute(text("SELECT count(*) FROM notification WHERE case_id = :c"), {"c": case_id}).scalar()
            assert events >= 2 and outbox >= 1, (case_id, events, outbox)
        half = c.execute(text(
            "SELECT c.id FROM case_file c WHERE NOT EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = c.id)"
            " OR NOT EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id)")).scalars().all()  # fmt: skip
        assert half == []


def test_twenty_concurrent_posts_with_one_key_make_one_case(engine, database_url, loaded_county):
    """A phone on a weak signal retries: 20 simultaneous sends of one report over HTTP."""
    settings = settings_for_tests(database_url)
    household = [n for n in loaded_county.nodes if n.level == "household"][1100]
    with Session(engine) as s:
        user_id, _ = service.create_user(
            session=s, settings=settings, county_code=demo.COUNTY_CODE,
            phone=current_chief_phone(loaded_county, household.code), name="测试", password=PASSWORD, grants=[],
            actor=None, ip=None,
        )  # fmt: skip
    token = security.issue_access_token(settings=settings, user_id=user_id)[0]
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_JWT_SECRET": TEST_JWT_SECRET}
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--no-with-worker", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    key = str(uuid.uuid4())
    p = household.geom.point_on_surface()
    body = {"lon": p.x, "lat": p.y, "category": "homestead", "severity": 2, "description": "宅基地边界"}
    answers: list[tuple[int, dict]] = []
    try:
        for _ in range(150):  # bounded: up to 30 s for the server to come up
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
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
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert sorted(status for status, _ in answers) == [200] * 19 + [201]
    assert len({a["id"] for _, a in answers}) == 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM case_file WHERE idempotency_key = :k"), {"k": key}).scalar() == 1
