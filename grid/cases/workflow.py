"""The case workflow as a table: for every action a person can take, the states it may
be taken in, the state it leads to, what it must carry, which columns it changes, and
what follows. Pure: the API and the worker ask it; grid.cases.service applies it.

    reported → assigned → accepted → mediating → resolved | failed
    resolved → return_visit → closed
    escalated: up one tier (chief → village_house → township_hall → county_center),
               then assigned again at that tier
    returned (退回): with a reason and a named next recipient, then assigned again; the
               recipient is a live node with a chief strictly inside the handling node's
               subtree (down, never sideways or out); the case's own chain below the
               handling node is what is offered (grid.cases.service._return_to)
    reopened: the resident says it is not settled; assigned again
    extend: a later deadline, approved one tier up (grid.cases.service._check_approver)
    包案 (a hard case's owners: its leader and its unit's staff, grid.cases.service.owns):
        direct (交办) to a tier along the case's own chain, assigned there at once;
        note, a signed progress note; extend, as above, the owning leader approving;
        conclude with a hard outcome (案结事了, 息诉罢访, 事心双结): closed
    terminated (依法终结): at the county centre only, a failed mediation is referred to a
               legal channel (litigation, arbitration, administrative review); the end.
               The centre has no tier above it, so it cannot escalate.

`reported`, `escalated`, `returned` and `reopened` are passing states: the same
transaction assigns the case, so a case only ever rests in the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from grid.cases.enums import TIER_ORDER, Outcome, Section, State, Tier
from grid.exceptions import InvalidInput
from grid.glossary import CLOSURE_CHANNEL_NAMES, HARD_OUTCOME_NAMES, action_name, state_name, tier_name


class Action(StrEnum):
    accept = "accept"
    start_mediation = "start_mediation"
    resolve = "resolve"
    fail = "fail"
    escalate = "escalate"
    return_ = "return"  # 退回
    visit = "return_visit"
    close = "close"
    reopen = "reopen"
    extend = "extend"  # a deadline extension, approved one tier up; the state does not change
    # 包案: only a hard case's owners (grid.cases.service.owns) take these.
    direct = "direct"  # 交办: to a tier along the case's own chain (`tier`), assigned there at once
    note = "note"  # a signed progress note; nothing else changes
    conclude = "conclude"  # ended with a hard outcome (`hard_outcome`): closed
    terminate = "terminate"  # 依法终结: the county centre refers the case to a legal channel


class Then(StrEnum):
    """What follows an action, besides its ledger event."""

    notify_reporter = "notify_reporter"  # the reporter hears of the progress
    escalate = "escalate"  # routed to the next tier up and assigned there
    return_to = "return_to"  # assigned to the node named in `next_recipient`
    reassign = "reassign"  # assigned again at the same tier
    direct = "direct"  # assigned at the tier named in `tier` (an owner's 交办)
    record = "record"  # nothing: the ledger step is all
    notify_all = "notify_all"  # the reporter, the holders and an owning leader hear of it


# Where a case waits for whom, and what it is late for.
WAITING_FOR_ACCEPT = frozenset({State.assigned})  # late once accept_by has passed
WAITING_FOR_RESOLVE = frozenset({State.accepted, State.mediating, State.failed})  # late once resolve_by has passed
# Warned in the last quarter of their deadline (a failed mediation is escalated, not warned).
WARNED = frozenset({State.assigned, State.accepted, State.mediating})
# Not yet settled: someone must still act. A resolved case awaits only its return visit.
OPEN = frozenset(State) - {State.resolved, State.return_visit, State.closed, State.terminated}
# Where a case rests and has not ended: an owner may note progress on it or conclude it.
RESTING = frozenset(State) - {State.reported, State.escalated, State.returned, State.reopened, State.closed,
                              State.terminated}  # fmt: skip
# Every tier; and those with a tier above them (the county centre has none: 依法终结 instead).
ALL_TIERS = frozenset(Tier)
BELOW_TOP = frozenset(TIER_ORDER[:-1])

Changes = Callable[[Mapping[str, Any], Mapping[str, Any], datetime], dict[str, Any]]


def _no_changes(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {}


def _agreement(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {"outcome": Outcome.agreement.value, "agreement_text": fields.get("agreement_text")}


def _failure(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {"outcome": Outcome.failed.value, "failure_reason": fields.get("note")}


def _satisfaction(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    satisfaction = fields.get("satisfaction")
    if satisfaction is not None and not 1 <= int(satisfaction) <= 5:
        raise InvalidInput("满意度（satisfaction）应为 1 到 5：1 很不满意，5 很满意", satisfaction=satisfaction)
    return {"satisfaction": satisfaction}


def _closed(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {"closed_at": now}


def _termination(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    channel = fields.get("channel")
    if channel not in CLOSURE_CHANNEL_NAMES:
        choices = "、".join(f"{name}（{code}）" for code, name in CLOSURE_CHANNEL_NAMES.items())
        raise InvalidInput(f"{action_name('terminate')}须写明法定途径（channel）：{choices}", channel=channel)
    return {"closed_at": now, "closure_channel": channel, "closure_reason": fields.get("note")}


def _extension(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The deadline of the step the case waits for moves later; it counts as a new deadline."""
    hours = float(fields["hours"]) if fields.get("hours") is not None else 24.0
    if not 0 < hours <= 24 * 30:
        raise InvalidInput("延期时长（hours）应在 1 小时到 30 天（720 小时）之间", hours=hours)
    target = "accept_by" if case["state"] in WAITING_FOR_ACCEPT else "resolve_by"
    return {target: case[target] + timedelta(hours=hours), "deadline_no": case["deadline_no"] + 1}


