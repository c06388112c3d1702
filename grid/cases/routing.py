"""Which tier handles a report, and which posts in the located chain answer for it.

Rules are data with a version (stored in `routing_rule_set`); the decision is a pure
function of the rules, the report and the located chain, so it is unit-tested
without a database. The first matching rule wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from grid.cases.enums import TIER_ORDER, Tier
from grid.locate import Holder, Link

# Where each mediation body sits in the grid: the village in the country, the
# community in town, the township and the county.
BODY_LEVELS: dict[Tier, tuple[str, ...]] = {
    Tier.village_house: ("village", "community"),
    Tier.township_hall: ("township",),
    Tier.county_center: ("county",),
}


def next_tier(tier: Tier) -> Tier | None:
    """The tier a matter goes up to; None above the county centre (lawful channels)."""
    i = TIER_ORDER.index(tier)
    return TIER_ORDER[i + 1] if i + 1 < len(TIER_ORDER) else None


@dataclass(frozen=True)
class Rule:
    tier: Tier
    category: str | None = None  # None matches every category
    severity_min: int = 1
    severity_max: int = 4
    # For the chief tier: the levels whose chief handles it, first found in the chain.
    chief_levels: tuple[str, ...] = ()

    def matches(self, category: str, severity: int) -> bool:
        return (self.category in (None, category)) and self.severity_min <= severity <= self.severity_max


@dataclass(frozen=True)
class Deadline:
    accept_within: timedelta
    resolve_within: timedelta


@dataclass(frozen=True)
class RuleSet:
    version: int
    rules: tuple[Rule, ...]
    deadlines: Mapping[Tier, Deadline]

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [
                {"tier": r.tier.value, "category": r.category, "severity_min": r.severity_min,
                 "severity_max": r.severity_max, "chief_levels": list(r.chief_levels)}
                for r in self.rules
            ],
            "deadlines": {t.value: {"accept_hours": d.accept_within / timedelta(hours=1),
                                    "resolve_hours": d.resolve_within / timedelta(hours=1)}
                          for t, d in self.deadlines.items()},
        }  # fmt: skip

    @classmethod
    def from_json(cls, version: int, data: Mapping[str, Any]) -> RuleSet:
        rules = tuple(
            Rule(tier=Tier(r["tier"]), category=r.get("category"), severity_min=r.get("severity_min", 1),
                 severity_max=r.get("severity_max", 4), chief_levels=tuple(r.get("chief_levels", ())))
            for r in data["rules"]
        )  # fmt: skip
        deadlines = {
            Tier(t): Deadline(timedelta(hours=d["accept_hours"]), timedelta(hours=d["resolve_hours"]))
            for t, d in data["deadlines"].items()
        }
        return cls(version=version, rules=rules, deadlines=deadlines)


def _days(n: float) -> timedelta:
    return timedelta(days=n)


# Version 1: 小事不出村、大事不出镇、矛盾不上交. Land acquisition goes to the township at
# least; critical safety hazards go straight to the county centre.
DEFAULT_RULES = RuleSet(
    version=1,
    rules=(
        Rule(Tier.county_center, category="safety_hazard", severity_min=4),
        Rule(Tier.township_hall, category="land_acquisition", severity_max=3),
        Rule(Tier.chief, severity_max=1, chief_levels=("group", "grid")),
        Rule(Tier.village_house, severity_min=2, severity_max=2),
        Rule(Tier.township_hall, severity_min=3, severity_max=3),
        Rule(Tier.county_center, severity_min=4),
    ),
    deadlines={
        Tier.chief: Deadline(timedelta(hours=24), timedelta(hours=24)),
        Tier.village_house: Deadline(_days(1), _days(3)),
        Tier.township_hall: Deadline(_days(1), _days(7)),
        Tier.county_center: Deadline(_days(2), _days(15)),
    },
)


@dataclass(frozen=True)
class Route:
    tier: Tier
    node: Link  # the handling node
    recipients: tuple[Holder, ...]  # current chief first, then deputies
    rule_version: int
    rule_index: int
    flags: tuple[str, ...] = field(default=())

    @property
    def node_code(self) -> str:
        return self.node.code


class NoRule(Exception):
    pass


def pick_rule(rules: RuleSet, *, category: str, severity: int) -> tuple[int, Rule]:
    for i, rule in enumerate(rules.rules):
        if rule.matches(category, severity):
            return i, rule
    raise NoRule(
        f"第 {rules.version} 版分派规则里没有适用于类别“{category}”、严重程度 {severity} 的规则；请管理员补上规则"
    )


def decide(
    rules: RuleSet, *, category: str, severity: int, chain: Sequence[Link], outside_county: bool = False
) -> Route:
    """The tier and the node (with its current holders) that must handle the report.

    `chain` is deepest first, county last: the located chain, or, for a point outside
    the county, the chain of the reporter's own post (and `outside_county` is set).
    A vacant post is skipped upwards, never left as a dead end, and flagged.
    """
    index, rule = pick_rule(rules, category=category, severity=severity)
    return _route(rules, index, rule, chain, outside_county)


def route_to_tier(rules: RuleSet, *, tier: Tier, chain: Sequence[Link], outside_county: bool = False) -> Route:
    """Where `tier` sits in the chain, for escalation and reopening (the first rule of
    that tier says which chief levels; the mediation bodies have fixed levels)."""
    for index, rule in enumerate(rules.rules):
        if rule.tier is tier:
            return _route(rules, index, rule, chain, outside_county)
    return _route(rules, -1, Rule(tier, chief_levels=("group", "grid")), chain, outside_county)


def _route(rules: RuleSet, index: int, rule: Rule, chain: Sequence[Link], outside_county: bool) -> Route:
    if not chain:
        raise ValueError("a route needs a chain of at least the county")
    flags: list[str] = ["outside_county"] if outside_county else []
    wanted = rule.chief_levels if rule.tier is Tier.chief else BODY_LEVELS[rule.tier]
    start = next((i for i, link in enumerate(chain) if link.level in wanted), None)
    if start is None:
        # The chain has no such level (a point that fell back to a township, say):
        # the nearest node above where that level would be answers instead.
        flags.append("level_missing")
        start = 0
    for link in chain[start:]:
        if any(h.role == "chief" for h in link.chiefs):
            if link is not chain[start]:
                flags.append("vacant_post_skipped")
            return Route(
                tier=rule.tier, node=link, recipients=tuple(sorted(link.chiefs, key=lambda h: h.role != "chief")),
                rule_version=rules.version, rule_index=index, flags=tuple(flags),
            )  # fmt: skip
    return Route(rule.tier, chain[-1], (), rules.version, index, (*flags, "no_holder_in_chain"))
