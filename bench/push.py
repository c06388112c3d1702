"""Push delivery end to end: outbox rows -> a real worker process -> firebase-admin -> a fake FCM.

    .venv/bin/python bench/push.py [--notifications 5000] [--claim 1000] [--fcm-delay-ms 0] [--keep-db]

Needs DATABASE_URL. Makes the database wuzhang_bench_push beside it, starts the fake
FCM v1 server of the tests (tests/fake_fcm.py) in this process and one
`python -m app.cli worker` pointed at it (WUZHANG_FCM_CREDENTIALS, WUZHANG_FCM_URL).
Once the worker is idle, it commits N notifications (one device each) in one
transaction, as a burst of decisions would, and waits until the outbox is drained.

It prints notifications/s (N over the time from that commit to the last FCM
acceptance) and the delivery latency per notification (created_at, the decision's
commit, to delivered_at, when FCM accepted), p50 and p99. In a burst the latency is
mostly queueing: the last batch waits for the ones before it. The worker waits at
least a second between ticks (app/worker.py), and each tick drains what is pending.
Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c  # first: it puts the project root on sys.path

from grid.db import Row, fetch_all, fetch_one, fetch_value
from tests.fake_fcm import FakeFcm

DB = "wuzhang_bench_push"
COUNTY = "610827"


async def seed(url: str, n: int) -> list[int]:
    """n people with one Android device each; their ids."""
    async with await c.connect(url) as conn, conn.transaction():
        rows = await fetch_all(
            conn,
            "INSERT INTO person (county_code, name) SELECT %(county)s, 'bench' || g"
            " FROM generate_series(1, %(n)s) g RETURNING id",
            {"county": COUNTY, "n": n},
        )
        pids = [r["id"] for r in rows]
        await conn.execute(
            "INSERT INTO device (county_code, token, person_id, platform)"
            " SELECT %(county)s, 'bench-' || p, p, 'android' FROM unnest(%(p)s::bigint[]) p",
            {"county": COUNTY, "p": pids},
        )
    return pids


async def burst(url: str, pids: list[int]) -> None:
    """One notification per person, committed at once (one statement, autocommit)."""
    async with await c.connect(url) as conn:
        await conn.execute(
            "INSERT INTO notification (county_code, person_id, kind, title, body, dedupe_key, created_at,"
            " next_attempt_at) SELECT %(county)s, p, 'assigned', '新的矛盾纠纷待处理', '案件：压测', 'bench:' || p,"
            " clock_timestamp(), clock_timestamp() FROM unnest(%(p)s::bigint[]) p",
            {"county": COUNTY, "p": pids},
        )


async def drained(url: str) -> Row:
    """Waits until no notification is pending (10 minutes at most); the delivery figures."""
    async with await c.connect(url) as conn:
        t0 = time.perf_counter()
        while left := await fetch_value(conn, "SELECT count(*) FROM notification WHERE delivery_state = 'pending'"):
            if time.perf_counter() - t0 > 600:
                sys.exit(f"not drained after 10 minutes: {left} pending")
            await asyncio.sleep(0.05)
        r = await fetch_one(
            conn,
            "SELECT count(*) FILTER (WHERE delivery_state = 'sent') AS sent, count(*) AS total,"
            " extract(epoch FROM max(delivered_at) - min(created_at))::float8 AS span_s,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) p99"
            " FROM notification",
        )
    assert r is not None
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notifications", type=int, default=5000)
    ap.add_argument("--claim", type=int, default=1000, help="WUZHANG_PUSH_CLAIM: notifications per round")
    ap.add_argument("--fcm-delay-ms", type=float, default=0.0, help="the fake FCM's answer time per message")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    n = args.notifications

    c.drop_database(DB)
    url = c.create_database(DB)
    worker = None
    try:
        c.migrate(url)
        pids = asyncio.run(seed(url, n))
        with FakeFcm(delay_s=args.fcm_delay_ms / 1000) as fake, tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "DATABASE_URL": url, "WUZHANG_LEDGER_KEY": base64.b64encode(b"b" * 32).decode(),
                   "WUZHANG_FCM_CREDENTIALS": str(fake.write_service_account(Path(tmp) / "sa.json")),
                   "WUZHANG_FCM_URL": fake.send_url, "WUZHANG_PUSH_CLAIM": str(args.claim),
                   "WUZHANG_WORKER_INTERVAL_S": "0.05"}  # fmt: skip
            # `-m app.cli` from the project root: this checkout's worker.
            worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, cwd=c.ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(3)  # imports, the first OAuth token on the first send; then it idles
            asyncio.run(burst(url, pids))
            r = asyncio.run(drained(url))
            accepted = len(fake.accepted)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        if not args.keep_db:
            c.drop_database(DB)
    print(f"\npush, end to end: {n} notifications, claim {args.claim}, fake FCM delay {args.fcm_delay_ms:g} ms")
    print(f"  sent {r['sent']} of {r['total']}; FCM accepted {accepted} messages")
    print(f"  {n / r['span_s']:.0f} notifications/s (commit of the burst to the last acceptance: {r['span_s']:.2f} s)")
    print(f"  delivery latency p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
