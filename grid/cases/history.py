"""A year of demo history: synthetic cases of the loaded county, each walked through the
real use cases (submit_report, act, write_section, sweep) with the time it happened
passed as `now`. Nothing here writes a case, an event or a total itself; the figures
are read back from the cases and their ledger (`figures`).

The mix is shaped on the county's own report for 2023: about 330 disputes settled by
its village houses and township halls, 99.22% of mediations successful, a handful
reaching the county centre (小事不出村、大事不出镇、矛盾不上交). Same seed, same year,
same cases.

Each case's walk is one transaction (the use cases' own become savepoints in it): a
running worker never sees a past case half walked, and would otherwise escalate it at
once, its 2023 deadlines long gone; a crash leaves no half case behind. Its notices are
kept in the inbox, read, but never pushed (repository.settle_past_outbox).
"""

from __future__ import annotations

import calendar
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import CRS
from grid import people_time
from grid.cases import repository as repo
from grid.cases import service
from grid.cases.enums import Section, Tier
from grid.cases.exceptions import ReturnNotAllowed
from grid.cases.ledger import Signer
from grid.cases.routing import BODY_LEVELS, next_tier
from grid.cases.sections import REQUIRED
from grid.db import Conn, Row
from grid.locate import group_rows
from grid.repository import nodes as node_sql

CASES_PER_YEAR = 380  # with the mix below: about 330 settled by the houses and halls

# The stories a case can follow, and each one's share of the year. "house" takes what the
# others leave. The rare ones (a failed mediation, the county centre) get at least one case.
STORIES: tuple[tuple[str, float], ...] = (
    ("chief", 0.12),  # a quarrel the group or grid chief settles on the spot
    ("hall", 0.17),  # serious from the start: the township hall
    ("house_extended", 0.03),  # the house needs longer; the township approves an extension
    ("house_returned", 0.03),  # 退回: the house hands it to the chief below, who settles it
    ("house_reopened", 0.02),  # the agreement is not kept; reopened and settled again
    ("house_late", 0.02),  # nobody accepts in time; the deadline sweep escalates it
    ("house_too_big", 0.02),  # the village judges it beyond itself and escalates it
    ("house_failed", 0.005),  # mediation fails; the hall settles it
    ("chief_failed", 0.003),  # the chief's mediation fails; the house settles it
    ("hall_failed", 0.003),  # the hall's mediation fails; the county centre settles it
    ("hall_late", 0.003),  # the hall does not finish in time; the sweep sends it up
    ("county", 0.005),  # critical from the start: the county centre
)
MAIN_STORY = "house"
STORY_SEVERITY = {"chief": 1, "chief_failed": 1, "hall": 3, "hall_failed": 3, "hall_late": 3, "county": 4}

# More disputes before the Spring Festival (wages, debts), at spring ploughing and at
# harvest (land, boundaries); fewer in the summer. Reported mostly in working hours.
MONTH_WEIGHTS = (1.25, 1.0, 1.15, 1.2, 1.0, 0.85, 0.8, 0.85, 1.0, 1.1, 0.95, 1.15)
HOUR_WEIGHTS = (0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.1, 0.5, 1.5, 2.0, 2.0, 1.6, 0.9, 0.8, 1.5, 1.7, 1.7, 1.4,
                1.0, 1.2, 1.0, 0.6, 0.3, 0.1)  # fmt: skip
RURAL_SHARE = 0.65  # reports from a village's central households; the rest from town floors

# Categories a story may carry, by chain (land acquisition always goes to the township at least).
CATEGORY_WEIGHTS: dict[str, dict[str, float]] = {
    "rural": {"neighbours": 3, "land_forest": 2, "homestead": 2, "marriage_family": 2, "unpaid_wages": 1, "other": 1},
    "urban": {"neighbours": 3, "property_management": 3, "marriage_family": 2, "unpaid_wages": 1.5, "other": 1},
}
HALL_EXTRA = {"land_acquisition": 1.5, "unpaid_wages": 1.0}
COUNTY_CATEGORIES = {"safety_hazard": 1.0, "land_acquisition": 1.0}

