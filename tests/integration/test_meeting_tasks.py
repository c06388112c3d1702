"""督办 supervision by the worker: a sub-task past its due day gives exactly one reminder in its
owner's inbox, even with two worker processes; past the second deadline it escalates once to
the meeting's chair. And a done task is in time or late by the county's calendar."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from app.settings import libpq_url
from grid.cases import service as cases
from grid.db import Conn, connect, fetch_all, fetch_one, fetch_value
from grid.leadership import meetings
from tests.integration.test_worker import KEY

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 on 2 March in the county


async def _ids(conn: Conn, code: str) -> tuple[int, str]:
    row = await fetch_one(conn, "SELECT id, path::text AS path FROM node WHERE code = %(c)s", {"c": code})
    assert row is not None
    return row["id"], row["path"]


async def _a_split_task(conn: Conn, *, due_on: date) -> dict[str, int]:
    """A county meeting whose task goes to a township, and the township's meeting that
    splits it into a sub-task for a village chief; committed. Their ids and people."""
    county_id, county_path = await _ids(conn, "610827")
    village = await fetch_one(conn, """
SELECT n.code, t.id AS township_id, t.code AS township_code, t.path::text AS township_path, po.person_id
  FROM node n JOIN node t ON t.level = 'township' AND n.path <@ t.path
  JOIN post po ON po.node_id = n.id AND po.role = 'chief' AND po.ended_at IS NULL
 WHERE n.level = 'village' ORDER BY n.code LIMIT 1""")  # fmt: skip
    assert village is not None
    chair = await fetch_value(conn, "SELECT po.person_id FROM post po WHERE po.node_id = %(n)s AND po.role = 'chief'"
                                    " AND po.ended_at IS NULL", {"n": county_id})  # fmt: skip
    leader = meetings.Member(person_id=chair, county_code="610827", grants=(("leader", None, county_id),),
                             read_paths=(county_path,), cases=cases.Actor(chair, read_paths=(county_path,), counties=("610827",)))  # fmt: skip
    county = await meetings.record_meeting(conn=conn, member=leader, now=T0, meeting=meetings.MeetingIn(
        level="county", node_code="610827", held_on=date(2026, 3, 2), title="县级联席会议", tasks=(
            meetings.TaskIn(title="排查", owner=meetings.Owner(township_code=village["township_code"]),
                            due_on=due_on + timedelta(days=20)),)))  # fmt: skip
    dispatcher = meetings.Member(
        person_id=chair, county_code="610827", grants=(("dispatcher", None, village["township_id"]),),
        read_paths=(village["township_path"],), cases=cases.Actor(chair, read_paths=(village["township_path"],), counties=("610827",)))  # fmt: skip
    township = await meetings.record_meeting(conn=conn, member=dispatcher, now=T0, meeting=meetings.MeetingIn(
        level="township", node_code=village["township_code"], held_on=date(2026, 3, 2), title="乡镇联席会议",
        chair_person_id=chair, tasks=(meetings.TaskIn(
            title="走访", owner=meetings.Owner(person_id=village["person_id"]), due_on=due_on,
            parent_id=county.tasks[0]["id"]),)))  # fmt: skip
    return {"task": township.tasks[0]["id"], "owner": village["person_id"], "chair": chair}


async def _workers(url: str, now: datetime, *, count: int = 2, **env_extra: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "WUZHANG_LEDGER_KEY": KEY, **env_extra}
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", "--once", "--now",
                                                  now.isoformat(), env=env, stdout=subprocess.PIPE,
                                                  stderr=subprocess.STDOUT) for _ in range(count)]  # fmt: skip
    async with asyncio.timeout(120):
        outputs = [out.decode() for out, _ in await asyncio.gather(*(p.communicate() for p in procs))]
    assert [p.returncode for p in procs] == [0] * count, outputs


async def test_two_workers_remind_the_owner_of_an_overdue_sub_task_once_then_escalate_once(fresh_database):
    url = libpq_url(fresh_database)
    async with await connect(url) as conn:
        ids = await _a_split_task(conn, due_on=date(2026, 3, 10))

    async def kinds(conn: Conn, kind: str) -> list[int]:
        rows = await fetch_all(conn, "SELECT person_id FROM notification WHERE kind = %(k)s"
                                     " AND dedupe_key LIKE %(t)s", {"k": kind, "t": f"task:{ids['task']}:%"})  # fmt: skip
        return [r["person_id"] for r in rows]

    # 10 March is the last day: on it, nothing; the county's 11 March (already at 16:30 UTC on the 10th) is late.
    await _workers(fresh_database, datetime(2026, 3, 10, 15, 30, tzinfo=UTC), count=1)
    async with await connect(url) as conn:
        assert await kinds(conn, "task_overdue") == []
    await _workers(fresh_database, datetime(2026, 3, 10, 16, 30, tzinfo=UTC))
    async with await connect(url) as conn:
        assert await kinds(conn, "task_overdue") == [ids["owner"]]
        inbox, _ = await cases.inbox(conn=conn, county="610827", person_id=ids["owner"], before=None, limit=50)
        reminders = [n for n in inbox if n["kind"] == "task_overdue"]
        assert len(reminders) == 1 and "03月10日" in reminders[0]["body"], reminders
        assert await kinds(conn, "task_escalated") == []

    # Seven days past the due day is still within; the eighth escalates, once, to the chair.
    await _workers(fresh_database, datetime(2026, 3, 17, 12, 0, tzinfo=UTC), count=1)
    async with await connect(url) as conn:
        assert await kinds(conn, "task_escalated") == []
    await _workers(fresh_database, datetime(2026, 3, 18, 12, 0, tzinfo=UTC))
    await _workers(fresh_database, datetime(2026, 3, 19, 12, 0, tzinfo=UTC))
    async with await connect(url) as conn:
        assert await kinds(conn, "task_escalated") == [ids["chair"]]
        assert await kinds(conn, "task_overdue") == [ids["owner"]]
        task = await fetch_one(conn, "SELECT reminded_at, escalated_at, escalated_to FROM meeting_task WHERE id = %(t)s",
                               {"t": ids["task"]})  # fmt: skip
        assert task is not None and task["escalated_to"] == ids["chair"]
        assert task["reminded_at"] == datetime(2026, 3, 10, 16, 30, tzinfo=UTC)


async def test_two_concurrent_sweeps_on_separate_connections_send_one_reminder(fresh_database):
    url = libpq_url(fresh_database)
    async with await connect(url) as conn:
        ids = await _a_split_task(conn, due_on=date(2026, 3, 10))
    later = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)
    conns = [await connect(url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(meetings.sweep(conn=c, now=later, escalate_after=timedelta(days=7))
                                         for c in conns))  # fmt: skip
    finally:
        for c in conns:
            await c.close()
    assert sorted(len(r.reminded) for r in results) == [0, 1]
    async with await connect(url) as conn:
        n = await fetch_value(conn, "SELECT count(*) FROM notification WHERE person_id = %(p)s AND kind = 'task_overdue'",
                              {"p": ids["owner"]})  # fmt: skip
    assert n == 1


def test_done_in_time_is_judged_by_the_countys_calendar_day():
    due = date(2026, 3, 31)
    # 15:59 UTC is 23:59 in the county on the due day; 16:30 UTC is already 1 April there.
    assert meetings.on_time({"done_at": datetime(2026, 3, 31, 15, 59, tzinfo=UTC), "due_on": due}) is True
    assert meetings.on_time({"done_at": datetime(2026, 3, 31, 16, 30, tzinfo=UTC), "due_on": due}) is False
    assert meetings.on_time({"done_at": None, "due_on": due}) is None
