"""The words of a case, each defined once: states, tiers, sections, outcomes.

The HTTP schemas, the domain and the SQL (`state = ANY(%(states)s)`) all use these;
the migrations' CHECK constraints list the same values (a test compares them).
"""

from __future__ import annotations

from enum import StrEnum


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


class Tier(StrEnum):
    """Who handles a case, from the bottom up (小事不出村、大事不出镇、矛盾不上交)."""

    chief = "chief"  # the chiefs of the grid (五长)
    village_house = "village_house"  # 和事屋, one per village (a community in town)
    township_hall = "township_hall"  # 和事堂, one per township
    county_center = "county_center"  # 调处中心

    @property
    def name_zh(self) -> str:
        return TIER_NAMES_ZH[self]


TIER_NAMES_ZH = {
    Tier.chief: "五长",
    Tier.village_house: "和事屋",
    Tier.township_hall: "和事堂",
    Tier.county_center: "调处中心",
}
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
        return SECTION_NAMES_ZH[self]


SECTION_NAMES_ZH = {
    Section.investigation: "调查",
    Section.facts: "事实",
    Section.policy: "政策",
    Section.reasoning: "评理",
    Section.disposition: "处罚",
    Section.return_visit: "回访",
}


class Outcome(StrEnum):
    agreement = "agreement"  # 调解协议
    failed = "failed"
