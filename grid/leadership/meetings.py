"""联席会议 and 督办: joint meetings, and the supervised tasks (督办事项) their decisions become.

- The county holds a meeting each quarter (level `county`, on the county node); each
  township holds its own (level `township`, on its node). County leaders and the county
  centre's mediators record county meetings; a township's dispatchers and its hall's
  mediators record the township's.
- Each decision is a task with one owner (a department, a township, or a person), a due
  day (the county's calendar day, included), linked cases and progress notes. Its state is
  derived: done once completed, overdue after its due day, open before.
- A township meeting splits the county's tasks for that township into sub-tasks
  (`parent_id`), owned by the township itself or by people who work inside it.
- The worker (`sweep`) reminds a task's owner once it is overdue, and past a second
  deadline escalates it to the meeting's chair; each exactly once (rows locked with
  SKIP LOCKED, marked in the same transaction as their notifications, dedupe keys).

Tasks touch no case: linking a case changes nothing on it, so nothing goes on its ledger.
docs/leadership.md (联席会议与督办) says who reads and who writes what.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from grid import people_time
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.exceptions import CaseNotFound, NotResponsible
from grid.db import Conn, Row
from grid.exceptions import GridError, InvalidInput
from grid.glossary import MEETING_LEVEL_NAMES, TASK_OWNER_KIND_NAMES, role_name, tier_name, word
from grid.leadership import departments
from grid.leadership import repository as repo
from grid.leadership.models import MEETING_LEVELS


class MeetingNotFound(GridError):
    """Also what a caller outside the meeting's scope gets."""

    code = "meeting_not_found"


class TaskNotFound(GridError):
    """Also what a caller who may not read the task gets."""

    code = "task_not_found"


class TaskDone(GridError):
    """A note or a completion on a task already done."""

    code = "task_done"


@dataclass(frozen=True)
class Member:
    """Who records, reads or works on meetings and tasks (built from the principal by app/)."""

    person_id: int
    county_code: str
    # (role, tier, node_id) of each live grant.
    grants: tuple[tuple[str, str | None, int], ...] = ()
    # ltree paths of the scope nodes (posts and data-scoped grants).
    read_paths: tuple[str, ...] = ()
    department_ids: tuple[int, ...] = ()
    supervises: bool = False
    cases: cases.Actor | None = None  # for the linked cases' read rule

    @property
    def scope(self) -> dict[str, Any]:
        return {"read_paths": self.read_paths, "department_ids": self.department_ids, "person_id": self.person_id,
                "supervises": self.supervises}  # fmt: skip


@dataclass(frozen=True)
class Owner:
    """A task's owner: a department by code, a township by node code, or a person; one of them."""

    department_code: str | None = None
    township_code: str | None = None
    person_id: int | None = None


@dataclass(frozen=True)
class TaskIn:
    title: str
    owner: Owner
    due_on: date
    case_ids: tuple[int, ...] = ()
    parent_id: int | None = None


@dataclass(frozen=True)
class Attendee:
    name: str
    person_id: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class MeetingIn:
    level: str
    node_code: str
    held_on: date
    title: str
    chair_person_id: int | None = None  # the recorder when not given
    attendees: tuple[Attendee, ...] = ()
    case_ids: tuple[int, ...] = ()
    topics: tuple[str, ...] = ()
    minutes: str = ""
    tasks: tuple[TaskIn, ...] = ()


@dataclass
class MeetingView:
    meeting: Row
    tasks: list[Row] = field(default_factory=list)


# --- who may do what ------------------------------------------------------------------


def _under(path: str | None, roots: Sequence[str]) -> bool:
    return bool(path) and any(path == r or path.startswith(r + ".") for r in roots)  # type: ignore[union-attr]


