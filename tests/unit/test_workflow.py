"""The workflow table (grid.cases.workflow.STEPS): which action may be taken when, where
it leads, what it must carry, and which columns of the case it changes."""

from datetime import UTC, datetime, timedelta

import pytest

from grid.cases.enums import Outcome, Section, State
from grid.cases.workflow import (
    STEPS,
    Action,
    IllegalTransition,
    Then,
    allowed_actions,
    missing_fields,
    step_for,
)
from grid.exceptions import InvalidInput

# States a case passes through inside one transaction: the server assigns it again
# there and then (a new report, an escalation, a return, a reopening).
PASSING = frozenset({State.reported, State.escalated, State.returned, State.reopened})
# What follows an action when the server assigns the case again in the same transaction.
ASSIGNS_AGAIN = frozenset({Then.escalate, Then.return_to, Then.reassign})
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def take(state: State, action: str) -> State:
    """Where a case rests after a person takes `action` in `state`: the step's state, or,
    when the server assigns it again in the same transaction, `assigned`."""
    step = step_for(state, action)
    if step.then in ASSIGNS_AGAIN:
        return State.assigned
    return step.to or State(state)


def case_in(state: State, **kw: object) -> dict[str, object]:
    return {
        "state": state.value, "accept_by": NOW + timedelta(hours=24), "resolve_by": NOW + timedelta(days=3),
        "deadline_no": 1, "warned_deadline_no": 0, **kw,
    }  # fmt: skip


def test_the_main_path():
    # Nobody acts on a new report: the server assigns it in the same transaction.
    assert allowed_actions(State.reported) == ()
    s, seen = State.assigned, []
    for action in ["accept", "start_mediation", "resolve", "return_visit", "close"]:
        s = take(s, action)
        seen.append(s)
    assert seen == [State.accepted, State.mediating, State.resolved, State.return_visit, State.closed]


def test_failed_mediation_escalates_and_is_assigned_again():
    assert take(State.mediating, "fail") is State.failed
    escalate = step_for(State.failed, "escalate")
    assert escalate.to is State.escalated and escalate.then is Then.escalate
    assert take(State.failed, "escalate") is State.assigned


def test_an_illegal_action_names_the_actions_allowed_now():
    with pytest.raises(IllegalTransition) as exc:
        step_for(State.assigned, "close")
    assert exc.value.state is State.assigned and exc.value.action == "close"
    assert exc.value.allowed == ("accept", "escalate", "return", "extend")
    assert "现在可以：受理（accept）、上交（escalate）、退回（return）、延期（extend）" in str(exc.value)
    assert "“待受理”" in str(exc.value) and "不能结案（close）" in str(exc.value)
    # A case passing through `reported` is the server's to assign: a person can do nothing.
    with pytest.raises(IllegalTransition) as exc:
        step_for(State.reported, "close")
    assert exc.value.allowed == () and "现在没有可以做的操作" in str(exc.value)


def test_unknown_action_is_illegal_too():
    with pytest.raises(IllegalTransition) as exc:
        step_for(State.assigned, "teleport")
    assert exc.value.allowed == allowed_actions(State.assigned)
    # `assign` is no longer a person's action: the server assigns inside the service.
    for state in State:
        with pytest.raises(IllegalTransition):
            step_for(state, "assign")


def test_no_state_but_closed_is_a_dead_end():
    for state in State:
        if state is State.terminated:  # 依法终结: referred to legal channels, the case ends here
            assert allowed_actions(state) == (), state
        elif state in PASSING:
            assert allowed_actions(state) == (), state  # never rests there: the server moves it on
        else:
            assert allowed_actions(state), state
    assert allowed_actions(State.closed) == ("reopen",)


