"""The case workflow as a transition table. Pure: the API and the worker ask it.

    reported → assigned → accepted → mediating → resolved | failed
    resolved → return_visit → closed
    escalated: up one tier (chief → village_house → township_hall → county_center),
               then assigned again at that tier
    returned (退回): with a reason and a named next recipient, then assigned again
    reopened: the resident says it is not settled; assigned again
"""
from __future__ import annotations

from dataclasses import dataclass
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


class Action(StrEnum):
    assign = "assign"
    accept = "accept"
    start_mediation = "start_mediation"
    resolve = "resolve"
    fail = "fail"
    escalate = "escalate"
    return_ = "return"  # 退回
    visit = "return_visit"
    close = "close"
    reopen = "reopen"
    extend = "extend"  # a deadline extension; the state does not change


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.reported, Action.assign): State.assigned,
    (State.escalated, Action.assign): State.assigned,
    (State.returned, Action.assign): State.assigned,
    (State.reopened, Action.assign): State.assigned,
    (State.assigned, Action.accept): State.accepted,
    (State.accepted, Action.start_mediation): State.mediating,
    (State.mediating, Action.resolve): State.resolved,
    (State.mediating, Action.fail): State.failed,
    (State.resolved, Action.visit): State.return_visit,
    (State.return_visit, Action.close): State.closed,
    # Up a tier: when late, when mediation failed, or when the handler judges it too big.
    (State.assigned, Action.escalate): State.escalated,
    (State.accepted, Action.escalate): State.escalated,
    (State.mediating, Action.escalate): State.escalated,
    (State.failed, Action.escalate): State.escalated,
    # 退回: the wrong place for it; never a dead end, it names who gets it next.
    (State.assigned, Action.return_): State.returned,
    (State.accepted, Action.return_): State.returned,
    # The resident is not satisfied.
    (State.return_visit, Action.reopen): State.reopened,
    (State.closed, Action.reopen): State.reopened,
    (State.resolved, Action.reopen): State.reopened,
    # Extensions keep the state.
    (State.assigned, Action.extend): State.assigned,
    (State.accepted, Action.extend): State.accepted,
    (State.mediating, Action.extend): State.mediating,
}

# States a case can sit in waiting for someone; the others pass straight on.
OPEN_STATES = frozenset({State.reported, State.assigned, State.accepted, State.mediating, State.failed,
                         State.escalated, State.returned, State.reopened, State.resolved, State.return_visit})  # fmt: skip
# What each action must carry, besides the actor.
REQUIRED: dict[Action, tuple[str, ...]] = {
    Action.return_: ("note", "next_recipient"),
    Action.fail: ("note",),
    Action.extend: ("note", "approver"),
    Action.reopen: ("note",),
}


@dataclass(frozen=True)
class IllegalTransition(Exception):
    state: State
    action: str
    allowed: tuple[str, ...]

    def __str__(self) -> str:
        allowed = ", ".join(self.allowed) or "none"
        return f"'{self.action}' is not possible while the case is {self.state}; possible now: {allowed}"


def allowed_actions(state: State) -> tuple[str, ...]:
    return tuple(a.value for (s, a) in TRANSITIONS if s is state)


def next_state(state: State, action: str) -> State:
    try:
        return TRANSITIONS[(state, Action(action))]
    except (KeyError, ValueError):
        raise IllegalTransition(state, action, allowed_actions(state)) from None


def missing_fields(action: str, given: dict[str, object]) -> list[str]:
    """Fields the action needs that are absent or blank."""
    try:
        needed = REQUIRED.get(Action(action), ())
    except ValueError:
        return []
    return [f for f in needed if given.get(f) in (None, "")]
