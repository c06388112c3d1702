"""A deterministic synthetic county shaped on Mizhi (docs/domain.md), for demos and benchmarks.

How the polygons are made, so that children tile their parent exactly:
- The county is a lattice of cells, and every node is a rectangle of cells in lattice
  *index* space, split among its children by guillotine cuts.
- A lattice point's coordinates come from one function of its index (a smooth warp
  plus a small per-point jitter). Neighbours therefore share every vertex of their
  common edge, with no gap or overlap, and edges are irregular, not straight lines.
- Every lattice point on a node's perimeter is a vertex, so vertex counts grow with
  the size of the area, as surveyed boundaries do (a county outline has thousands).

`generate` takes the county's code, name and centre: the defaults make 米脂县; the demo's
second county, 绥德县 (`SUIDE`), lies south of it and never overlaps it. Node codes start
with the county's code, and a county other than 米脂县 takes its people's phones from its
own numbers (`199` + the code's last three digits), so no phone is in two counties.

`scale` multiplies the number of leaf polygons (units and central households):
scale 1 gives about 6,200 leaves and 9,500 posts; scale 17 gives over 100,000 leaves.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from shapely import MultiPolygon, Polygon

COUNTY_CODE = "610827"
COUNTY_NAME = "米脂县"
CENTER_LON, CENTER_LAT = 110.18, 37.75
WIDTH_KM, HEIGHT_KM = 35.0, 34.6  # about 1,212 km²

TOWNSHIPS = (  # code suffix, name; 银州街道, the urban seat, is cut out near the middle
    ("100", "桃镇"),
    ("101", "龙镇"),
    ("102", "杨家沟镇"),
    ("103", "杜家石沟镇"),
    ("001", "银州街道"),
    ("104", "沙家店镇"),
    ("105", "印斗镇"),
    ("106", "郭兴庄镇"),
    ("107", "城郊镇"),
)
# Which townships hold urban areas, and how many.
URBAN_AREAS = {"银州街道": 2, "城郊镇": 1}


@dataclass(frozen=True)
class DemoPlace:
    """A demo county: its code, name, centre (lon, lat) and townships (code suffix, name)."""

    code: str
    name: str
    centre: tuple[float, float]
    townships: tuple[tuple[str, str], ...]
    urban_areas: dict[str, int]


MIZHI = DemoPlace(COUNTY_CODE, COUNTY_NAME, (CENTER_LON, CENTER_LAT), TOWNSHIPS, URBAN_AREAS)
# 米脂县 spans about 37.59-37.91°N; 绥德县's outline ends near 37.56°N, a 3 km gap.
SUIDE = DemoPlace(
    "610826", "绥德县", (110.26, 37.40),
    (("100", "薛家峁镇"), ("101", "崔家湾镇"), ("102", "定仙墕镇"), ("103", "枣林坪镇"), ("001", "名州镇"),
     ("104", "义合镇"), ("105", "吉镇"), ("106", "四十里铺镇"), ("107", "田庄镇")),
    {"名州镇": 2, "四十里铺镇": 1},
)  # fmt: skip
DEMO_PLACES = (MIZHI, SUIDE)

CST = timezone(timedelta(hours=8))
NUMERALS = "一二三四五六七八九十"
SURNAMES = "李王张刘高杜杨冯常艾贺马姬郭白霍曹申惠薛任乔田赵陈"
GIVEN = "建国军平明华红梅芳秀英文斌强伟海涛霞丽娟玲林生福荣宝成东亮春兰志刚永庆玉凤桂云飞鹏"
PHONE_PREFIXES = (
    "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156",
    "157", "158", "159", "177", "180", "181", "182", "183", "186", "187", "188", "189",
)  # fmt: skip
COMMUNITY_NAMES = [
    "南关",
    "北关",
    "东街",
    "西街",
    "银州",
    "上城",
    "下城",
    "河滨",
    "龙凤",
    "行宫",
    "新区",
    "文屏",
    "盘龙",
    "城北",
    "城南",
    "永乐",
]
VILLAGE_SUFFIXES = ["沟", "峁", "坪", "湾", "岔", "塬", "畔", "庄", "河", "渠", "梁", "坬"]
VILLAGE_PREFIXES = ("", "", "", "前", "后", "上", "下", "东", "西", "南", "北", "新")


@dataclass(frozen=True)
class DemoNode:
    code: str
    name: str
    level: str
    chain: str | None
    parent_code: str | None
    geom: MultiPolygon | None
    floor_from: int | None = None
    floor_to: int | None = None


@dataclass(frozen=True)
class DemoPost:
    node_code: str
    role: str  # chief | deputy
    name: str
    phone: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass
class DemoCounty:
    nodes: list[DemoNode] = field(default_factory=list)
    posts: list[DemoPost] = field(default_factory=list)

    @property
    def leaf_polygons(self) -> list[DemoNode]:
        parents = {n.parent_code for n in self.nodes if n.geom is not None}
        return [n for n in self.nodes if n.geom is not None and n.code not in parents]


@dataclass(frozen=True)
class Rect:
    """Cells [i0, i1) × [j0, j1) of the lattice; i runs east, j runs north."""

    i0: int
    j0: int
    i1: int
    j1: int

    @property
    def width(self) -> int:
        return self.i1 - self.i0

    @property
    def height(self) -> int:
        return self.j1 - self.j0


class Lattice:
    """Maps lattice indices to lon/lat: a smooth warp plus a per-point jitter."""

    def __init__(self, cells: int, seed: int, centre: tuple[float, float] = (CENTER_LON, CENTER_LAT)) -> None:
        self.cells = cells
        self.seed = np.uint64(seed)
        self.centre_lon, self.centre_lat = centre
        rng = random.Random(seed)
        self.phases = [rng.random() for _ in range(4)]
        self.km_per_lon = 111.32 * math.cos(math.radians(self.centre_lat))
        self.km_per_lat = 110.57

    def _unit_noise(self, i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
        """A hash of (i, j) mapped to [-0.5, 0.5): the same point always jitters the same."""
        h = (i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
            j.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        )
        h ^= self.seed + np.uint64(salt)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
        return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) - 0.5

    def points(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        n = float(self.cells)
        u, v = i / n, j / n
        p = self.phases
        # Gentle warp (amplitudes small against wavelengths, so it stays one-to-one).
        du = 0.018 * np.sin(2 * np.pi * (1.3 * v + p[0])) + 0.006 * np.sin(2 * np.pi * (3.1 * v + 0.7 * u + p[1]))
        dv = 0.018 * np.sin(2 * np.pi * (1.1 * u + p[2])) + 0.006 * np.sin(2 * np.pi * (2.9 * u + 0.6 * v + p[3]))
        jitter = 0.36 / n  # at most 0.18 of a cell either way
        x = (u + du + jitter * self._unit_noise(i, j, 1) - 0.5) * WIDTH_KM
        y = (v + dv + jitter * self._unit_noise(i, j, 2) - 0.5) * HEIGHT_KM
        return np.column_stack((self.centre_lon + x / self.km_per_lon, self.centre_lat + y / self.km_per_lat))

    def polygon(self, r: Rect) -> MultiPolygon:
        """Every lattice point on the rectangle's perimeter, counter-clockwise."""
        bottom_i = np.arange(r.i0, r.i1)
        right_j = np.arange(r.j0, r.j1)
        top_i = np.arange(r.i1, r.i0, -1)
        left_j = np.arange(r.j1, r.j0, -1)
        i = np.concatenate((bottom_i, np.full(right_j.size, r.i1), top_i, np.full(left_j.size, r.i0)))
        j = np.concatenate((np.full(bottom_i.size, r.j0), right_j, np.full(top_i.size, r.j1), left_j))
        ring = self.points(i, j)
        return MultiPolygon([Polygon(np.vstack((ring, ring[:1])))])