def test_passing_states_are_never_a_resting_destination():
    """`returned` (and the other passing states) is never a dead end: every step that
    leads into one says the server assigns the case again, and no step that leaves the
    case resting leaves it in one."""
    for step in STEPS.values():
        if step.to in PASSING:
            assert step.then in ASSIGNS_AGAIN, step.action
        else:
            assert step.then not in ASSIGNS_AGAIN, step.action
            resting = {step.to} if step.to is not None else step.sources
            assert not resting & PASSING, step.action
    # No step leads back to `reported`: only a new report starts there.
    assert all(step.to is not State.reported for step in STEPS.values())
    into_returned = [step for step in STEPS.values() if step.to is State.returned]
    assert into_returned == [STEPS[Action.return_]]
    assert into_returned[0].then is Then.return_to and "next_recipient" in into_returned[0].needs
    assert take(State.assigned, "return") is State.assigned
    assert take(State.accepted, "return") is State.assigned


def test_every_action_is_reachable():
    assert set(STEPS) == set(Action)
    assert all(step.action is action for action, step in STEPS.items())
    # Walk from where a new report rests (assigned by the server), taking every action.
    reached, used, todo = {State.assigned}, set(), [State.assigned]
    while todo:
        state = todo.pop()
        for action in allowed_actions(state, handles=True, owns=True):  # a handler's and a hard case's owner's
            used.add(Action(action))
            after = take(state, action)
            if after not in reached:
                reached.add(after)
                todo.append(after)
    assert used == set(Action)
    assert reached == set(State) - PASSING


def test_the_county_centre_closes_lawfully_and_never_escalates():
    """依法终结 is the centre's, from a failed mediation; escalation stops below the centre."""
    assert take(State.failed, "terminate") is State.terminated
    assert "terminate" in allowed_actions(State.failed, "county_center")
    assert "escalate" not in allowed_actions(State.failed, "county_center")
    for tier in ("chief", "village_house", "township_hall"):
        assert "escalate" in allowed_actions(State.failed, tier) and "terminate" not in allowed_actions(
            State.failed, tier
        )
        with pytest.raises(IllegalTransition):
            step_for(State.failed, "terminate", tier)
    with pytest.raises(IllegalTransition) as exc:
        step_for(State.failed, "escalate", "county_center")
    assert exc.value.allowed == ("terminate",)
    assert "调处中心已是最后一级" in str(exc.value) and "依法终结（action: terminate" in str(exc.value)
    assert missing_fields(STEPS[Action.terminate], {"note": "双方分歧大"}) == ["channel"]
    changes = STEPS[Action.terminate].changes(case_in(State.failed), {"note": "分歧大", "channel": "arbitration"}, NOW)
    assert changes == {"closed_at": NOW, "closure_channel": "arbitration", "closure_reason": "分歧大"}
    with pytest.raises(InvalidInput, match="诉讼"):
        STEPS[Action.terminate].changes(case_in(State.failed), {"note": "x", "channel": "prayer"}, NOW)


def test_return_needs_a_reason_and_a_next_recipient():
    assert missing_fields(STEPS[Action.return_], {"note": ""}) == ["note", "next_recipient"]
    assert missing_fields(STEPS[Action.return_], {"note": "not ours", "next_recipient": "x"}) == []
    assert missing_fields(STEPS[Action.extend], {"note": "waiting for survey"}) == ["approver"]
    assert missing_fields(STEPS[Action.fail], {"note": None}) == ["note"]
    assert missing_fields(STEPS[Action.reopen], {}) == ["note"]
    assert missing_fields(STEPS[Action.accept], {}) == []


# --- what each step changes (as the service's if/elif did before the table) --------


def test_resolve_records_an_agreement():
    changes = STEPS[Action.resolve].changes(case_in(State.mediating), {"agreement_text": "赔偿五百元"}, NOW)
    assert changes == {"outcome": Outcome.agreement.value, "agreement_text": "赔偿五百元"}
    assert changes["outcome"] == "agreement"
    assert STEPS[Action.resolve].changes(case_in(State.mediating), {}, NOW) == {
        "outcome": "agreement", "agreement_text": None,
    }  # fmt: skip


def test_fail_records_the_outcome_and_the_reason():
    changes = STEPS[Action.fail].changes(case_in(State.mediating), {"note": "双方不让步"}, NOW)
    assert changes == {"outcome": "failed", "failure_reason": "双方不让步"}


