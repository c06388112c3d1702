"""The background worker: deadline warnings and automatic escalation, then push delivery.

A real process (`wuzhang worker`; `wuzhang serve` starts one beside the API's server
processes). Several may run at once: every sweep locks its rows with SKIP LOCKED, so
no case is handled twice. The clock is injectable (`--now`), so tests and drills can
move time; only in development, since its pretend times are signed into the ledger.

Each tick sweeps deadlines first (cases, then 督办 tasks; a sweep writes notifications), then
drains the notification outbox to phones (app/push.py), so an escalation rings in the same
tick, then refreshes the figures' daily roll-up (grid/stats/rollup.py).
One connection of its own, opened again if the database went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app import push
from app.accounts.service import ROOMS
from app.settings import Settings, libpq_url
from grid import people_time
from grid.cases import service as cases
from grid.db import Conn, connect
from grid.leadership import meetings
from grid.stats import rollup as stats_rollup

log = logging.getLogger("wuzhang.worker")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def sweep_once(conn: Conn, settings: Settings, *, now: datetime) -> cases.SweepResult:
    result = await cases.sweep(conn=conn, now=now, signer=settings.ledger_signer(), rooms=ROOMS)
    if result.escalated or result.warned:
        log.info("sweep at %s: escalated %s, warned %s", now.isoformat(), result.escalated, result.warned)
    return result


async def tasks_once(conn: Conn, settings: Settings, *, now: datetime) -> meetings.TaskSweep:
    """督办: overdue reminders and escalations to the chair, in a transaction of their own."""
    result = await meetings.sweep(conn=conn, now=now, escalate_after=timedelta(days=settings.task_escalate_after_days))
    if result.reminded or result.escalated:
        log.info("tasks at %s: reminded %s, escalated %s", now.isoformat(), result.reminded, result.escalated)
    return result


async def rollup_once(conn: Conn, *, now: datetime) -> stats_rollup.Refreshed:
    """Bring the figures' daily roll-up up to date (grid/stats/rollup.py): the cases the
    ledger touched since the last refresh; the first time, every case."""
    done = await stats_rollup.refresh(conn=conn, now=now)
    if done.rebuilt or done.cases:
        log.info("figures rolled up at %s: %s cases%s", now.isoformat(), done.cases, " (rebuilt)" * done.rebuilt)
    return done


async def push_once(
    conn: Conn, settings: Settings, *, now: datetime, sender: push.Sender, clock: Callable[[], datetime] = utc_now
) -> push.RoundResult:
    return await push.deliver_all(conn=conn, sender=sender, settings=settings, now=now,
                                  signer=settings.ledger_signer(), clock=clock)  # fmt: skip


async def run(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, once: bool = False, parent_pid: int | None = None
) -> None:
    """Sweep until stopped. `parent_pid`: stop once that process is no longer our parent
    (`serve` starts a worker; a killed server must not leave its worker behind)."""
    people_time.use_zone(settings.time_zone)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sender = push.make_sender(settings)
    log.info("worker started; sweeping every %.0f s", settings.worker_interval_s)
    conn: Conn | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await connect(libpq_url(settings.database_url), application_name="wuzhang-worker")
                await sweep_once(conn, settings, now=clock())
                await tasks_once(conn, settings, now=clock())
                await push_once(conn, settings, now=clock(), sender=sender, clock=clock)
                await rollup_once(conn, now=clock())
            except Exception:  # one bad tick must not end the worker; the next one retries
                log.exception("worker tick failed")
                if conn is not None and conn.broken:
                    conn = None
                if once:
                    raise
            if once:
                break
            for _ in range(max(1, int(settings.worker_interval_s))):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if stop.is_set() or (parent_pid is not None and os.getppid() != parent_pid):
                    stop.set()
                    break
    finally:
        if conn is not None:
            await conn.close()
        if isinstance(sender, push.FcmSender):
            await asyncio.to_thread(sender.close)  # delete_app must not run inside the loop