# What the case file says, by category: the report, the facts, the policy relied on, the agreement.
TEXTS: dict[str, tuple[str, str, str, str]] = {
    "neighbours": ("两户因排水沟堵塞、雨水流进邻家院子发生争吵", "一方修院墙时堵了原有排水沟，雨后积水漫入邻院",
                   "《民法典》第二百八十八条至第二百九十条（相邻关系）", "共同疏通排水沟，费用各半，今后修建先商量"),
    "marriage_family": ("老人赡养费分摊问题，兄弟间多次争吵", "三兄弟对父母赡养费及看病费用分担意见不一",
                        "《民法典》第一千零六十七条（赡养义务）", "三兄弟按月各出赡养费，医药费按实际平摊"),
    "land_forest": ("两家承包地地界不清，播种时发生争执", "两户承包地相邻，原界石缺失，各自主张的地界相差约一米",
                    "《农村土地承包法》及本村承包合同", "以承包合同附图为准重新埋设界石，双方签字确认"),
    "homestead": ("翻建房屋时宅基地边界与邻居发生争议", "一户翻建房屋，邻户认为新墙基占用了其宅基地",
                  "《土地管理法》第六十二条及宅基地使用证", "按宅基地使用证丈量，新墙后移至界线内，邻户不再阻工"),
    "unpaid_wages": ("务工人员反映工程完工后工资未结清", "包工头以工程款未到位为由拖欠工人工资",
                     "《保障农民工工资支付条例》", "包工头分两次结清全部工资，村委会见证"),
    "property_management": ("楼上漏水殃及楼下，双方及物业互相推诿", "楼上卫生间防水层老化，楼下顶棚受潮脱落",
                            "《民法典》第二百九十六条及物业服务合同", "楼上负责维修防水并赔偿楼下顶棚修复费用，物业协助施工"),
    "land_acquisition": ("群众对征地补偿标准有意见，要求说明", "部分农户对地上附着物补偿数额有异议",
                         "《土地管理法》第四十八条及县征地补偿标准", "重新清点附着物，按标准补足差额并公示"),
    "safety_hazard": ("沟道旁房屋出现裂缝，住户担心垮塌", "雨后边坡滑动，三户房屋墙体开裂，存在安全隐患",
                      "《地质灾害防治条例》", "住户先行搬迁安置，县里组织治理边坡，费用按政策承担"),
    "other": ("邻居间因借款归还问题发生纠纷", "一方借款到期未还，双方对利息约定说法不一",
              "《民法典》合同编借款合同有关规定", "本金分三个月还清，利息按双方认可的数额一次付清"),
}  # fmt: skip
INVESTIGATION = "走访双方当事人及周边住户 {n} 户，查看现场，核对有关证明材料"
REASONING = "双方各有不当之处，应互谅互让、依法依规解决，调解员当面讲清道理，双方表示认可"
DISPOSITION = "无"
VISITS = {5: "回访双方，协议已履行，表示满意", 4: "回访双方，协议基本履行，表示满意",
          3: "回访双方，协议已履行，一方仍有意见", 2: "回访时当事人反映协议未履行"}  # fmt: skip
SATISFACTION = {5: 0.62, 4: 0.3, 3: 0.08}
SURNAMES = "李王张刘高杜冯常艾马郭姬贺白薛霍"
GIVEN = ("建军", "秀兰", "文明", "玉梅", "志强", "桂英", "海军", "小红", "振华", "春梅", "宏伟", "凤英", "国庆", "翠花")


class HistoryRefused(Exception):
    """Why the history is not generated (Chinese, for the command line); nothing written."""


@dataclass(frozen=True)
class Figures:
    """The year's figures, read back from its cases and their ledger."""

    year: int
    cases: int
    settled: Mapping[str, int]  # tier -> cases settled (resolved, visited or closed) there
    resolves: int  # successful mediations (resolve steps; a reopened case has two)
    fails: int  # failed mediations (fail steps)
    reached_county: int
    still_open: int
    months: Mapping[int, int]  # month (county time) -> cases reported

    @property
    def settled_village_township(self) -> int:
        return self.settled.get(Tier.village_house, 0) + self.settled.get(Tier.township_hall, 0)

    @property
    def success_share(self) -> float:
        concluded = self.resolves + self.fails
        return self.resolves / concluded if concluded else 0.0


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The county's calendar year, midnight to midnight in its zone."""
    zone = people_time.county_zone()
    return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)


async def figures(*, conn: Conn, county_code: str, year: int) -> Figures:
    start, end = year_bounds(year)
    row = await repo.year_figures(conn, county_code=county_code, start=start, end=end,
                                  zone=people_time.county_zone().key)  # fmt: skip
    return Figures(year=year, cases=row["cases"], settled=row["settled"], resolves=row["resolves"], fails=row["fails"],
                   reached_county=row["reached_county"], still_open=row["still_open"],
                   months={int(m): n for m, n in row["months"].items()})  # fmt: skip


