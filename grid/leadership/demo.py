"""The demo county's leadership records, made through the real use cases: a 30-day duty
roster of the demo county leaders, a backlog batch of 27 cases each owned by a leader and
a unit (some of the five duties ticked), and a few social-assistance referrals, one with
民政局's outcome. Idempotent; `wuzhang demo load` calls it, never in production.

The accounts it acts as are the demo accounts (app/accounts/demo.py builds them from the
phones here): without them nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

from grid import people_time
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.db import Conn, Row
from grid.glossary import FIVE_DUTY_NAMES
from grid.leadership import assistance, backlog, departments, duty, ownership
from grid.leadership import repository as repo
from grid.leadership.sheets import SheetRow


@dataclass(frozen=True)
class DemoLeader:
    phone: str
    name: str
    body: str  # grid.glossary.LEADER_BODY_NAMES


# The demo county leader the README's examples log in as (its account is 演示县领导).
COUNTY_LEADER_PHONE = "19100000005"
COUNTY_LEADER_BODY = "government"
# Department staff (部门工作人员) by department code; app/accounts/demo.py also makes a
# reception desk (19100000007) and a discipline-inspection supervisor (19100000011).
STAFF_PHONES: dict[str, str] = {
    departments.PETITION_OFFICE: "19100000008",
    departments.CIVIL_AFFAIRS: "19100000009",
    "housing": "19100000010",
}
# Named county leaders, one or two from each of the four bodies (the duty roster turns through them).
LEADERS: tuple[DemoLeader, ...] = (
    DemoLeader("19100000012", "王志刚", "party_committee"),
    DemoLeader("19100000013", "李秀兰", "peoples_congress"),
    DemoLeader("19100000014", "张建华", "government"),
    DemoLeader("19100000015", "刘永军", "government"),
    DemoLeader("19100000016", "高文斌", "cppcc"),
)

ROSTER_DAYS = 30
BATCH_LABEL = "第三批"
BATCH_SIZE = 27  # the county's own third batch
# (description, category, unit: a department code, or None for the case's own township)
MATTERS: tuple[tuple[str, str, str | None], ...] = (
    ("反映征地补偿款未足额发放，多次到县上访", "land_acquisition", "natural_resources"),
    ("反映小区开发商逾期交房、房产证迟迟办不下来", "property_management", "housing"),
    ("反映务工工资被拖欠两年，包工头联系不上", "unpaid_wages", "human_resources"),
    ("与邻村因土地承包边界争执多年，多次调解未果", "land_forest", None),
    ("反映宅基地被邻居占用，翻建房屋受阻", "homestead", None),
    ("因病致贫，反映低保认定不公", "other", departments.CIVIL_AFFAIRS),
    ("反映老旧小区物业撤场后供暖无人管理", "property_management", "housing"),
    ("反映退耕还林补助未兑现", "land_forest", "agriculture"),
    ("离婚后子女抚养费长期未付，要求协调", "marriage_family", "justice"),
)
PARTY_NAMES = ("马志强", "高桂英", "李向东", "杜润生", "常秀梅", "姜海龙", "冯玉兰", "艾建军", "杨改莲")
# The notes a leader writes when ticking each of the five duties.
DUTY_NOTES: dict[str, str] = {
    "know": "已带队走访当事人，逐项核实诉求和历史经过",
    "educate": "已与当事人面谈两次，讲清政策和依法表达诉求的途径",
    "solve": "已召集责任单位现场办公，明确了解决方案和时限",
    "stabilise": "已落实专人联系，每周回访一次",
    "by_law": "已请法律顾问出具意见，依法依规处理",
}
# Referrals (社会救助) on the batch's cases in the dispatcher's township: (type, note); the first decided.
REFERRALS: tuple[tuple[str, str], ...] = (
    ("subsistence", "家庭主要劳动力因病丧失劳动能力，申请纳入低保"),
    ("medical", "当事人患慢性病，医疗费用负担重"),
    ("emergency", "房屋受损，临时生活困难"),
)


@dataclass
class Loaded:
    roster_days: int = 0  # days added to the roster now
    batch_cases: int = 0  # cases of the batch imported now (0: it was there)
    duties_ticked: int = 0
    referrals: int = 0


def roster_leaders() -> list[DemoLeader]:
    """The demo county leader first, then the named leaders."""
    return [DemoLeader(COUNTY_LEADER_PHONE, "", COUNTY_LEADER_BODY), *LEADERS]


def _spread(places: list[Row], count: int) -> list[Row]:
    """`count` places taken from each township in turn, so every township has some."""
    by_township = [list(group) for _, group in groupby(places, key=lambda p: p["township_code"])]
    picked: list[Row] = []
    for i in range(max((len(g) for g in by_township), default=0)):
        picked += [g[i] for g in by_township if i < len(g)]
    return picked[:count]


async def ensure(*, conn: Conn, county_code: str, now: datetime, signer: Signer, rooms: cases.Rooms) -> Loaded | None:
    """The roster's missing days, and the batch (with its duties and referrals) if it is not
    there; None if the demo accounts are missing."""
    phones = [*(lead.phone for lead in roster_leaders()), *STAFF_PHONES.values()]
    people = await repo.people_by_phone(conn, phones=phones)
    leaders = await repo.leaders_by_phone(conn, phones=[lead.phone for lead in roster_leaders()])
    county = await repo.meeting_node(conn, code=county_code)
    if county is None or set(phones) - set(people) or len(leaders) < len(roster_leaders()):
        return None
    loaded = Loaded()
    loaded.roster_days = await _roster(conn, county_code=county_code, now=now, leaders=leaders,
                                       by=people[STAFF_PHONES[departments.PETITION_OFFICE]]["id"])  # fmt: skip
    if await repo.batch_id_by_label(conn, county_code=county_code, label=BATCH_LABEL) is None:
        async with conn.transaction():  # the batch and what is done on it, or nothing
            await _batch(conn, county_code=county_code, county=county, people=people, leaders=leaders, now=now,
                         signer=signer, rooms=rooms, loaded=loaded)  # fmt: skip
    return loaded


async def _roster(conn: Conn, *, county_code: str, now: datetime, leaders: dict[str, Row], by: int) -> int:
    """Each day of the next 30 (from the county's today) that has nobody on duty gets the
    leaders in turn, each with their own body."""
    first = people_time.local_date(now)
    last = first + timedelta(days=ROSTER_DAYS - 1)
    taken = {r["day"] for r in await duty.days(conn=conn, county_code=county_code, first=first, last=last)}
    turn = roster_leaders()
    added = 0
    for i in range(ROSTER_DAYS):
        on: date = first + timedelta(days=i)
        if on in taken:
            continue
        lead = turn[i % len(turn)]
        await duty.set_day(conn=conn, county_code=county_code, on=on, leader_person_id=leaders[lead.phone]["id"],
                           body=lead.body, note=None, by_person_id=by, now=now)  # fmt: skip
        added += 1
    return added


async def _batch(
    conn: Conn, *, county_code: str, county: Row, people: dict[str, Row], leaders: dict[str, Row], now: datetime,
    signer: Signer, rooms: cases.Rooms, loaded: Loaded,
) -> None:  # fmt: skip
    places = _spread(await repo.demo_places(conn, county_code=county_code), BATCH_SIZE)
    turn = roster_leaders()
    rows = []
    for i, place in enumerate(places):
        description, category, unit = MATTERS[i % len(MATTERS)]
        rows.append(SheetRow(i + 2, {  # row 1 of a sheet is its header
            "description": description, "category": category, "severity": "4" if i % 5 == 4 else "3",
            "place": place["code"], "leader_phone": turn[i % len(turn)].phone,
            "unit": unit or place["township_code"], "party_name": PARTY_NAMES[i % len(PARTY_NAMES)],
        }))  # fmt: skip
    petition = people[STAFF_PHONES[departments.PETITION_OFFICE]]["id"]
    report = await backlog.import_batch(
        conn=conn, county_code=county_code, label=BATCH_LABEL, handed_down_on=people_time.local_date(now),
        rows=rows, source="演示数据", by_person_id=petition, now=now, signer=signer, rooms=rooms,
    )  # fmt: skip
    if not report.ok:  # the demo's own rows: a bug here, not bad input
        raise RuntimeError(f"demo backlog batch refused: {report.errors}")
    loaded.batch_cases = report.imported
    # The leaders have started on their cases: the first few duties ticked, more on older ones.
    duty_codes = list(FIVE_DUTY_NAMES)
    for i, case_id in enumerate(report.case_ids):
        leader = leaders[turn[i % len(turn)].phone]["id"]
        actor = cases.Actor(person_id=leader, read_paths=(county["path"],), counties=(county_code,))
        for code in duty_codes[: i % 4]:
            await ownership.tick_duty(conn=conn, actor=actor, case_id=case_id, duty=code, note=DUTY_NOTES[code],
                                      now=now, signer=signer)  # fmt: skip
            loaded.duties_ticked += 1
    await _referrals(conn, county_code=county_code, people=people, places=places, case_ids=report.case_ids, rows=rows,
                     now=now, signer=signer, loaded=loaded)  # fmt: skip


async def _referrals(
    conn: Conn, *, county_code: str, people: dict[str, Row], places: list[Row], case_ids: list[int],
    rows: list[SheetRow], now: datetime, signer: Signer, loaded: Loaded,
) -> None:  # fmt: skip
    """A township's dispatcher refers a party of a few of the batch's cases that its hall
    handles; 民政局's staff decide the first."""
    for town in await repo.townships(conn, county_code=county_code):
        dispatcher_id = await repo.granted_person(conn, role="dispatcher", node_id=town["id"])
        if dispatcher_id is not None:
            break
    else:
        return
    dispatcher = cases.Actor(
        person_id=dispatcher_id, read_paths=(town["path"],), act_paths=(town["path"],), counties=(county_code,)
    )
    theirs = [case_id for case_id, place, row in zip(case_ids, places, rows, strict=True)
              if place["township_code"] == town["code"] and row.values["severity"] == "3"]  # fmt: skip
    made = [
        await assistance.refer(conn=conn, actor=dispatcher, case_id=case_id, party="1", type=kind, note=note, now=now,
                               signer=signer)
        for case_id, (kind, note) in zip(theirs, REFERRALS, strict=False)
    ]  # fmt: skip
    loaded.referrals = len(made)
    if made:
        civil = await departments.by_code(conn=conn, county_code=county_code, code=departments.CIVIL_AFFAIRS)
        staff = cases.Actor(person_id=people[STAFF_PHONES[departments.CIVIL_AFFAIRS]]["id"],
                            department_ids=(civil["id"],), counties=(county_code,))  # fmt: skip
        await assistance.decide(conn=conn, actor=staff, county_code=county_code, referral_id=made[0]["id"],
                                outcome="approved", amount=3600, note="经入户核查，符合条件，按月发放",
                                now=now, signer=signer)  # fmt: skip
