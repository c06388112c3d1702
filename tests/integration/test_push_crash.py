"""kill -9 a real worker process mid-batch, start another: no notification is lost.

A database of its own (the outbox is counted whole), a fake FCM server in this process,
and `python -m app.cli worker` pointed at it through WUZHANG_FCM_URL.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import signal
import subprocess
import sys

from app import push
from app.metrics import LATENCY_BUCKETS, PushCollector
from app.settings import libpq_url
from grid.db import connect, fetch_all, fetch_value
from tests.fake_fcm import OK, Answer, FakeFcm

N, CLAIM = 300, 100


async def wait_for(what, timeout_s=60.0):
    """Until `what()` (or its awaited value) is true: the worker is another process, so
    its progress is polled; the limit only stops a hang."""
    async with asyncio.timeout(timeout_s):
        while True:
            done = what()
            if inspect.isawaitable(done):
                done = await done
            if done:
                return
            await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_batch_loses_nothing(fresh_database, tmp_path):
    url = libpq_url(fresh_database)
    # Every 10th phone is gone for good: those end failed, with the reason.
    answer = lambda token, n: Answer(404, "UNREGISTERED") if token.endswith("0") else OK  # noqa: E731
    worker = None
    async with await connect(url) as conn:
        assert await fetch_value(conn, "SELECT count(*) FROM notification") == 0  # the outbox is ours alone
        assert await fetch_value(conn, "SELECT count(*) FROM device") == 0
        async with conn.transaction():
            pids = [r["id"] for r in await fetch_all(conn, "INSERT INTO person (county_code, name) SELECT '610827',"
                                                           " '人' || g FROM generate_series(1, %(n)s) g RETURNING id",
                                                     {"n": N})]  # fmt: skip
            await conn.execute("INSERT INTO device (county_code, token, person_id, platform)"
                               " SELECT '610827', 'crash-' || p, p, 'android' FROM unnest(%(p)s::bigint[]) p",
                               {"p": pids})  # fmt: skip
            await conn.execute("INSERT INTO notification (county_code, person_id, kind, title, body, dedupe_key,"
                               " created_at, next_attempt_at) SELECT '610827', p, 'info', '通知', '崩溃演练',"
                               " 'crash:' || p, now(), now() FROM unnest(%(p)s::bigint[]) p", {"p": pids})  # fmt: skip
    try:
        with FakeFcm(answer, delay_s=0.5) as fake:
            env = {**os.environ, "DATABASE_URL": fresh_database,
                   "WUZHANG_LEDGER_KEY": base64.b64encode(b"k" * 32).decode(),
                   "WUZHANG_FCM_CREDENTIALS": str(fake.write_service_account(tmp_path / "sa.json")),
                   "WUZHANG_FCM_URL": fake.send_url, "WUZHANG_PUSH_CLAIM": str(CLAIM),
                   "WUZHANG_PUSH_LEASE_S": "2", "WUZHANG_WORKER_INTERVAL_S": "0.2"}  # fmt: skip

            def start():
                return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

            worker = start()
            # The whole first batch is on the wire (the fake answers after 0.5 s): kill -9 now.
            await wait_for(lambda: len(fake.messages) >= CLAIM)
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait, 10)
            async with await connect(url) as conn:
                claimed = await fetch_value(conn, "SELECT count(*) FROM notification WHERE attempts > 0")
                recorded = await fetch_value(
                    conn, "SELECT count(*) FROM notification WHERE delivery_state <> 'pending'"
                )
            assert claimed == CLAIM and recorded == 0, "killed after the claim's commit, before any result"

            worker = start()

            async def drained():
                async with await connect(url) as conn:
                    pending = "SELECT count(*) FROM notification WHERE delivery_state = 'pending'"
                    return await fetch_value(conn, pending) == 0

            await wait_for(drained, timeout_s=60)
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 20)
            worker = None

            async with await connect(url) as conn:
                rows = await fetch_all(conn, "SELECT id, person_id, delivery_state, last_error, delivered_at, attempts"
                                             " FROM notification")  # fmt: skip
                devices = await fetch_value(conn, "SELECT count(*) FROM device")
                figures = await push.metrics_figures(conn, LATENCY_BUCKETS)
            accepted = fake.notification_ids()
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
    assert len(rows) == N  # the outbox, counted whole
    by_state = {s: [r for r in rows if r["delivery_state"] == s] for s in ("sent", "failed")}
    assert len(by_state["sent"]) + len(by_state["failed"]) == N, "every notification ends sent or failed"
    assert len(by_state["failed"]) == N // 10 and devices == N - N // 10
    assert all(r["last_error"] == "unreachable: every device token is dead" for r in by_state["failed"])
    assert all(r["delivered_at"] is not None for r in by_state["sent"])
    # None lost: FCM accepted every sent one; the batch cut off by the kill went again,
    # with the same notification ids (the app de-duplicates on them).
    assert {r["id"] for r in by_state["sent"]} <= set(accepted)
    assert len(accepted) > len(set(accepted))
    assert any(r["attempts"] == 2 for r in by_state["sent"])
    metrics = {m.name: m for m in PushCollector(*figures).collect()}
    assert metrics["wuzhang_push_sent"].samples[0].value == len(by_state["sent"])
    assert metrics["wuzhang_push_tokens_deleted"].samples[0].value == N // 10
