"""联席会议 and 督办 over HTTP: a county meeting creates tasks, a township meeting splits its
township's task into sub-tasks, the owner reports progress and completes them, and a done
task counts as in time or late by the county's calendar."""

from __future__ import annotations

from datetime import timedelta

from grid import people_time
from grid.db import fetch_value
from tests.conftest import holder_person_id


def today():
    from datetime import UTC, datetime

    return people_time.local_date(datetime.now(UTC))


async def _county_meeting(client, leader, nodes, *, held_on, tasks):
    r = await client.post("/api/v1/meetings", headers=leader.headers, json={
        "level": "county", "node": nodes.county, "held_on": str(held_on), "title": "第一季度县级联席会议",
        "attendees": [{"name": "王县长", "unit": "县政府"}, {"name": "信访局局长"}],
        "topics": ["积案化解进度"], "minutes": "会议研究了本季度的矛盾纠纷化解工作。", "tasks": tasks,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_county_meeting_creates_tasks_and_a_township_meeting_splits_them(client, make_account, demo_nodes, db):
    leader = await make_account("leader")
    dispatcher = await make_account("dispatcher")  # of demo_nodes.township
    chief = await make_account("chief")  # the village's chief: works in the township
    chief_pid = await holder_person_id(db, demo_nodes.village)
    held = today() - timedelta(days=30)
    meeting = await _county_meeting(client, leader, demo_nodes, held_on=held, tasks=[
        {"title": "排查辖区土地纠纷", "owner": {"township_code": demo_nodes.township},
         "due_on": str(today() + timedelta(days=20))},
        {"title": "落实困难群众救助", "owner": {"department_code": "civil_affairs"},
         "due_on": str(today() + timedelta(days=20))},
    ])  # fmt: skip
    assert meeting["level_name"] == "县级联席会议" and meeting["node"] == demo_nodes.county
    assert [t["owner"]["kind_name"] for t in meeting["tasks"]] == ["乡镇（街道）", "部门"]
    assert meeting["tasks"][1]["owner"]["name"] == "民政局"
    assert {t["state_name"] for t in meeting["tasks"]} == {"未办结"}
    county_task = next(t for t in meeting["tasks"] if t["owner"]["kind"] == "township")

    # The township reads its task, not the county's minutes.
    r = await client.get(
        "/api/v1/tasks", headers=dispatcher.headers, params={"owner": f"township:{demo_nodes.township}"}
    )
    assert [t["id"] for t in r.json()["items"]] == [county_task["id"]]
    assert (await client.get(f"/api/v1/meetings/{meeting['id']}", headers=dispatcher.headers)).status_code == 404

    # Its own meeting splits the task: one sub-task overdue already, one due later.
    r = await client.post("/api/v1/meetings", headers=dispatcher.headers, json={
        "level": "township", "node": demo_nodes.township, "held_on": str(held + timedelta(days=3)),
        "title": "乡镇联席会议", "attendees": [{"name": "村长", "person_id": chief_pid}],
        "tasks": [
            {"title": "走访土地纠纷当事人", "owner": {"person_id": chief_pid}, "parent_id": county_task["id"],
             "due_on": str(today() - timedelta(days=10))},
            {"title": "汇总排查台账", "owner": {"person_id": chief_pid}, "parent_id": county_task["id"],
             "due_on": str(today() + timedelta(days=5))},
        ],
    })  # fmt: skip
    assert r.status_code == 201, r.text
    late_task, later_task = r.json()["tasks"]  # overdue first
    assert (late_task["state"], late_task["state_name"], later_task["state"]) == ("overdue", "已超期", "open")
    assert late_task["parent_id"] == later_task["parent_id"] == county_task["id"]
    r = await client.get(f"/api/v1/tasks/{county_task['id']}", headers=leader.headers)
    assert {t["id"] for t in r.json()["subtasks"]} == {late_task["id"], later_task["id"]}

    # The chief owns the sub-tasks: a note, then both done; one late, one in time.
    r = await client.post(f"/api/v1/tasks/{late_task['id']}/progress", headers=chief.headers,
                          json={"note": "已走访两户"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert [n["note"] for n in r.json()["notes"]] == ["已走访两户"]
    for task in (late_task, later_task):
        r = await client.post(f"/api/v1/tasks/{task['id']}/done", headers=chief.headers, json={"note": "已办结"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "done"
    r = await client.get("/api/v1/tasks", headers=chief.headers, params={"owner": f"person:{chief_pid}"})
    by_id = {t["id"]: t for t in r.json()["items"]}
    assert (by_id[late_task["id"]]["on_time"], by_id[late_task["id"]]["on_time_name"]) == (False, "逾期办结")
    assert (by_id[later_task["id"]]["on_time"], by_id[later_task["id"]]["on_time_name"]) == (True, "按期办结")
    assert r.json()["counts"] == {"open": 0, "overdue": 0, "done": 2, "done_on_time": 1, "done_late": 1}

    # The owners were told in their inbox when the tasks were given.
    r = await client.get("/api/v1/me/inbox", headers=chief.headers)
    assert [n["title"] for n in r.json()["items"] if n["kind"] == "task_assigned"] == ["新的督办事项"] * 2


async def test_the_supervisors_queue_lists_overdue_tasks_first(client, make_account, demo_nodes):
    leader, supervisor = await make_account("leader"), await make_account("supervisor")
    held = today() - timedelta(days=40)
    await _county_meeting(client, leader, demo_nodes, held_on=held, tasks=[
        {"title": "后到期", "owner": {"department_code": "justice"}, "due_on": str(today() + timedelta(days=9))},
        {"title": "已超期", "owner": {"department_code": "justice"}, "due_on": str(today() - timedelta(days=1))},
    ])  # fmt: skip
    r = await client.get("/api/v1/tasks", headers=supervisor.headers)
    assert r.status_code == 200, r.text
    titles = [t["title"] for t in r.json()["items"]]
    assert titles.index("已超期") < titles.index("后到期")
    r = await client.get("/api/v1/tasks", headers=supervisor.headers, params={"state": "overdue"})
    assert {t["state"] for t in r.json()["items"]} == {"overdue"} and "已超期" in [
        t["title"] for t in r.json()["items"]
    ]
    # Discipline inspection reads the meeting, but records none.
    r = await client.post("/api/v1/meetings", headers=supervisor.headers, json={
        "level": "county", "node": demo_nodes.county, "held_on": str(today()), "title": "纪检会议"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"


async def test_refusals_say_why_in_chinese_and_write_nothing(client, make_account, demo_nodes, db):
    leader = await make_account("leader")
    dispatcher = await make_account("dispatcher")
    other_dispatcher = await make_account("dispatcher", node_code=demo_nodes.other_township)
    meeting = await _county_meeting(client, leader, demo_nodes, held_on=today(), tasks=[
        {"title": "排查", "owner": {"township_code": demo_nodes.township}, "due_on": str(today() + timedelta(days=10))},
        {"title": "排查", "owner": {"township_code": demo_nodes.other_township},
         "due_on": str(today() + timedelta(days=10))},
    ])  # fmt: skip
    ours, theirs = sorted(meeting["tasks"], key=lambda t: t["owner"]["code"] != demo_nodes.township)
    before = await fetch_value(db, "SELECT count(*) FROM meeting_task")

    async def township_meeting(who, task, node=demo_nodes.township):
        return await client.post(
            "/api/v1/meetings",
            headers=who.headers,
            json={"level": "township", "node": node, "held_on": str(today()), "title": "乡镇联席会议", "tasks": [task]},
        )

    due = str(today() + timedelta(days=5))
    refusals = [
        (dispatcher, {"title": "x", "owner": {"department_code": "justice"}, "parent_id": ours["id"], "due_on": due},
         422, "县级部门"),
        (dispatcher, {"title": "x", "owner": {"township_code": demo_nodes.township}, "parent_id": theirs["id"],
                      "due_on": due}, 422, "上级事项"),
        (dispatcher, {"title": "x", "owner": {"township_code": demo_nodes.township}, "parent_id": ours["id"],
                      "due_on": str(today() + timedelta(days=11))}, 422, "不能晚于上级事项"),
        (dispatcher, {"title": "x", "owner": {"township_code": demo_nodes.township, "person_id": 1}, "due_on": due},
         422, "三者之一"),
        (dispatcher, {"title": "x", "owner": {"township_code": demo_nodes.township}, "due_on": due,
                      "case_ids": [9_000_000_000]}, 422, "不在你的辖区内"),
        (other_dispatcher, {"title": "x", "owner": {"township_code": demo_nodes.township}, "due_on": due}, 403,
         "只能由"),
    ]  # fmt: skip
    for who, task, status, words in refusals:
        r = await township_meeting(who, task)
        assert r.status_code == status, (task, r.text)
        assert words in r.json()["error"]["message"], r.text
    assert await fetch_value(db, "SELECT count(*) FROM meeting_task") == before
    assert await fetch_value(db, "SELECT count(*) FROM meeting WHERE level = 'township'") == 0

    # Only the owner works on a task; a done task is done once.
    r = await client.post(f"/api/v1/tasks/{ours['id']}/progress", headers=leader.headers, json={"note": "催办"})
    assert r.status_code == 403 and "只有责任方" in r.json()["error"]["message"]
    r = await client.post(f"/api/v1/tasks/{ours['id']}/done", headers=other_dispatcher.headers, json={})
    assert r.status_code == 404
    assert (
        await client.post(f"/api/v1/tasks/{ours['id']}/done", headers=dispatcher.headers, json={})
    ).status_code == 200
    r = await client.post(f"/api/v1/tasks/{ours['id']}/done", headers=dispatcher.headers, json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "task_done"
    for owner in ("nobody", "person:²", "person:99999999999999999999"):
        r = await client.get("/api/v1/tasks", headers=leader.headers, params={"owner": owner})
        assert r.status_code == 422 and "department:" in r.json()["error"]["message"], owner


async def test_the_demo_county_gets_a_county_meeting_with_six_tasks_and_a_split_township_task(client, make_account, db):
    from datetime import UTC, datetime

    from grid.leadership import meetings

    leader = await make_account("leader")
    await make_account("dispatcher", node_code="610827001")
    assert await meetings.ensure_demo(conn=db, county_code="610827", now=datetime.now(UTC))
    assert not await meetings.ensure_demo(conn=db, county_code="610827", now=datetime.now(UTC))  # once
    r = await client.get("/api/v1/meetings", headers=leader.headers)
    county, township = sorted(r.json()["items"], key=lambda m: m["level"] != "county")
    assert (county["level_name"], township["level_name"]) == ("县级联席会议", "乡镇联席会议")
    detail = (await client.get(f"/api/v1/meetings/{county['id']}", headers=leader.headers)).json()
    assert len(detail["tasks"]) == 6
    split = (await client.get(f"/api/v1/meetings/{township['id']}", headers=leader.headers)).json()["tasks"]
    assert len(split) == 2 and {t["parent_id"] for t in split} <= {t["id"] for t in detail["tasks"]}