def split(rect: Rect, weights: list[float], rng: random.Random, min_cells: int = 2) -> list[Rect]:
    """Cut `rect` into len(weights) rectangles with areas roughly proportional to weights."""
    if len(weights) == 1:
        return [rect]
    total = sum(weights)
    # Split the list where the two sums are closest to half, then cut the long side.
    acc, k, best = 0.0, 1, float("inf")
    for idx in range(1, len(weights)):
        acc += weights[idx - 1]
        if abs(acc - total / 2) < best:
            best, k = abs(acc - total / 2), idx
    frac = sum(weights[:k]) / total
    along_i = rect.width > rect.height or (rect.width == rect.height and rng.random() < 0.5)
    size = rect.width if along_i else rect.height
    other = rect.height if along_i else rect.width
    need_a = _min_span(k, other, min_cells)
    need_b = _min_span(len(weights) - k, other, min_cells)
    if size < need_a + need_b:
        raise ValueError(f"lattice too coarse: {len(weights)} parts do not fit in {rect}")
    cut = min(max(round(size * frac), need_a), size - need_b)
    if along_i:
        a, b = Rect(rect.i0, rect.j0, rect.i0 + cut, rect.j1), Rect(rect.i0 + cut, rect.j0, rect.i1, rect.j1)
    else:
        a, b = Rect(rect.i0, rect.j0, rect.i1, rect.j0 + cut), Rect(rect.i0, rect.j0 + cut, rect.i1, rect.j1)
    return split(a, weights[:k], rng, min_cells) + split(b, weights[k:], rng, min_cells)


