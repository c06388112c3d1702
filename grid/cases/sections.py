"""一事一案六公开, enforced: which of the six sections a case must have before it is
resolved or closed, by action, tier and outcome. Pure.

The table is a list of rules; the first rule that matches the action, the case's tier
and its outcome (after the step) names the sections that must be filed (not blank).
No matching rule: nothing is required. `WUZHANG_REQUIRED_SECTIONS` (JSON, the same
shape as `rules_to_json(DEFAULT_RULES)`) replaces the whole table (docs/workflow.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from grid.cases.enums import Outcome, Section, Tier
from grid.cases.workflow import Action

S = Section
E = TypeVar("E", bound=StrEnum)
ALL_SIX = (S.investigation, S.facts, S.policy, S.reasoning, S.disposition, S.return_visit)


@dataclass(frozen=True)
class Rule:
    action: Action
    sections: tuple[Section, ...]
    tier: Tier | None = None  # None: any tier
    outcome: Outcome | None = None  # None: any outcome

    def matches(self, action: Action, tier: Tier, outcome: Outcome | None) -> bool:
        return (self.action is action and self.tier in (None, tier)
                and self.outcome in (None, outcome))  # fmt: skip


# A chief (五长) settles a small quarrel on the spot: what happened and how it was settled,
# and at the end the return visit. A mediation room files the investigation and the
# policy it relied on too, and all six before the case is closed (处罚: "无" when none).
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(Action.resolve, (S.facts, S.reasoning), tier=Tier.chief),
    Rule(Action.resolve, (S.investigation, S.facts, S.policy, S.reasoning)),
    Rule(Action.close, (S.facts, S.reasoning, S.return_visit), tier=Tier.chief),
    Rule(Action.close, ALL_SIX),
)


@dataclass(frozen=True)
class Requirements:
    rules: tuple[Rule, ...] = DEFAULT_RULES

    def missing(self, *, action: str, tier: str, outcome: str | None, filed: Iterable[str]) -> list[Section]:
        """The sections `action` still needs, in the table's order; [] when none."""
        try:
            which = Action(action)
        except ValueError:
            return []
        out = Outcome(outcome) if outcome else None
        rule = next((r for r in self.rules if r.matches(which, Tier(tier), out)), None)
        have = set(filed)
        return [s for s in rule.sections if s.value not in have] if rule else []


REQUIRED = Requirements()


def rules_from_json(text: str) -> tuple[Rule, ...]:
    """`[{"action": "close", "tier": "chief", "outcome": "agreement", "sections": [...]}, ...]`;
    tier and outcome may be left out (or "*"): any. A ValueError says what is wrong."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"WUZHANG_REQUIRED_SECTIONS is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("WUZHANG_REQUIRED_SECTIONS must be a JSON list of rules")
    return tuple(_rule(i, item) for i, item in enumerate(items))


def _rule(i: int, item: Any) -> Rule:
    where = f"WUZHANG_REQUIRED_SECTIONS rule {i + 1}"
    if not isinstance(item, dict) or not isinstance(item.get("sections"), list):
        raise ValueError(f"{where}: an object with 'action' and a list 'sections'")
    unknown = set(item) - {"action", "tier", "outcome", "sections"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    return Rule(
        action=_one(Action, item.get("action"), where, "action"),
        sections=tuple(_one(Section, s, where, "section") for s in item["sections"]),
        tier=None if item.get("tier") in (None, "*") else _one(Tier, item["tier"], where, "tier"),
        outcome=None if item.get("outcome") in (None, "*") else _one(Outcome, item["outcome"], where, "outcome"),
    )


def _one(kind: type[E], value: Any, where: str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(k.value for k in kind)
        raise ValueError(f"{where}: unknown {what} {value!r}; one of {names}") from None


def rules_to_json(rules: Sequence[Rule]) -> str:
    return json.dumps(
        [{"action": r.action.value, "tier": r.tier.value if r.tier else "*",
          "outcome": r.outcome.value if r.outcome else "*", "sections": [s.value for s in r.sections]}
         for r in rules],
        ensure_ascii=False,
    )  # fmt: skip
