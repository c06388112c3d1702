import pytest

from grid.workflow import TRANSITIONS, Action, IllegalTransition, State, allowed_actions, missing_fields, next_state


def test_the_main_path():
    s = State.reported
    for action in ["assign", "accept", "start_mediation", "resolve", "return_visit", "close"]:
        s = next_state(s, action)
    assert s is State.closed


def test_failed_mediation_escalates_and_is_assigned_again():
    s = next_state(next_state(State.mediating, "fail"), "escalate")
    assert s is State.escalated and next_state(s, "assign") is State.assigned


def test_an_illegal_action_names_the_actions_allowed_now():
    with pytest.raises(IllegalTransition) as exc:
        next_state(State.reported, "close")
    assert exc.value.allowed == ("assign",)
    assert "possible now: assign" in str(exc.value)


def test_unknown_action_is_illegal_too():
    with pytest.raises(IllegalTransition):
        next_state(State.assigned, "teleport")


def test_no_state_but_closed_is_a_dead_end():
    for state in State:
        assert allowed_actions(state), state
    assert allowed_actions(State.closed) == ("reopen",)


def test_every_action_is_used_and_returned_is_never_a_dead_end():
    assert {a for (_, a) in TRANSITIONS} == set(Action)
    assert next_state(State.returned, "assign") is State.assigned


def test_return_needs_a_reason_and_a_next_recipient():
    assert missing_fields("return", {"note": ""}) == ["note", "next_recipient"]
    assert missing_fields("return", {"note": "not ours", "next_recipient": "x"}) == []
    assert missing_fields("extend", {"note": "waiting for survey"}) == ["approver"]
    assert missing_fields("accept", {}) == []
