"""联席会议 and 督办 over HTTP: meetings, the supervised tasks they decide, progress and completion.

Meetings are for the roles that hold them or supervise them (policy `meetings`); tasks
for any account, since a task may be owned by a person. Which meeting or task a caller
reads, records or works on is the domain's rule (grid/leadership/meetings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from app import policy, schemas
from app.accounts.scope import Principal
from app.deps import CallerDep, SessionDep
from app.inputs import Id
from app.routers.cases import actor_of
from grid import people_time
from grid.glossary import MEETING_LEVEL_NAMES, TASK_OWNER_KIND_NAMES, TASK_STATE_NAMES, TASK_TIMELINESS_NAMES, word
from grid.leadership import meetings

router = APIRouter(prefix="/api/v1", tags=["meetings"])
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorOut} for c in (401, 403, 404, 409, 422, 503)}
MeetingsDep = Annotated[Principal, Depends(policy.meetings)]


def member_of(caller: Principal) -> meetings.Member:
    return meetings.Member(
        person_id=caller.person_id, county_code=caller.county_code,
        grants=tuple((g.role, g.tier, g.node_id) for g in caller.grants),
        read_paths=tuple(s.path for s in caller.scopes), department_ids=caller.department_ids,
        supervises=caller.supervises, cases=actor_of(caller),
    )  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def task_out(row: Mapping[str, Any]) -> schemas.TaskOut:
    return schemas.TaskOut(**_task_fields(row))


def _task_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    in_time = meetings.on_time(row)
    timeliness = None if in_time is None else word(TASK_TIMELINESS_NAMES, "on_time" if in_time else "late")
    return {
        "id": row["id"], "meeting_id": row["meeting_id"], "meeting_level": row["meeting_level"],
        "meeting_level_name": word(MEETING_LEVEL_NAMES, row["meeting_level"]),
        "meeting_held_on": row["meeting_held_on"], "parent_id": row["parent_id"], "title": row["title"],
        "owner": schemas.TaskOwnerOut(kind=row["owner_kind"], kind_name=word(TASK_OWNER_KIND_NAMES, row["owner_kind"]),
                                      code=row["owner_code"], name=row["owner_name"]),
        "due_on": row["due_on"], "case_ids": list(row["case_ids"]), "state": row["state"],
        "state_name": word(TASK_STATE_NAMES, row["state"]), "done_at": row["done_at"], "done_note": row["done_note"],
        "on_time": in_time, "on_time_name": timeliness, "reminded_at": row["reminded_at"],
        "escalated_at": row["escalated_at"], "created_at": row["created_at"],
    }  # fmt: skip


def _meeting_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "level": row["level"], "level_name": word(MEETING_LEVEL_NAMES, row["level"]),
        "node": row["node_code"], "node_name": row["node_name"], "held_on": row["held_on"], "title": row["title"],
        "chair_person_id": row["chair_person_id"], "chair_name": row["chair_name"],
        "attendees": [schemas.AttendeeOut(**a) for a in row["attendees"]], "case_ids": list(row["agenda_case_ids"]),
        "topics": list(row["agenda_topics"]), "minutes": row["minutes"], "created_at": row["created_at"],
    }  # fmt: skip


def meeting_detail(view: meetings.MeetingView) -> schemas.MeetingDetail:
    return schemas.MeetingDetail(**_meeting_fields(view.meeting), tasks=[task_out(t) for t in view.tasks])


def task_detail(view: meetings.TaskView) -> schemas.TaskDetail:
    return schemas.TaskDetail(
        **_task_fields(view.task), notes=[schemas.TaskNoteOut(**n) for n in view.notes],
        subtasks=[task_out(t) for t in view.subtasks],
    )  # fmt: skip


def _task_in(t: schemas.TaskIn) -> meetings.TaskIn:
    owner = meetings.Owner(department_code=t.owner.department_code, township_code=t.owner.township_code,
                           person_id=t.owner.person_id)  # fmt: skip
    return meetings.TaskIn(title=t.title, owner=owner, due_on=t.due_on, case_ids=tuple(t.case_ids),
                           parent_id=t.parent_id)  # fmt: skip


# --- meetings -------------------------------------------------------------------------


@router.post("/meetings", status_code=201, responses=ERRORS)
async def record_meeting(body: schemas.MeetingIn, caller: MeetingsDep, conn: SessionDep) -> schemas.MeetingDetail:
    """A joint meeting (联席会议) with the tasks it decided: a county meeting by county leaders or
    the county centre's mediators, a township's by its dispatchers or its hall's mediators."""
    meeting = meetings.MeetingIn(
        level=body.level, node_code=body.node, held_on=body.held_on, title=body.title,
        chair_person_id=body.chair_person_id,
        attendees=tuple(meetings.Attendee(name=a.name, person_id=a.person_id, unit=a.unit) for a in body.attendees),
        case_ids=tuple(body.case_ids), topics=tuple(body.topics), minutes=body.minutes,
        tasks=tuple(_task_in(t) for t in body.tasks),
    )  # fmt: skip
    view = await meetings.record_meeting(conn=conn, member=member_of(caller), meeting=meeting, now=_now())
    return meeting_detail(view)