def may_record(member: Member, *, level: str, node_id: int) -> bool:
    """County meetings: county leaders and the county centre's mediators. A township's:
    its dispatchers and its hall's mediators."""
    if level == "county":
        return any(
            role == "leader" or (role == "mediator" and tier == "county_center") for role, tier, _ in member.grants
        )
    return any(n == node_id and (role == "dispatcher" or (role == "mediator" and tier == "township_hall"))
               for role, tier, n in member.grants)  # fmt: skip


def _recorders(level: str) -> str:
    if level == "county":
        return f"县级{role_name('leader')}或{tier_name('county_center')}{role_name('mediator')}"
    return f"本乡镇（街道）的{role_name('dispatcher')}或{tier_name('township_hall')}{role_name('mediator')}"


def may_read_task(member: Member, task: Mapping[str, Any]) -> bool:
    """The rule of repository._TASK_READABLE, for a task read locked."""
    return (
        _under(task["meeting_node_path"], member.read_paths)
        or member.supervises
        or task["owner_person_id"] == member.person_id
        or task["owner_department_id"] in member.department_ids
        or _under(task["owner_node_path"], member.read_paths)
    )


def may_work_on(member: Member, task: Mapping[str, Any]) -> bool:
    """The owner: the person, the department's staff, or the township's dispatchers and hall mediators."""
    if task["owner_person_id"] is not None:
        return bool(task["owner_person_id"] == member.person_id)
    if task["owner_department_id"] is not None:
        return task["owner_department_id"] in member.department_ids
    return any(n == task["owner_node_id"] and (role == "dispatcher" or (role == "mediator" and tier == "township_hall"))
               for role, tier, n in member.grants)  # fmt: skip


def on_time(task: Mapping[str, Any]) -> bool | None:
    """Done in time: completed on or before its due day, by the county's calendar. None until done."""
    if task["done_at"] is None:
        return None
    return bool(people_time.local_date(task["done_at"]) <= task["due_on"])


# --- recording ------------------------------------------------------------------------


async def _linked_cases(conn: Conn, member: Member, case_ids: Sequence[int], field_name: str) -> list[int]:
    """The ids, if the member may read every one of these cases; 422 naming the first that is not."""
    ids = list(dict.fromkeys(case_ids))
    for case_id in ids:
        try:
            await cases.readable_case(
                conn=conn,
                actor=member.cases or cases.Actor(member.person_id, counties=(member.county_code,)),
                case_id=case_id,
            )
        except CaseNotFound:
            raise InvalidInput(f"{field_name}中的案件 {case_id} 不存在或不在你的辖区内", case_id=case_id) from None
    return ids


async def _people(conn: Conn, person_ids: Sequence[int], what: str) -> dict[int, str]:
    found = await repo.person_names(conn, person_ids=list(set(person_ids)))
    missing = sorted(set(person_ids) - set(found))
    if missing:
        raise InvalidInput(f"{what}中没有编号为 {missing[0]} 的人员", person_id=missing[0])
    return found


