"""The worker as real processes: two at once, time moved forward, one escalation."""
import base64
import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from grid import cases
from tests.integration.test_cases import SIGNER, T0, _report_committed

KEY = base64.b64encode(b"k" * 32).decode()  # the seed behind SIGNER


def test_two_worker_processes_escalate_an_overdue_case_once(engine, database_url, loaded_county):
    case = _report_committed(engine, loaded_county, 420)
    later = (T0 + timedelta(days=2)).isoformat()
    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_LEDGER_KEY": KEY}
    procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--once", "--now", later], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    with Session(engine) as s:
        actions = s.execute(text("SELECT action FROM case_event WHERE case_id = :c ORDER BY seq"),
                            {"c": case["id"]}).scalars().all()  # fmt: skip
        # The push step after the sweep records who could not be rung (nobody has a phone here).
        workflow = [a for a in actions if a != "push_unreachable"]
        assert actions.count("escalate") == 1 and workflow[-1] == "assign"
        assert cases.verify_ledger(session=s, case_id=case["id"], signer=SIGNER) == (True, None)


def test_a_killed_server_does_not_leave_its_worker_behind(database_url):
    import signal
    import time

    env = {**os.environ, "DATABASE_URL": database_url, "WUZHANG_LEDGER_KEY": KEY, "WUZHANG_WORKER_INTERVAL_S": "1"}
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
