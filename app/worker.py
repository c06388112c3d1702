"""The background worker: deadline warnings and automatic escalation, then push delivery.

A real process (`wuzhang worker`; `make run` starts one beside the API). Several may
run at once: every sweep locks its rows with SKIP LOCKED, so no case is handled
twice. The clock is injectable (`--now`), so tests and drills can move time.

Each tick sweeps deadlines first (a sweep writes notifications), then drains the
notification outbox to phones (app/push.py), so an escalation rings in the same tick.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from app import push
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


def push_once(settings: Settings, *, now: datetime, sender: push.Sender, engine=None,
              clock: Callable[[], datetime] = utc_now) -> push.RoundResult:
    engine = engine or make_engine(settings)
    with Session(engine) as session:
        return push.deliver_all(session=session, sender=sender, settings=settings, now=now,
                                signer=settings.ledger_signer(), clock=clock)


def run(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, once: bool = False, parent_pid: int | None = None
) -> None:
    """Sweep until stopped. `parent_pid`: stop once that process is no longer our parent
    (`serve` starts a worker; a killed server must not leave its worker behind)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    engine = make_engine(settings)
    sender = push.make_sender(settings)
    log.info("worker started; sweeping every %.0f s", settings.worker_interval_s)
    while not stop.is_set():
        steps = (("sweep", lambda: sweep_once(settings, now=clock(), engine=engine)),
                 ("push", lambda: push_once(settings, now=clock(), sender=sender, engine=engine, clock=clock)))
        for name, step in steps:
            try:
                step()
            except Exception:  # one bad tick must not end the worker; the next one retries
                log.exception("%s failed", name)
                if once:
                    raise
        if once:
            break
        for _ in range(max(1, int(settings.worker_interval_s))):
            if stop.wait(1.0) or (parent_pid is not None and os.getppid() != parent_pid):
                stop.set()
                break
    if isinstance(sender, push.FcmSender):
        sender.close()
    engine.dispose()