async def record_meeting(*, conn: Conn, member: Member, meeting: MeetingIn, now: datetime) -> MeetingView:
    """A meeting with its tasks, in one transaction; each task's owner is told in their inbox."""
    if meeting.level not in MEETING_LEVELS:
        names = "、".join(f"{word(MEETING_LEVEL_NAMES, lv)}（{lv}）" for lv in MEETING_LEVELS)
        raise InvalidInput(f"不认识的会议级别“{meeting.level}”；可选：{names}", level=meeting.level)
    async with conn.transaction():
        node = await repo.meeting_node(conn, code=meeting.node_code)
        if node is None or node["level"] != meeting.level or node["county_code"] != member.county_code:
            raise InvalidInput(f"{word(MEETING_LEVEL_NAMES, meeting.level)}须在"
                               f"{'本县' if meeting.level == 'county' else '本县的一个乡镇（街道）'}召开，"
                               f"“{meeting.node_code}”不是", node=meeting.node_code)  # fmt: skip
        if not may_record(member, level=meeting.level, node_id=node["id"]):
            raise NotResponsible(f"{node['name']}的{word(MEETING_LEVEL_NAMES, meeting.level)}只能由"
                                 f"{_recorders(meeting.level)}记录", node=meeting.node_code)  # fmt: skip
        chair = meeting.chair_person_id or member.person_id
        await _people(conn, [chair], "主持人（chair_person_id）")
        await _people(conn, [a.person_id for a in meeting.attendees if a.person_id is not None], "参会人员")
        case_ids = await _linked_cases(conn, member, meeting.case_ids, "议题案件")
        attendees = [{k: v for k, v in (("name", a.name), ("person_id", a.person_id), ("unit", a.unit)) if v is not None}
                     for a in meeting.attendees]  # fmt: skip
        meeting_id = await repo.insert_meeting(conn, row={
            "county_code": member.county_code, "level": meeting.level, "node_id": node["id"],
            "held_on": meeting.held_on, "title": meeting.title, "chair_person_id": chair,
            "attendees": Jsonb(attendees), "agenda_case_ids": case_ids, "agenda_topics": list(meeting.topics),
            "minutes": meeting.minutes, "created_by": member.person_id, "created_at": now,
        })  # fmt: skip
        locked = await repo.meeting_locked(conn, meeting_id=meeting_id)
        assert locked is not None
        for i, task in enumerate(meeting.tasks):
            await _add_task(conn, member, locked, task, now=now, where=f"第 {i + 1} 项督办事项：")
    return await meeting_view(conn=conn, member=member, meeting_id=meeting_id, today=people_time.local_date(now))


async def add_tasks(
    *, conn: Conn, member: Member, meeting_id: int, tasks: Sequence[TaskIn], now: datetime
) -> list[int]:
    """Tasks decided at a meeting, added after it was recorded, by whoever may record it."""
    async with conn.transaction():
        readable = await repo.meeting(conn, county_code=member.county_code, meeting_id=meeting_id, **member.scope)
        meeting = await repo.meeting_locked(conn, meeting_id=meeting_id) if readable else None
        if meeting is None:
            raise MeetingNotFound(f"没有编号为 {meeting_id} 的联席会议", meeting_id=meeting_id)
        if not may_record(member, level=meeting["level"], node_id=meeting["node_id"]):
            raise NotResponsible(f"{meeting['node_name']}的{word(MEETING_LEVEL_NAMES, meeting['level'])}只能由"
                                 f"{_recorders(meeting['level'])}交办督办事项", meeting_id=meeting_id)  # fmt: skip
        prefix = "" if len(tasks) == 1 else "第 {} 项督办事项："
        return [await _add_task(conn, member, meeting, t, now=now, where=prefix.format(i + 1))
                for i, t in enumerate(tasks)]  # fmt: skip


async def _owner_of(conn: Conn, member: Member, meeting: Mapping[str, Any], task: TaskIn, where: str) -> dict[str, Any]:
    """{owner_department_id, owner_node_id, owner_person_id}: the county's units and anyone for a
    county meeting; the township itself or people working in it for a township's."""
    owner = task.owner
    given = [x for x in (owner.department_code, owner.township_code, owner.person_id) if x is not None]
    if len(given) != 1:
        kinds = "、".join(f"{word(TASK_OWNER_KIND_NAMES, k)}（{f}）" for k, f in (
            ("department", "department_code"), ("township", "township_code"), ("person", "person_id")))  # fmt: skip
        raise InvalidInput(f"{where}责任方须是{kinds}三者之一", owner=given)
    found: dict[str, Any] = {"owner_department_id": None, "owner_node_id": None, "owner_person_id": None}
    township = meeting["level"] == "township"
    if owner.department_code is not None:
        if township:
            raise InvalidInput(f"{where}乡镇联席会议的督办事项由本乡镇（街道）或其工作人员承办，不能交给县级部门",
                               department_code=owner.department_code)  # fmt: skip
        try:
            d = await departments.by_code(conn=conn, county_code=member.county_code, code=owner.department_code)
        except InvalidInput as e:
            raise InvalidInput(where + e.message, **e.details) from None
        found["owner_department_id"] = d["id"]
    elif owner.township_code is not None:
        node = await repo.township_by_code(conn, code=owner.township_code)
        if node is None or (township and node["id"] != meeting["node_id"]):
            want = f"本乡镇（{meeting['node_code']}）" if township else "本县的一个乡镇（街道）"
            raise InvalidInput(f"{where}责任乡镇“{owner.township_code}”须是{want}", township_code=owner.township_code)
        found["owner_node_id"] = node["id"]
    else:
        assert owner.person_id is not None
        await _people(conn, [owner.person_id], f"{where}责任人")
        if township and not await repo.person_of_township(conn, person_id=owner.person_id,
                                                          township_path=meeting["node_path"]):  # fmt: skip
            raise InvalidInput(f"{where}责任人（{owner.person_id}）须在本乡镇（{meeting['node_name']}）任职",
                               person_id=owner.person_id)  # fmt: skip
        found["owner_person_id"] = owner.person_id
    return found


