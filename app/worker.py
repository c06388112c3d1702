"""The background worker: deadline warnings and automatic escalation (later: push).

A real process (`wuzhang worker`; `make run` starts one beside the API). Several may
run at once: every sweep locks its rows with SKIP LOCKED, so no case is handled
twice. The clock is injectable (`--now`), so tests and drills can move time.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from app.db import make_engine
from app.settings import Settings
from grid import cases

log = logging.getLogger("wuzhang.worker")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def sweep_once(settings: Settings, *, now: datetime, engine=None) -> cases.SweepResult:
    engine = engine or make_engine(settings)
    with Session(engine) as session:
        result = cases.sweep(session=session, now=now, signer=settings.ledger_signer())
        session.commit()
    if result.escalated or result.warned:
        log.info("sweep at %s: escalated %s, warned %s", now.isoformat(), result.escalated, result.warned)
    return result


def run(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, once: bool = False, parent_pid: int | None = None
) -> None:
    """Sweep until stopped. `parent_pid`: stop once that process is no longer our parent
    (`serve` starts a worker; a killed server must not leave its worker behind)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    engine = make_engine(settings)
    log.info("worker started; sweeping every %.0f s", settings.worker_interval_s)
    while not stop.is_set():
        try:
            sweep_once(settings, now=clock(), engine=engine)
        except Exception:  # one bad sweep must not end the worker; the next one retries
            log.exception("sweep failed")
            if once:
                raise
        if once:
            break
        for _ in range(max(1, int(settings.worker_interval_s))):
            if stop.wait(1.0) or (parent_pid is not None and os.getppid() != parent_pid):
                stop.set()
                break
    engine.dispose()
