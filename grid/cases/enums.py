"""The words of a case, each defined once: states, tiers, sections, outcomes.
Their Chinese names, as people read them, are in grid/glossary.py.

The HTTP schemas, the domain and the SQL (`state = ANY(%(states)s)`) all use these;
the migrations' CHECK constraints list the same values (a test compares them).
"""

from __future__ import annotations

from enum import StrEnum

from grid.glossary import section_name


class State(StrEnum):
    reported = "reported"
    assigned = "assigned"
    accepted = "accepted"
    mediating = "mediating"
    resolved = "resolved"
    failed = "failed"
    return_visit = "return_visit"
    closed = "closed"
    escalated = "escalated"
    returned = "returned"
    reopened = "reopened"
    terminated = "terminated"  # 依法终结: the county centre's lawful closure (legal channels)


class Tier(StrEnum):
    """Who handles a case, from the bottom up (小事不出村、大事不出镇、矛盾不上交)."""

    chief = "chief"  # the chiefs of the grid
    village_house = "village_house"  # the harmony house, one per village (a community in town)
    township_hall = "township_hall"  # the harmony hall, one per township
    county_center = "county_center"  # the county's mediation centre


TIER_ORDER: tuple[Tier, ...] = (Tier.chief, Tier.village_house, Tier.township_hall, Tier.county_center)


class Section(StrEnum):
    """一事一案六公开: the six things about a case that are made public."""

    investigation = "investigation"  # 调查
    facts = "facts"  # 事实
    policy = "policy"  # 政策
    reasoning = "reasoning"  # 评理
    disposition = "disposition"  # 处罚
    return_visit = "return_visit"  # 回访

    @property
    def name_zh(self) -> str:
        return section_name(self.value)


class Outcome(StrEnum):
    agreement = "agreement"  # 调解协议
    failed = "failed"