async def _parent_of(conn: Conn, member: Member, meeting: Mapping[str, Any], task: TaskIn, where: str) -> None:
    """A sub-task's parent: a county meeting's task owned by this township, not done, due no earlier."""
    if task.parent_id is None:
        return
    if meeting["level"] != "township":
        raise InvalidInput(
            f"{where}只有乡镇联席会议分解县级督办事项时才有上级事项（parent_id）", parent_id=task.parent_id
        )
    parent = await repo.task_locked(conn, task_id=task.parent_id, today=task.due_on)
    if parent is None or parent["meeting_level"] != "county" or parent["owner_node_id"] != meeting["node_id"]:
        raise InvalidInput(f"{where}上级事项 {task.parent_id} 须是县级联席会议交给本乡镇（{meeting['node_name']}）的督办事项",
                           parent_id=task.parent_id)  # fmt: skip
    if parent["done_at"] is not None:
        raise TaskDone(f"{where}上级事项 {task.parent_id} 已办结，不能再分解", parent_id=task.parent_id)
    if task.due_on > parent["due_on"]:
        raise InvalidInput(f"{where}分解事项的办结期限不能晚于上级事项的期限（{people_time.day_for_person(parent['due_on'])}）",
                           due_on=str(task.due_on), parent_due_on=str(parent["due_on"]))  # fmt: skip


async def _add_task(
    conn: Conn, member: Member, meeting: Mapping[str, Any], task: TaskIn, *, now: datetime, where: str
) -> int:
    if task.due_on < meeting["held_on"]:
        raise InvalidInput(f"{where}办结期限（due_on）不能早于会议日期 {meeting['held_on']}", due_on=str(task.due_on))
    await _parent_of(conn, member, meeting, task, where)
    owner = await _owner_of(conn, member, meeting, task, where)
    case_ids = await _linked_cases(conn, member, task.case_ids, f"{where}关联案件")
    task_id = await repo.insert_task(conn, row={
        "meeting_id": meeting["id"], "county_code": meeting["county_code"], "parent_id": task.parent_id, "title": task.title, "due_on": task.due_on,
        "case_ids": case_ids, "created_by": member.person_id, "created_at": now, **owner,
    })  # fmt: skip
    people = await _answering(conn, owner)
    level = word(MEETING_LEVEL_NAMES, meeting["level"])
    await case_sql.insert_notifications(conn, rows=_notices(
        county_code=meeting["county_code"], task_id=task_id, kind="task_assigned", people=people, at=now,
        title="新的督办事项",
        body=f"{level}交办督办事项 {task_id}，请于 {people_time.day_for_person(task.due_on)} 前办结并填报进展",
    ))  # fmt: skip
    return task_id


async def _answering(conn: Conn, owner: Mapping[str, Any]) -> list[int]:
    """Who answers for a task's owner: the person, or the unit's people with accounts."""
    if owner["owner_person_id"] is not None:
        return [owner["owner_person_id"]]
    return await repo.owner_people(conn, department_id=owner["owner_department_id"], node_id=owner["owner_node_id"])


