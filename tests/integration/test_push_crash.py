"""kill -9 a real worker process mid-batch, start another: no notification is lost.

A database of its own (the outbox is counted whole), a fake FCM server in this process,
and `python -m app.cli worker` pointed at it through WUZHANG_FCM_URL.
"""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, text

from app.metrics import PushCollector
from tests.conftest import create_database, drop_database, migrate
from tests.fake_fcm import OK, Answer, FakeFcm

N, CLAIM = 300, 100


def wait_for(what, timeout_s=60.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if what():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path):
    url = create_database("wuzhang_test_push")
    engine = create_engine(url)
    # Every 10th phone is gone for good: those end failed, with the reason.
    answer = lambda token, n: Answer(404, "UNREGISTERED") if token.endswith("0") else OK  # noqa: E731
    worker = None
    try:
        migrate(url)
        with engine.begin() as conn:
            pids = conn.execute(text("INSERT INTO person (county_code, name) SELECT '610827', '人' || g"
                                     " FROM generate_series(1, :n) g RETURNING id"), {"n": N}).scalars().all()  # fmt: skip
            conn.execute(text("INSERT INTO device (county_code, token, person_id, platform)"
                              " SELECT '610827', 'crash-' || p, p, 'android' FROM unnest(CAST(:p AS bigint[])) p"),
                         {"p": pids})  # fmt: skip
            conn.execute(text("INSERT INTO notification (county_code, person_id, kind, title, body, dedupe_key,"
                              " created_at, next_attempt_at) SELECT '610827', p, 'info', '通知', '崩溃演练',"
                              " 'crash:' || p, now(), now() FROM unnest(CAST(:p AS bigint[])) p"), {"p": pids})
        with FakeFcm(answer, delay_s=0.5) as fake:
            env = {**os.environ, "DATABASE_URL": url, "WUZHANG_LEDGER_KEY": base64.b64encode(b"k" * 32).decode(),
                   "WUZHANG_FCM_CREDENTIALS": str(fake.write_service_account(tmp_path / "sa.json")),
                   "WUZHANG_FCM_URL": fake.send_url, "WUZHANG_PUSH_CLAIM": str(CLAIM),
                   "WUZHANG_PUSH_LEASE_S": "2", "WUZHANG_WORKER_INTERVAL_S": "0.2"}  # fmt: skip

            def start():
                return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

            worker = start()
            # The whole first batch is on the wire (the fake answers after 0.5 s): kill -9 now.
            wait_for(lambda: len(fake.messages) >= CLAIM)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            with engine.connect() as conn:
                claimed = conn.execute(text("SELECT count(*) FROM notification WHERE attempts > 0")).scalar_one()
                recorded = conn.execute(text("SELECT count(*) FROM notification WHERE delivery_state <> 'pending'"
                                             )).scalar_one()  # fmt: skip
            assert claimed == CLAIM and recorded == 0, "killed after the claim's commit, before any result"

            worker = start()

            def drained():
                with engine.connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM notification WHERE delivery_state = 'pending'"
                                             )).scalar_one() == 0  # fmt: skip

            wait_for(drained, timeout_s=60)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
            worker = None

            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, person_id, delivery_state, last_error, delivered_at, attempts"
                                         " FROM notification")).mappings().all()  # fmt: skip
                devices = conn.execute(text("SELECT count(*) FROM device")).scalar_one()
            accepted = fake.notification_ids()
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
        metrics = {m.name: m for m in PushCollector(engine).collect()}
        assert metrics["wuzhang_push_sent"].samples[0].value == len(by_state["sent"])
        assert metrics["wuzhang_push_tokens_deleted"].samples[0].value == N // 10
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        engine.dispose()
        drop_database(url)
