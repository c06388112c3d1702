"""What the figures mean, as pure values: the period in the county's days, the filters,
the success rate's exclusions, the caller's scope narrowed by a township, and ratios.
The definitions in words: docs/statistics.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from grid import people_time
from grid.cases.enums import Tier
from grid.exceptions import InvalidInput

# Where a case was settled (the tier of its successful `resolve`): 小事不出村, 大事不出镇,
# 矛盾不上交. With today's four tiers "below the county" is the same set as "in the
# township or below"; it is kept apart because it is a separate promise of the county.
SETTLED_IN_VILLAGE = (Tier.chief.value, Tier.village_house.value)
SETTLED_IN_TOWNSHIP = (*SETTLED_IN_VILLAGE, Tier.township_hall.value)
SETTLED_BELOW_COUNTY = tuple(t.value for t in Tier if t is not Tier.county_center)

# A grid with no report for this many days before the period's end is silent.
SILENT_DAYS = 90
# The longest period asked for at once (the monthly view has a row per month).
MAX_PERIOD_DAYS = 366 * 10


@dataclass(frozen=True)
class Period:
    """From `start` to `end`, both county calendar days, inclusive."""

    start: date
    end: date

    @classmethod
    def of(cls, start: date | None, end: date | None, *, now: datetime) -> Period:
        """The asked period; by default from 1 January of the county's current year to today."""
        today = people_time.local_date(now)
        end = end or today
        start = start or date(end.year, 1, 1)
        if start > end:
            raise InvalidInput(
                f"统计起始日（from）{start} 晚于截止日（to）{end}，请调换", start=str(start), end=str(end)
            )
        if (end - start).days > MAX_PERIOD_DAYS:
            raise InvalidInput("统计时段最长十年，请缩短（from、to）", start=str(start), end=str(end))
        return cls(start, end)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end): midnight of the first day and of the day after the last, in the
        county's zone (its days, not UTC's)."""
        zone = people_time.county_zone()
        return (datetime.combine(self.start, time(0), tzinfo=zone),
                datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone))  # fmt: skip


@dataclass(frozen=True)
class Filters:
    period: Period
    tier: str | None = None  # the tier a case was first routed to
    category: str | None = None
    source: str | None = None  # where a case came from; lands with case_file.source


@dataclass(frozen=True)
class Exclusions:
    """What the success rate leaves out of its denominator (and so of its numerator):
    settings WUZHANG_STATS_EXCLUDE_CATEGORIES and WUZHANG_STATS_EXCLUDE_OPEN_FAILURES."""

    categories: tuple[str, ...] = ()
    open_failures: bool = False  # a failure whose case is still being handled further up


@dataclass(frozen=True)
class Ratio:
    """A rate with what it is made of; `value` is None when nothing was counted."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None


def narrow(scope_paths: Sequence[str], within: str | None) -> tuple[str, ...]:
    """The subtrees the figures cover: the caller's scope, cut down to `within` (a
    township's path) if given. Empty: the township lies outside the scope."""
    if within is None:
        return tuple(dict.fromkeys(scope_paths))
    roots = []
    for path in scope_paths:
        if _inside(path, within):
            roots.append(path)
        elif _inside(within, path):
            roots.append(within)
    return tuple(dict.fromkeys(roots))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + ".")


def hours(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


# The medians' histograms (the roll-up's stats_hours): bucket 0 holds hours under
# HOURS_FLOOR, bucket b >= 1 holds [HOURS_FLOOR * g^(b-1), HOURS_FLOOR * g^b) with
# g = HOURS_GROWTH, and a bucket stands for its geometric middle. So a median read from
# them is within HOURS_FLOOR / 2 or a factor sqrt(g) (under 1%) of the exact one.
HOURS_FLOOR = 0.01
HOURS_GROWTH = 1.02


def hours_bucket(value: float) -> int:
    """The bucket of `value` hours (the SQL of grid/stats/repository.py computes the same)."""
    return 0 if value < HOURS_FLOOR else 1 + math.floor(math.log(value / HOURS_FLOOR) / math.log(HOURS_GROWTH))


def bucket_hours(bucket: int) -> float:
    """The hours a bucket stands for."""
    return HOURS_FLOOR / 2 if bucket == 0 else HOURS_FLOOR * HOURS_GROWTH ** (bucket - 0.5)


def within_hours_bound(got: float | None, exact: float | None) -> bool:
    """Whether a median read from the histograms is as close to the exact one as promised
    (before `hours` rounds both to 0.01 h, hence the 0.01 of slack)."""
    if got is None or exact is None:
        return got is exact
    bound = max(HOURS_FLOOR / 2, abs(exact) * (math.sqrt(HOURS_GROWTH) - 1))
    return abs(got - exact) <= bound + 0.01