def _notices(*, county_code: str, task_id: int, kind: str, people: Sequence[int], at: datetime, title: str,
             body: str) -> list[dict[str, Any]]:  # fmt: skip
    """Outbox rows (push and inbox), one per person; the dedupe key makes each happen once.
    No task title in them: a decision may name the parties, and push passes outside."""
    return [{"county_code": county_code, "person_id": pid, "case_id": None, "kind": kind, "title": title,
             "body": body, "dedupe_key": f"task:{task_id}:{kind}:{pid}", "created_at": at}
            for pid in dict.fromkeys(people)]  # fmt: skip


# --- reading --------------------------------------------------------------------------


async def meeting_view(*, conn: Conn, member: Member, meeting_id: int, today: date) -> MeetingView:
    meeting = await repo.meeting(conn, county_code=member.county_code, meeting_id=meeting_id, **member.scope)
    if meeting is None:
        raise MeetingNotFound(f"没有编号为 {meeting_id} 的联席会议", meeting_id=meeting_id)
    tasks = await repo.tasks(conn, county_code=member.county_code, today=today, meeting_id=meeting_id, **member.scope)
    return MeetingView(meeting=meeting, tasks=tasks)


async def list_meetings(
    *, conn: Conn, member: Member, level: str | None, node_code: str | None, limit: int
) -> list[Row]:  # fmt: skip
    return await repo.meetings(conn, county_code=member.county_code, level=level, node_code=node_code, limit=limit,
                               **member.scope)  # fmt: skip


OWNER_FILTER_HINT = "责任方写作 department:<部门编码>、township:<乡镇编码> 或 person:<人员编号>"


async def owner_filter(conn: Conn, *, county_code: str, owner: str) -> dict[str, Any]:
    """`department:petition`, `township:610827001` or `person:42` as the repository's filter."""
    kind, _, code = owner.partition(":")
    if kind == "department" and code:
        d = await repo.department_by_code(conn, county_code=county_code, code=code)
        return {"owner_department_id": d["id"] if d else 0}
    if kind == "township" and code:
        node = await repo.township_by_code(conn, code=code)
        return {"owner_node_id": node["id"] if node else 0}
    if kind == "person" and code.isascii() and code.isdigit() and len(code) < 19:
        return {"owner_person_id": int(code)}
    raise InvalidInput(f"查询参数“owner”格式不对：{OWNER_FILTER_HINT}", owner=owner)


async def list_tasks(
    *, conn: Conn, member: Member, today: date, state: str | None = None, owner: str | None = None,
    meeting_id: int | None = None, limit: int = 500,
) -> list[Row]:  # fmt: skip
    """The tasks the member may read: overdue first (the supervisor's queue), then open, then done."""
    where = await owner_filter(conn, county_code=member.county_code, owner=owner) if owner else None
    return await repo.tasks(conn, county_code=member.county_code, today=today, state=state, owner=where,
                            meeting_id=meeting_id, limit=limit, **member.scope)  # fmt: skip


@dataclass
class TaskView:
    task: Row
    notes: list[Row]
    subtasks: list[Row]


async def task_view(*, conn: Conn, member: Member, task_id: int, today: date) -> TaskView:
    rows = await repo.tasks(conn, county_code=member.county_code, today=today, task_id=task_id, **member.scope)
    if not rows:
        raise TaskNotFound(f"没有编号为 {task_id} 的督办事项", task_id=task_id)
    subtasks = await repo.tasks(conn, county_code=member.county_code, today=today, parent_id=task_id, **member.scope)
    return TaskView(task=rows[0], notes=await repo.task_notes(conn, task_ids=[task_id]), subtasks=subtasks)


# --- working on a task ----------------------------------------------------------------