async def check(*, conn: Conn, county_code: str, year: int, now: datetime) -> None:
    """HistoryRefused if the county is not loaded, the year is not over, or it has cases."""
    if not await node_sql.county_loaded(conn, code=county_code):
        raise HistoryRefused(f"县 {county_code} 的网格还没有载入，无法生成历史案件。请先运行 wuzhang demo load")
    start, end = year_bounds(year)
    # Its last cases close weeks into the next year, and a sweep at a time still to come
    # would escalate today's open cases.
    if end + timedelta(days=60) > now:
        raise HistoryRefused(f"{year} 年还没有过完两个月以上（它最后的案件要到次年才办结），只能生成已经过去的年份")
    found = await repo.cases_reported_between(conn, county_code=county_code, start=start, end=end)
    if found:
        raise HistoryRefused(f"{year} 年已有 {found} 件案件（历史已生成过，或有真实案件），不再生成，以免重复")


async def generate(
    *, conn: Conn, county_code: str, year: int, seed: int, signer: Signer, rooms: service.Rooms, now: datetime,
    cases: int = CASES_PER_YEAR,
) -> Figures:  # fmt: skip
    """Generate the year (refused by `check`) and return its figures. `conn` in autocommit
    mode, as every use case expects; `now` is the real time, for the refusals only."""
    await check(conn=conn, county_code=county_code, year=year, now=now)
    places = await repo.history_places(conn, county_code=county_code)
    if not places:
        raise HistoryRefused(f"县 {county_code} 没有有在任负责人的中心户或楼层，无法生成历史案件")
    rng = random.Random(f"wuzhang-history:{county_code}:{year}:{seed}")
    walker = _Walker(conn=conn, signer=signer, rooms=rooms, county_code=county_code)
    for plan in plan_year(rng, year=year, cases=cases, places=places):
        async with conn.transaction():
            case_id = await walker.walk(plan)
            await repo.settle_past_outbox(conn, case_id=case_id)
    return await figures(conn=conn, county_code=county_code, year=year)


# --- the plan: which story, where, when --------------------------------------------------


@dataclass(frozen=True)
class Plan:
    story: str
    at: datetime  # reported (UTC)
    report: service.Report
    reporter: int  # the chief of the household or floor it came from
    key: uuid.UUID
    rng: random.Random  # this case's own: its timeline and texts


def story_counts(cases: int) -> dict[str, int]:
    counts = {story: max(1, round(cases * share)) for story, share in STORIES}
    counts[MAIN_STORY] = cases - sum(counts.values())
    if counts[MAIN_STORY] < 0:
        raise HistoryRefused(f"案件数太少：至少要 {cases - counts[MAIN_STORY]} 件，才能每种情形各有一件")
    return counts


def plan_year(rng: random.Random, *, year: int, cases: int, places: Sequence[Row]) -> list[Plan]:
    """Every case of the year, oldest first."""
    stories = [s for s, n in story_counts(cases).items() for _ in range(n)]
    rng.shuffle(stories)
    by_level = {lvl: [p for p in places if p["level"] == lvl] for lvl in ("household", "floor")}
    shapes: dict[int, BaseGeometry] = {}
    plans = []
    for story in stories:
        rural = rng.random() < RURAL_SHARE or not by_level["floor"]
        place = rng.choice(by_level["household"] if rural and by_level["household"] else by_level["floor"])
        shape = shapes.get(place["id"])
        if shape is None:
            shape = shapes[place["id"]] = shapely.from_wkb(bytes(place["geom"]))
        lon, lat = _point_in(rng, shape)
        floor = rng.randint(place["floor_from"], place["floor_to"]) if place["level"] == "floor" else None
        category, severity = _category(rng, story, "rural" if place["level"] == "household" else "urban")
        text = TEXTS[category]
        parties = tuple(service.Party(name=_name(rng), phone=None, role=role) for role in ("申请人", "被申请人"))
        report = service.Report(lon=lon, lat=lat, crs=CRS.wgs84, category=category, severity=severity,
                                description=text[0], floor=floor, parties=parties)  # fmt: skip
        plans.append(Plan(story=story, at=_moment(rng, year), report=report, reporter=place["reporter_person_id"],
                          key=uuid.UUID(int=rng.getrandbits(128)), rng=random.Random(rng.getrandbits(64))))  # fmt: skip
    return sorted(plans, key=lambda p: p.at)


def _moment(rng: random.Random, year: int) -> datetime:
    month = rng.choices(range(1, 13), weights=MONTH_WEIGHTS)[0]
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    local = datetime(year, month, day, hour, rng.randrange(60), rng.randrange(60), tzinfo=people_time.county_zone())
    return local.astimezone(UTC)