def _concluded(case: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    outcome = fields.get("hard_outcome")
    if outcome not in HARD_OUTCOME_NAMES:
        names = "、".join(f"{name}（{code}）" for code, name in HARD_OUTCOME_NAMES.items())
        raise InvalidInput(f"包案办结须写明结果（hard_outcome）：{names}", hard_outcome=outcome)
    return {"hard_outcome": outcome, "closed_at": now}


@dataclass(frozen=True)
class Step:
    action: Action
    sources: frozenset[State]
    to: State | None  # None: the state stays
    needs: tuple[str, ...] = ()  # fields that must be present and not blank
    changes: Changes = _no_changes  # columns of the case it sets (pure)
    then: Then = Then.notify_reporter
    section: Section | None = None  # the note is also written as this section of the file
    tiers: frozenset[Tier] = ALL_TIERS  # the tiers where the action may be taken


STEPS: dict[Action, Step] = {
    step.action: step
    for step in (
        Step(Action.accept, frozenset({State.assigned}), State.accepted),
        Step(Action.start_mediation, frozenset({State.accepted}), State.mediating),
        Step(Action.resolve, frozenset({State.mediating}), State.resolved, changes=_agreement),
        Step(Action.fail, frozenset({State.mediating}), State.failed, needs=("note",), changes=_failure),
        # Up a tier: when late, when mediation failed, or when the handler judges it too big.
        Step(Action.escalate, frozenset({State.assigned, State.accepted, State.mediating, State.failed}),
             State.escalated, then=Then.escalate, tiers=BELOW_TOP),
        # 退回: the wrong place for it; never a dead end, it names who gets it next, inside
        # the handling node's subtree.
        Step(Action.return_, frozenset({State.assigned, State.accepted}), State.returned,
             needs=("note", "next_recipient"), then=Then.return_to),
        Step(Action.visit, frozenset({State.resolved}), State.return_visit, changes=_satisfaction,
             section=Section.return_visit),
        Step(Action.close, frozenset({State.return_visit}), State.closed, changes=_closed),
        # The resident is not satisfied.
        Step(Action.reopen, frozenset({State.resolved, State.return_visit, State.closed}), State.reopened,
             needs=("note",), then=Then.reassign),
        Step(Action.extend, frozenset({State.assigned, State.accepted, State.mediating}), None,
             needs=("note", "approver"), changes=_extension),
        # 包案: the owners' own steps (OWNERS_ONLY).
        Step(Action.direct, frozenset({State.assigned, State.accepted, State.mediating, State.failed}),
             State.assigned, needs=("tier",), then=Then.direct),
        Step(Action.note, RESTING, None, needs=("note",), then=Then.record),
        Step(Action.conclude, RESTING, State.closed, needs=("note", "hard_outcome"), changes=_concluded),
        # 依法终结: mediation failed at the centre, the last tier; the parties go to a legal channel.
        Step(Action.terminate, frozenset({State.failed}), State.terminated, needs=("note", "channel"),
             changes=_termination, then=Then.notify_all, tiers=frozenset({Tier.county_center})),
    )
}  # fmt: skip
# What a hard case's owners may take (its leader and its unit's staff), and which of those
# only they may take; a handler takes the rest.
OWNER_ACTIONS = frozenset({Action.extend, Action.direct, Action.note, Action.conclude})
OWNERS_ONLY = frozenset({Action.direct, Action.note, Action.conclude})


@dataclass(frozen=True)
class IllegalTransition(Exception):
    state: State
    action: str
    allowed: tuple[str, ...]
    tier: Tier | None = None

    def __str__(self) -> str:
        allowed = "、".join(f"{action_name(a)}（{a}）" for a in self.allowed)
        now = f"现在可以：{allowed}" if allowed else "现在没有可以做的操作"
        if self.action == Action.escalate and self.tier is not None and self.tier not in BELOW_TOP:
            channels = "、".join(CLOSURE_CHANNEL_NAMES.values())
            return (f"{tier_name(self.tier)}已是最后一级，不能{action_name('escalate')}；调解未成的，请"
                    f"{action_name('terminate')}（action: terminate，写明 channel 与理由），引导当事人通过{channels}"
                    f"解决；{now}")  # fmt: skip
        step = next((s for a, s in STEPS.items() if a.value == self.action), None)
        # Where the tier, not the state, is the reason, say so.
        where = f"在{tier_name(self.tier)}" if self.tier is not None and step and self.state in step.sources else ""
        return f"案件处于“{state_name(self.state)}”状态，{where}不能{action_name(self.action)}（{self.action}）；{now}"


def allowed_actions(
    state: State | str, tier: Tier | str | None = None, *, handles: bool = True, owns: bool = False
) -> tuple[str, ...]:
    """The actions a person may take in `state` (at `tier`, if given), in the table's order: a
    handler's (`handles`), a hard case's owner's (`owns`), or both."""
    return tuple(
        a.value for a, step in STEPS.items()
        if state in step.sources and (tier is None or tier in step.tiers)
        and ((handles and a not in OWNERS_ONLY) or (owns and a in OWNER_ACTIONS))
    )  # fmt: skip


def step_for(
    state: State | str, action: str, tier: Tier | str | None = None, *, handles: bool = True, owns: bool = False
) -> Step:
    """The step `action` takes from `state` (at `tier`, if given); IllegalTransition names
    what is possible instead."""
    try:
        step = STEPS[Action(action)]
    except ValueError:
        step = None
    if step is None or state not in step.sources or (tier is not None and tier not in step.tiers):
        raise IllegalTransition(State(state), action, allowed_actions(state, tier, handles=handles, owns=owns),
                                Tier(tier) if tier is not None else None)  # fmt: skip
    return step


def missing_fields(step: Step, given: Mapping[str, object]) -> list[str]:
    """Fields the step needs that are absent or blank."""
    return [f for f in step.needs if given.get(f) in (None, "")]