async def _task_for_work(conn: Conn, member: Member, task_id: int, today: date, doing: str) -> Row:
    task = await repo.task_locked(conn, task_id=task_id, today=today)
    if task is None or task["county_code"] != member.county_code or not may_read_task(member, task):
        raise TaskNotFound(f"没有编号为 {task_id} 的督办事项", task_id=task_id)
    if not may_work_on(member, task):
        raise NotResponsible(f"督办事项 {task_id} 由{task['owner_name']}承办；只有责任方可以{doing}", task_id=task_id)
    if task["done_at"] is not None:
        raise TaskDone(f"督办事项 {task_id} 已于 {people_time.for_person(task['done_at'])} 办结，不能再{doing}",
                       task_id=task_id)  # fmt: skip
    return task


async def add_progress(*, conn: Conn, member: Member, task_id: int, note: str, now: datetime) -> TaskView:
    today = people_time.local_date(now)
    async with conn.transaction():
        await _task_for_work(conn, member, task_id, today, "填报进展")
        await repo.insert_task_note(conn, task_id=task_id, county_code=member.county_code, person_id=member.person_id,
                                    note=note, at=now)  # fmt: skip
    return await task_view(conn=conn, member=member, task_id=task_id, today=today)


async def complete(*, conn: Conn, member: Member, task_id: int, note: str | None, now: datetime) -> TaskView:
    """Done once; whether in time follows from its due day (`on_time`)."""
    today = people_time.local_date(now)
    async with conn.transaction():
        await _task_for_work(conn, member, task_id, today, "办结")
        await repo.mark_task_done(conn, task_id=task_id, person_id=member.person_id, note=note, at=now)
    return await task_view(conn=conn, member=member, task_id=task_id, today=today)


# --- supervision (the worker) ---------------------------------------------------------


@dataclass
class TaskSweep:
    reminded: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)


async def sweep(*, conn: Conn, now: datetime, escalate_after: timedelta, batch: int = 200) -> TaskSweep:
    """Remind the owners of tasks past their due day, and escalate to the meeting's chair
    those still not done `escalate_after` later; one transaction. Rows are locked with SKIP
    LOCKED and marked (reminded_at, escalated_at) with their notifications, so two workers
    never send one twice. A unit with nobody to tell: the reminder goes to the chair."""
    result = TaskSweep()
    today = people_time.local_date(now)
    async with conn.pipeline(), conn.transaction():
        rows: list[dict[str, Any]] = []
        for t in await repo.tasks_to_remind(conn, today=today, batch=batch):
            people = await _answering(conn, t) or [t["chair_person_id"]]
            rows += _notices(
                county_code=t["county_code"], task_id=t["id"], kind="task_overdue", people=people, at=now,
                title="督办事项已超期",
                body=f"{word(MEETING_LEVEL_NAMES, t['meeting_level'])}交办的督办事项 {t['id']} 应于 "
                f"{people_time.day_for_person(t['due_on'])} 前办结，现已超期，请尽快办理并填报进展",
            )  # fmt: skip
            result.reminded.append(t["id"])
        await repo.set_task_reminded(conn, task_ids=result.reminded, at=now)
        before = today - timedelta(days=escalate_after.days)
        for t in await repo.tasks_to_escalate(conn, today=today, escalate_before=before, batch=batch):
            rows += _notices(
                county_code=t["county_code"], task_id=t["id"], kind="task_escalated", people=[t["chair_person_id"]],
                at=now, title="督办事项逾期未办结",
                body=f"督办事项 {t['id']}（{t['owner_name']}）应于 {people_time.day_for_person(t['due_on'])} 前办结，"
                f"逾期已超过 {escalate_after.days} 天仍未办结，请督促",
            )  # fmt: skip
            await repo.set_task_escalated(conn, task_id=t["id"], to=t["chair_person_id"], at=now)
            result.escalated.append(t["id"])
        await case_sql.insert_notifications(conn, rows=rows)
    return result


# --- the demo county ------------------------------------------------------------------