def _point_in(rng: random.Random, shape: BaseGeometry) -> tuple[float, float]:
    """A random point well inside the polygon (a couple of metres from its edges, so it
    never lands on a shared boundary)."""
    inner = shape.buffer(-0.00003)
    target = inner if not inner.is_empty else shape
    minx, miny, maxx, maxy = target.bounds
    for _ in range(100):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if target.contains(shapely.Point(x, y)):
            return x, y
    p = target.representative_point()
    return p.x, p.y


def _category(rng: random.Random, story: str, chain: str) -> tuple[str, int]:
    severity = STORY_SEVERITY.get(story, 2)
    if severity == 4:
        weights = COUNTY_CATEGORIES
    elif severity == 3:
        weights = {**CATEGORY_WEIGHTS[chain], **HALL_EXTRA}
    else:
        weights = CATEGORY_WEIGHTS[chain]
    return rng.choices(list(weights), weights=list(weights.values()))[0], severity


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


# --- the walk: one case through the workflow ---------------------------------------------


@dataclass
class _Walker:
    conn: Conn
    signer: Signer
    rooms: service.Rooms
    county_code: str

    async def walk(self, plan: Plan) -> int:
        w = _Case(self, plan)
        await w.report()
        await STORY_WALKS.get(plan.story, _plain)(w)
        return w.id


@dataclass
class _Case:
    """One case on its way: its row as last read, the time of its last step, what is filed."""

    g: _Walker
    plan: Plan
    t: datetime = field(init=False)
    row: Row = field(init=False)
    filed: set[Section] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.t = self.plan.at

    @property
    def rng(self) -> random.Random:
        return self.plan.rng

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def tier(self) -> Tier:
        return Tier(self.row["tier"])

    def later(self, lo_h: float, hi_h: float) -> None:
        """The next step: lo..hi hours on."""
        self.t += timedelta(hours=self.rng.uniform(lo_h, hi_h))

    def within(self, lo: float, hi: float, deadline: datetime) -> None:
        """The next step: a share lo..hi of the time left before `deadline` (a minute on if none is left)."""
        left = deadline - self.t
        self.t += left * self.rng.uniform(lo, hi) if left > timedelta(minutes=2) else timedelta(minutes=1)

    def holder(self) -> service.Actor:
        """Who takes the case's next step: a mediator of its room if it has one, else the
        node's chief, else a deputy (all of them hold the case)."""
        holders = self.row["recipients"]
        rank = {"mediator": 0, "chief": 1, "deputy": 2}
        best = min(holders, key=lambda h: rank.get(h["role"], 3))
        return service.Actor(person_id=best["person_id"], counties=(self.g.county_code,))

    async def report(self) -> None:
        out = await service.submit_report(
            conn=self.g.conn, actor=service.Actor(person_id=self.plan.reporter, counties=(self.g.county_code,)), key=self.plan.key,
            report=self.plan.report, now=self.t, signer=self.g.signer, rooms=self.g.rooms,
            county_code=self.g.county_code,
        )  # fmt: skip
        self.row = out.case

    async def act(self, action: str, **fields: Any) -> None:
        self.row = await service.act(conn=self.g.conn, actor=self.holder(), case_id=self.id, action=action,
                                     fields=fields, now=self.t, signer=self.g.signer, rooms=self.g.rooms)  # fmt: skip

    async def file(self, *sections: Section) -> None:
        texts = TEXTS[self.plan.report.category]
        bodies = {Section.investigation: INVESTIGATION.format(n=self.rng.randint(2, 8)), Section.facts: texts[1],
                  Section.policy: texts[2], Section.reasoning: REASONING, Section.disposition: DISPOSITION}  # fmt: skip
        who = self.holder()
        for s in sections:
            if s in self.filed or s not in bodies:  # return_visit: the visit's own note files it
                continue
            self.later(0.2, 2)
            await service.write_section(conn=self.g.conn, actor=who, case_id=self.id, section=s.value, body=bodies[s],
                                        now=self.t, signer=self.g.signer)  # fmt: skip
            self.filed.add(s)

    async def sweep(self, at: datetime) -> None:
        """The worker's own sweep at `at`: warns or escalates this case (the only open one)."""
        self.t = at
        await service.sweep(conn=self.g.conn, now=at, signer=self.g.signer, rooms=self.g.rooms)
        self.row = await service.get_case(conn=self.g.conn, actor=service.Actor(person_id=self.plan.reporter, counties=(self.g.county_code,)),
                                          case_id=self.id)  # fmt: skip

    def required(self, action: str) -> list[Section]:
        return REQUIRED.missing(action=action, tier=self.tier, outcome="agreement", filed=())

    # -- the steps every story is made of

    async def accept(self) -> None:
        self.within(0.05, 0.5, self.row["accept_by"])
        await self.act("accept")

    async def mediate(self) -> None:
        """Accepted to mediating, its investigation under way."""
        self.within(0.02, 0.25, self.row["resolve_by"])
        await self.act("start_mediation")
        await self.file(*self.required("resolve")[:2])

    async def resolve(self) -> None:
        await self.file(*self.required("resolve"))
        self.within(0.1, 0.6, self.row["resolve_by"])
        await self.act("resolve", agreement_text=TEXTS[self.plan.report.category][3])

    async def settle(self) -> None:
        await self.accept()
        await self.mediate()
        await self.resolve()

    async def finish(self, satisfaction: int | None = None) -> None:
        """The return visit, days later, and the close."""
        score = satisfaction or self.rng.choices(list(SATISFACTION), weights=list(SATISFACTION.values()))[0]
        self.later(72, 360)
        await self.act("return_visit", note=VISITS[score], satisfaction=score)
        await self.file(*self.required("close"))
        self.later(1, 48)
        await self.act("close")

    async def approver(self) -> int:
        """Someone one tier up from the case (its chief), who may approve an extension."""
        up = next_tier(self.tier) or self.tier
        links, _, _ = group_rows(await node_sql.chain_of_node(self.g.conn, node_id=self.row["located_node_id"]))
        start = next(i for i, link in enumerate(links) if link.level in BODY_LEVELS[up])
        return next(h.person_id for link in links[start:] for h in link.chiefs if h.role == "chief")