def test_a_return_visit_validates_the_satisfaction():
    step = STEPS[Action.visit]
    for satisfaction in (1, 3, 5, None):
        assert step.changes(case_in(State.resolved), {"satisfaction": satisfaction}, NOW) == {
            "satisfaction": satisfaction
        }
    for satisfaction in (0, 6, -1):
        with pytest.raises(InvalidInput, match="satisfaction"):
            step.changes(case_in(State.resolved), {"satisfaction": satisfaction}, NOW)
    # Its note is written as the return-visit section of the file; no other step writes one.
    assert step.section is Section.return_visit
    assert [s.action for s in STEPS.values() if s.section is not None] == [Action.visit]


def test_close_stamps_closed_at():
    assert STEPS[Action.close].changes(case_in(State.return_visit), {}, NOW) == {"closed_at": NOW}


def test_extend_moves_the_deadline_waited_for_and_counts_a_new_one():
    step = STEPS[Action.extend]
    assert step.to is None  # the state stays
    case = case_in(State.assigned)
    assert step.changes(case, {"hours": 12}, NOW) == {
        "accept_by": case["accept_by"] + timedelta(hours=12), "deadline_no": 2,
    }  # fmt: skip
    assert step.changes(case, {}, NOW) == {"accept_by": case["accept_by"] + timedelta(hours=24), "deadline_no": 2}
    for state in (State.accepted, State.mediating):
        case = case_in(state, deadline_no=3)
        assert step.changes(case, {"hours": 48}, NOW) == {
            "resolve_by": case["resolve_by"] + timedelta(hours=48), "deadline_no": 4,
        }  # fmt: skip
    assert step.changes(case_in(State.mediating), {"hours": 24 * 30}, NOW)["resolve_by"] == (
        case_in(State.mediating)["resolve_by"] + timedelta(days=30)
    )
    for hours in (24 * 30 + 1, 1000, -1, 0):
        with pytest.raises(InvalidInput, match="30 天"):
            step.changes(case_in(State.accepted), {"hours": hours}, NOW)


def test_the_other_steps_change_only_the_state():
    others = set(Action) - {Action.resolve, Action.fail, Action.visit, Action.close, Action.extend, Action.conclude,
                            Action.terminate}  # fmt: skip
    for action in others:
        step = STEPS[action]
        source = sorted(step.sources)[0]
        assert step.changes(case_in(source), {"note": "x", "next_recipient": "y"}, NOW) == {}, action


def test_the_owners_of_a_hard_case_have_their_own_steps():
    """包案: a handler is never offered the owners' steps; an owner only those (and extend)."""
    assert allowed_actions(State.assigned) == ("accept", "escalate", "return", "extend")
    assert allowed_actions(State.assigned, handles=False, owns=True) == ("extend", "direct", "note", "conclude")
    assert allowed_actions(State.resolved, handles=False, owns=True) == ("note", "conclude")
    assert allowed_actions(State.closed, handles=False, owns=True) == ()
    assert allowed_actions(State.assigned, handles=False, owns=False) == ()
    with pytest.raises(IllegalTransition) as exc:
        step_for(State.closed, "note", handles=False, owns=True)
    assert exc.value.allowed == ()
    # 交办 lands the case assigned (at the tier named); a note changes nothing.
    assert take(State.mediating, "direct") is State.assigned and STEPS[Action.direct].needs == ("tier",)
    assert take(State.mediating, "note") is State.mediating


def test_conclude_closes_with_a_hard_outcome():
    step = step_for(State.mediating, "conclude", owns=True)
    assert step.to is State.closed and set(step.needs) == {"note", "hard_outcome"}
    fields = {"note": "x", "hard_outcome": "heart_settled"}
    assert step.changes(case_in(State.mediating), fields, NOW) == {"hard_outcome": "heart_settled", "closed_at": NOW}
    with pytest.raises(InvalidInput, match="事心双结"):
        step.changes(case_in(State.mediating), {"hard_outcome": "maybe"}, NOW)