# The county meeting's six decisions: (title, owner, days after the meeting it is due).
_DEMO_TASKS: tuple[tuple[str, Owner, int], ...] = (
    ("梳理本季度信访积案，逐案明确包案领导", Owner(department_code="petition"), 20),
    ("对困难群众开展救助帮扶，落实到户", Owner(department_code="civil_affairs"), 30),
    ("组织法律顾问参与重大纠纷调解", Owner(department_code="justice"), 45),
    ("核查土地承包与征地补偿争议", Owner(department_code="natural_resources"), 60),
    ("排查城区物业与邻里纠纷，建立台账", Owner(township_code="{0}"), 40),
    ("排查农村土地与婚姻家庭纠纷，建立台账", Owner(township_code="{1}"), 75),
)


async def ensure_demo(*, conn: Conn, county_code: str, now: datetime) -> bool:
    """One county meeting with six tasks and one township meeting that splits its township's
    task, held at the start of the county's current quarter; nothing if the county has any
    meeting, or no demo leader and dispatcher to record them. True if recorded."""
    if await repo.county_has_meetings(conn, county_code=county_code):
        return False
    county = await repo.meeting_node(conn, code=county_code)
    towns = await repo.townships(conn, county_code=county_code)
    leader = await repo.granted_person(conn, role="leader", node_id=county["id"]) if county else None
    dispatcher = await repo.granted_person(conn, role="dispatcher", node_id=towns[0]["id"]) if towns else None
    chief = await repo.chief_inside(conn, path=towns[0]["path"]) if towns else None
    if county is None or len(towns) < 2 or leader is None or dispatcher is None or chief is None:
        return False
    today = people_time.local_date(now)
    held = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    codes = [t["code"] for t in towns[:2]]
    tasks = tuple(
        TaskIn(title=title, due_on=held + timedelta(days=days),
               owner=Owner(township_code=owner.township_code.format(*codes)) if owner.township_code else owner)
        for title, owner, days in _DEMO_TASKS
    )  # fmt: skip
    member = Member(person_id=leader, county_code=county_code, grants=(("leader", None, county["id"]),),
                    read_paths=(county["path"],), cases=cases.Actor(leader, read_paths=(county["path"],), counties=(county_code,)))  # fmt: skip
    view = await record_meeting(conn=conn, member=member, now=now, meeting=MeetingIn(
        level="county", node_code=county_code, held_on=held, title=f"{held.year}年第{(held.month + 2) // 3}季度县级联席会议",
        attendees=(Attendee(name="县委政法委"), Attendee(name="信访局"), Attendee(name="司法局"), Attendee(name="民政局")),
        topics=("本季度矛盾纠纷排查化解情况", "积案化解进度"), minutes="会议通报了本季度矛盾纠纷排查化解情况，研究部署了六项督办事项。",
        tasks=tasks))  # fmt: skip
    parent = next(t for t in view.tasks if t["owner_code"] == codes[0])
    township = Member(person_id=dispatcher, county_code=county_code, grants=(("dispatcher", None, towns[0]["id"]),),
                      read_paths=(towns[0]["path"],), cases=cases.Actor(dispatcher, read_paths=(towns[0]["path"],), counties=(county_code,)))  # fmt: skip
    await record_meeting(conn=conn, member=township, now=now, meeting=MeetingIn(
        level="township", node_code=codes[0], held_on=held + timedelta(days=7), title=f"{towns[0]['name']}联席会议",
        topics=("分解落实县级联席会议督办事项",), minutes="会议将县级督办事项分解到社区和村。", tasks=(
            TaskIn(title="逐网格排查物业纠纷", owner=Owner(township_code=codes[0]), parent_id=parent["id"],
                   due_on=parent["due_on"] - timedelta(days=10)),
            TaskIn(title="走访重点户并记录台账", owner=Owner(person_id=chief), parent_id=parent["id"],
                   due_on=parent["due_on"] - timedelta(days=20)),
        )))  # fmt: skip
    return True