async def _plain(w: _Case) -> None:
    await w.settle()
    await w.finish()


async def _extended(w: _Case) -> None:
    await w.accept()
    await w.mediate()
    w.within(0.1, 0.5, w.row["resolve_by"])
    hours = w.rng.choice((48, 72, 96))
    await w.act("extend", note="需等待有关部门出具证明材料，申请延期", approver=await w.approver(), hours=hours)
    # Settled after the first deadline, before the extended one.
    w.t = max(w.t, w.row["resolve_by"] - timedelta(hours=hours * w.rng.uniform(0.5, 0.9)))
    await w.resolve()
    await w.finish()


async def _returned(w: _Case) -> None:
    w.within(0.05, 0.4, w.row["accept_by"])
    # The chief just below the house first: the group (the grid in town); a vacant one is refused.
    for nearer in reversed(w.row["return_choices"]):
        try:
            await w.act("return", note="当事人同在一个组，退回组长就近调解", next_recipient=nearer)
            break
        except ReturnNotAllowed:
            continue
    await w.settle()
    await w.finish()


async def _reopened(w: _Case) -> None:
    await w.settle()
    w.later(72, 240)
    await w.act("return_visit", note=VISITS[2], satisfaction=2)
    w.later(1, 24)
    await w.act("reopen", note="协议约定的事项未按期履行，当事人要求重新调解")
    await w.settle()
    await w.finish(satisfaction=4)


async def _late(w: _Case) -> None:
    """Nobody accepts: warned in the deadline's last quarter, escalated once it passes."""
    await w.sweep(w.row["warn_at"] + timedelta(minutes=w.rng.randint(5, 60)))
    await w.sweep(w.row["accept_by"] + timedelta(minutes=w.rng.randint(5, 240)))
    await w.settle()
    await w.finish()


async def _too_big(w: _Case) -> None:
    await w.accept()
    w.within(0.05, 0.3, w.row["resolve_by"])
    await w.act("escalate", note="涉及多个村组和较大金额，超出本村调解能力，提交上级")
    await w.settle()
    await w.finish()


async def _failed(w: _Case) -> None:
    await w.accept()
    await w.mediate()
    w.within(0.1, 0.6, w.row["resolve_by"])
    await w.act("fail", note="双方分歧较大，不接受调解方案")
    w.later(0.5, 6)
    await w.act("escalate", note="调解未成功，提交上一级调解")
    await w.settle()
    await w.finish()


async def _hall_late(w: _Case) -> None:
    """The hall takes it on but does not settle it in time: the sweep sends it up."""
    await w.accept()
    await w.mediate()
    await w.sweep(w.row["resolve_by"] + timedelta(minutes=w.rng.randint(5, 240)))
    await w.settle()
    await w.finish()


STORY_WALKS = {
    "house_extended": _extended,
    "house_returned": _returned,
    "house_reopened": _reopened,
    "house_late": _late,
    "house_too_big": _too_big,
    "house_failed": _failed,
    "chief_failed": _failed,
    "hall_failed": _failed,
    "hall_late": _hall_late,
}
