"""The worker as real processes: two at once, time moved forward, one escalation."""

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from app.accounts.service import ROOMS
from app.settings import libpq_url
from geo.crs import CRS, wgs84_to_gcj02
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.db import connect, fetch_all, fetch_one

KEY = base64.b64encode(b"k" * 32).decode()  # the seed behind SIGNER
SIGNER = Signer.from_seed(KEY)
KEYS = {SIGNER.key_id: SIGNER.public_key}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def report_committed(url, county, index, now=T0):
    """A household chief's report, committed in the database at `url`: the case row."""
    household = [n for n in county.nodes if n.level == "household"][index]
    p = household.geom.point_on_surface()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    report = cases.Report(lon=lon, lat=lat, crs=CRS.gcj02, category="neighbours", severity=2,
                          description="两家因排水沟争吵",
                          parties=(cases.Party("张三", "13800000001", "申请人"), cases.Party("李四", None, "被申请人")))  # fmt: skip
    async with await connect(libpq_url(url)) as conn:
        h = await fetch_one(conn, "SELECT po.person_id, n.path::text AS path FROM post po JOIN node n ON n.id = po.node_id"
                                  " WHERE n.code = %(c)s AND po.role = 'chief' AND po.ended_at IS NULL",
                            {"c": household.code})  # fmt: skip
        assert h is not None
        actor = cases.Actor(person_id=h["person_id"], read_paths=(h["path"],), counties=("610827",))
        out = await cases.submit_report(conn=conn, actor=actor, key=uuid.uuid4(), report=report, now=now, signer=SIGNER,
                                        rooms=ROOMS, county_code="610827")  # fmt: skip
    return out.case


async def test_two_worker_processes_escalate_an_overdue_case_once(fresh_database, loaded_county):
    case = await report_committed(fresh_database, loaded_county, 420)
    later = (T0 + timedelta(days=2)).isoformat()
    env = {**os.environ, "DATABASE_URL": fresh_database, "WUZHANG_LEDGER_KEY": KEY}
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", "--once", "--now", later,
                                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]  # fmt: skip
    async with asyncio.timeout(60):
        outputs = [out.decode() for out, _ in await asyncio.gather(*(p.communicate() for p in procs))]
    assert [p.returncode for p in procs] == [0, 0], outputs
    async with await connect(libpq_url(fresh_database)) as conn:
        actions = [r["action"] for r in await fetch_all(
            conn, "SELECT action FROM case_event WHERE case_id = %(c)s ORDER BY seq", {"c": case["id"]})]  # fmt: skip
        # The push step after the sweep records who could not be rung (nobody has a phone here).
        workflow = [a for a in actions if a != "push_unreachable"]
        assert actions.count("escalate") == 1 and workflow[-1] == "assign"
        assert (await cases.verify_ledger(conn=conn, case_id=case["id"], keys=KEYS)).valid


async def test_a_pretend_time_is_refused_outside_development_and_writes_nothing(fresh_database, loaded_county):
    case = await report_committed(fresh_database, loaded_county, 421)
    later = (T0 + timedelta(days=2)).isoformat()  # overdue by then: a sweep would escalate it
    env = {**os.environ, "DATABASE_URL": fresh_database, "WUZHANG_LEDGER_KEY": KEY, "WUZHANG_ENV": "production"}
    run = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", "--once", "--now", later,
                                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    async with asyncio.timeout(60):
        out = (await run.communicate())[0].decode()
    assert run.returncode == 2, out
    assert "--now" in out and "WUZHANG_ENV=production" in out and "拒绝" in out
    async with await connect(libpq_url(fresh_database)) as conn:
        events = await fetch_all(conn, "SELECT action FROM case_event WHERE case_id = %(c)s", {"c": case["id"]})
    assert [e["action"] for e in events] == ["report", "assign"]  # the ledger as the report left it


def test_a_pretend_time_without_an_offset_is_refused(fresh_database):
    env = {**os.environ, "DATABASE_URL": fresh_database, "WUZHANG_LEDGER_KEY": KEY, "WUZHANG_ENV": "development"}
    run = subprocess.run([sys.executable, "-m", "app.cli", "worker", "--once", "--now", "2026-03-03 09:00"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "带时区的 ISO 时间" in run.stderr, run.stderr


def test_a_killed_server_does_not_leave_its_worker_behind(fresh_database):
    import signal
    import time

    env = {**os.environ, "DATABASE_URL": fresh_database, "WUZHANG_LEDGER_KEY": KEY, "WUZHANG_WORKER_INTERVAL_S": "1"}
    # A stand-in parent that starts the worker as `serve` does, then is killed with -9.
    parent = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys, time\n"
        "w = subprocess.Popen([sys.executable, '-m', 'app.cli', 'worker', '--parent-pid', str(os.getpid())])\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(600)\n")], env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    worker_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def alive(pid: int) -> bool:
        try:  # an exited process nobody has reaped yet is a zombie ("Z"): it is gone
            return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    for _ in range(150):  # bounded: fifteen seconds at most
        if not alive(worker_pid):
            break
        time.sleep(0.1)
    else:
        os.kill(worker_pid, signal.SIGKILL)
        raise AssertionError("the worker outlived its killed parent")