@router.get("/meetings", responses=ERRORS)
async def list_meetings(
    caller: MeetingsDep, conn: SessionDep, level: Literal["county", "township"] | None = None,
    node: Annotated[str | None, Query(max_length=64)] = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.MeetingList:  # fmt: skip
    """Meetings whose node your scope covers (discipline inspection: all), newest first."""
    rows = await meetings.list_meetings(conn=conn, member=member_of(caller), level=level, node_code=node, limit=limit)
    return schemas.MeetingList(items=[schemas.MeetingOut(**_meeting_fields(r)) for r in rows])


@router.get("/meetings/{meeting_id}", responses=ERRORS)
async def get_meeting(meeting_id: Id, caller: MeetingsDep, conn: SessionDep) -> schemas.MeetingDetail:
    today = people_time.local_date(_now())
    return meeting_detail(await meetings.meeting_view(conn=conn, member=member_of(caller), meeting_id=meeting_id,
                                                      today=today))  # fmt: skip


@router.post("/meetings/{meeting_id}/tasks", status_code=201, responses=ERRORS)
async def add_tasks(
    meeting_id: Id, body: schemas.TasksIn, caller: MeetingsDep, conn: SessionDep
) -> schemas.MeetingDetail:
    """Tasks decided at the meeting, added after it was recorded; a township meeting's
    sub-tasks name their county task as `parent_id`."""
    member, now = member_of(caller), _now()
    await meetings.add_tasks(conn=conn, member=member, meeting_id=meeting_id, tasks=[_task_in(t) for t in body.tasks],
                             now=now)  # fmt: skip
    view = await meetings.meeting_view(conn=conn, member=member, meeting_id=meeting_id,
                                       today=people_time.local_date(now))  # fmt: skip
    return meeting_detail(view)


# --- tasks ----------------------------------------------------------------------------


@router.get("/tasks", responses=ERRORS)
async def list_tasks(
    caller: CallerDep, conn: SessionDep, state: Literal["open", "done", "overdue"] | None = None,
    owner: Annotated[str | None, Query(max_length=80, description=meetings.OWNER_FILTER_HINT)] = None,
    meeting: Id | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> schemas.TaskList:  # fmt: skip
    """督办事项 you may read (your scope's meetings, or owned by you, your department or your
    township), overdue first: the supervisor's queue."""
    rows = await meetings.list_tasks(conn=conn, member=member_of(caller), today=people_time.local_date(_now()),
                                     state=state, owner=owner, meeting_id=meeting, limit=limit)  # fmt: skip
    items = [task_out(r) for r in rows]
    counts = schemas.TaskCounts(
        open=sum(t.state == "open" for t in items), overdue=sum(t.state == "overdue" for t in items),
        done=sum(t.state == "done" for t in items), done_on_time=sum(t.on_time is True for t in items),
        done_late=sum(t.on_time is False for t in items),
    )  # fmt: skip
    return schemas.TaskList(items=items, counts=counts)


@router.get("/tasks/{task_id}", responses=ERRORS)
async def get_task(task_id: Id, caller: CallerDep, conn: SessionDep) -> schemas.TaskDetail:
    view = await meetings.task_view(conn=conn, member=member_of(caller), task_id=task_id,
                                    today=people_time.local_date(_now()))  # fmt: skip
    return task_detail(view)


@router.post("/tasks/{task_id}/progress", status_code=201, responses=ERRORS)
async def add_progress(
    task_id: Id, body: schemas.TaskNoteIn, caller: CallerDep, conn: SessionDep
) -> schemas.TaskDetail:
    """A progress note, by the task's owner."""
    view = await meetings.add_progress(conn=conn, member=member_of(caller), task_id=task_id, note=body.note,
                                       now=_now())  # fmt: skip
    return task_detail(view)


@router.post("/tasks/{task_id}/done", responses=ERRORS)
async def complete(task_id: Id, body: schemas.TaskDoneIn, caller: CallerDep, conn: SessionDep) -> schemas.TaskDetail:
    """Done, by the task's owner: in time if on or before its due day (the county's calendar)."""
    view = await meetings.complete(conn=conn, member=member_of(caller), task_id=task_id, note=body.note, now=_now())
    return task_detail(view)