def _min_span(parts: int, other: int, min_cells: int) -> int:
    """Cells needed along the cut axis for `parts` pieces at least min_cells wide."""
    per_row = max(1, other // min_cells)
    return min_cells * math.ceil(parts / per_row)


class _Names:
    """Deterministic Chinese names and unique mainland mobile numbers."""

    def __init__(self, rng: random.Random, phone_stem: str | None = None) -> None:
        self.rng = rng
        self.phone_stem = phone_stem  # None: 米脂县's numbers; else 6 digits, 5 drawn after them
        self.phones: set[str] = set()
        self.villages: set[str] = set()

    def person(self) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def phone(self) -> str:
        while True:
            if self.phone_stem is None:
                number = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            else:
                number = self.phone_stem + f"{self.rng.randrange(10**5):05d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def village(self) -> str:
        # Loess-plateau toponyms: 杨家沟, 高西峁, 前李家坪; a number only once those run out.
        for _ in range(40):
            name = (
                self.rng.choice(VILLAGE_PREFIXES)
                + self.rng.choice(SURNAMES)
                + self.rng.choice(("家", "", "家"))
                + self.rng.choice(VILLAGE_SUFFIXES)
            )
            if name not in self.villages:
                break
        else:
            name += numeral(len(self.villages) % 99 + 1)
        self.villages.add(name)
        return name + "村"


def numeral(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (names like 第十二网格)."""
    if n <= 10:
        return NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return (NUMERALS[tens - 1] if tens > 1 else "") + "十" + (NUMERALS[ones - 1] if ones else "")


def _weights(rng: random.Random, n: int, spread: float = 0.35) -> list[float]:
    return [1.0 + spread * (2 * rng.random() - 1) for _ in range(n)]


def generate(
    scale: int = 1, seed: int | None = None, *, code: str = COUNTY_CODE, name: str = COUNTY_NAME,
    centre: tuple[float, float] = (CENTER_LON, CENTER_LAT),
) -> DemoCounty:  # fmt: skip
    """A demo county (by default 米脂县; `seed` defaults to the code's number). Same
    arguments, same county, byte for byte. 米脂县's townships are named as its own, and
    those of a known demo place (`DEMO_PLACES`) as theirs; any other county's 第一镇, ..."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    seed = int(code) if seed is None else seed
    known = next((p for p in DEMO_PLACES if p.code == code), None)
    townships = known.townships if known else tuple((f"{100 + k}", f"第{numeral(k + 1)}镇") for k in range(9))
    urban_areas = known.urban_areas if known else {townships[4][1]: 2}
    rng = random.Random(seed)
    cells = int(1500 * max(1.0, math.sqrt(scale) / 2.2))
    lattice = Lattice(cells, seed, centre)
    names = _Names(random.Random(seed + 1), phone_stem=None if code == COUNTY_CODE else "199" + code[-3:])
    county = DemoCounty()
    # Villages per sub-area and units per grid grow with scale, so leaves grow with it.
    villages_per_subarea = 4 * scale
    units_per_grid = 8 * scale

    def add(code: str, name: str, level: str, chain: str | None, parent: str | None, rect: Rect | None, **kw) -> None:
        geom = lattice.polygon(rect) if rect is not None else None
        county.nodes.append(DemoNode(code, name, level, chain, parent, geom, **kw))

    root = Rect(0, 0, cells, cells)
    add(code, name, "county", None, None, root)
    for (suffix, t_name), t_rect in zip(townships, split(root, _weights(rng, len(townships), 0.25), rng), strict=False):
        t_code = code + suffix
        add(t_code, t_name, "township", None, code, t_rect)
        n_urban = urban_areas.get(t_name, 0)
        areas = _township_areas(t_rect, n_urban, scale, rng)
        for a_idx, (chain, a_rect) in enumerate(areas, start=1):
            a_code = f"{t_code}-{'U' if chain == 'urban' else 'R'}{a_idx}"
            add(a_code, f"{t_name}第{numeral(a_idx)}片区", "area", chain, t_code, a_rect)
            if chain == "urban":
                _urban_area(add, names, rng, a_code, a_rect, units_per_grid)
            else:
                _rural_area(add, names, rng, a_code, a_rect, villages_per_subarea)
    _posts(county, names, rng)
    return county


def _township_areas(t_rect: Rect, n_urban: int, scale: int, rng: random.Random) -> list[tuple[str, Rect]]:
    """A township's areas: three rural ones, or a compact urban core in one corner
    (a few km² against ~130 km², cut into `n_urban` areas) beside two rural ones."""
    if not n_urban:
        return [("rural", r) for r in split(t_rect, _weights(rng, 3), rng)]
    share = min(0.3, 0.03 * math.sqrt(scale))
    side = max(8, round(math.sqrt(share * t_rect.width * t_rect.height)))
    core = Rect(t_rect.i0, t_rect.j0, t_rect.i0 + side, t_rect.j0 + side)
    beside = Rect(core.i1, t_rect.j0, t_rect.i1, core.j1)
    above = Rect(t_rect.i0, core.j1, t_rect.i1, t_rect.j1)
    urban = [("urban", r) for r in split(core, _weights(rng, n_urban), rng)]
    return [*urban, ("rural", beside), ("rural", above)]


def _urban_area(add, names: _Names, rng: random.Random, a_code: str, a_rect: Rect, units_per_grid: int) -> None:
    for c_idx, c_rect in enumerate(split(a_rect, _weights(rng, 4), rng), start=1):
        c_code = f"{a_code}-C{c_idx}"
        c_name = rng.choice(COMMUNITY_NAMES) + "社区"
        add(c_code, c_name, "community", "urban", a_code, c_rect)
        for g_idx, g_rect in enumerate(split(c_rect, _weights(rng, 5), rng), start=1):
            g_code = f"{c_code}-G{g_idx}"
            add(g_code, f"{c_name}第{numeral(g_idx)}网格", "grid", "urban", c_code, g_rect)
            for u_idx, u_rect in enumerate(split(g_rect, _weights(rng, units_per_grid), rng), start=1):
                u_code = f"{g_code}-B{u_idx:03d}"
                building, entrance = divmod(u_idx - 1, 2)
                u_name = f"{c_name[:-2]}{g_idx}区{building + 1}号楼{entrance + 1}单元"
                add(u_code, u_name, "unit", "urban", g_code, u_rect)
                storeys = rng.choice((6, 6, 7, 11, 18, 26))
                step = 6 if storeys <= 18 else 9
                for f_idx, low in enumerate(range(1, storeys + 1, step), start=1):
                    high = min(storeys, low + step - 1)
                    add(f"{u_code}-F{f_idx}", f"{u_name}{low}-{high}层", "floor", "urban", u_code, None,
                        floor_from=low, floor_to=high)  # fmt: skip


def _rural_area(add, names: _Names, rng: random.Random, a_code: str, a_rect: Rect, villages_per_subarea: int) -> None:
    for s_idx, s_rect in enumerate(split(a_rect, _weights(rng, 3), rng), start=1):
        s_code = f"{a_code}-S{s_idx}"
        add(s_code, f"第{numeral(s_idx)}分片", "subarea", "rural", a_code, s_rect)
        for v_idx, v_rect in enumerate(split(s_rect, _weights(rng, villages_per_subarea), rng), start=1):
            v_code = f"{s_code}-V{v_idx:02d}"
            v_name = names.village()
            add(v_code, v_name, "village", "rural", s_code, v_rect)
            for g_idx, g_rect in enumerate(split(v_rect, _weights(rng, 4), rng), start=1):
                g_code = f"{v_code}-Z{g_idx}"
                add(g_code, f"{v_name}{numeral(g_idx)}组", "group", "rural", v_code, g_rect)
                for h_idx, h_rect in enumerate(split(g_rect, _weights(rng, 5), rng), start=1):
                    add(f"{g_code}-H{h_idx}", f"{names.person()}中心户", "household", "rural", g_code, h_rect)


def _posts(county: DemoCounty, names: _Names, rng: random.Random) -> None:
    """A chief on every node, deputies from village/community up, some handovers."""
    base = datetime(2021, 1, 4, 9, 0, tzinfo=CST)
    with_deputy = {"county", "township", "community", "village"}
    for idx, node in enumerate(county.nodes):
        started = base + timedelta(days=rng.randrange(0, 1200))
        if idx % 40 == 7:  # a handover: the old chief's post ended when this one started
            earlier = started - timedelta(days=rng.randrange(200, 700))
            county.posts.append(DemoPost(node.code, "chief", names.person(), names.phone(), earlier, started))
        county.posts.append(DemoPost(node.code, "chief", names.person(), names.phone(), started))
        if node.level in with_deputy:
            county.posts.append(DemoPost(node.code, "deputy", names.person(), names.phone(), started))


def iter_levels(county: DemoCounty) -> Iterator[tuple[str, int]]:
    """(level, count) in the order nodes were made, for summaries."""
    counts: dict[str, int] = {}
    for n in county.nodes:
        counts[n.level] = counts.get(n.level, 0) + 1
    yield from counts.items()
