import itertools

import pytest

from ztsim.errors import Conflict, InvalidInput
from ztsim.inventory.lifecycle import (
    IllegalTransition,
    SimAction,
    SimState,
    allowed_actions,
    transition,
)

# The lifecycle as the issue states it, written out independently of the code's table.
LEGAL = {
    (SimState.STOCK, SimAction.ASSIGN): SimState.ASSIGNED,
    (SimState.ASSIGNED, SimAction.ACTIVATE): SimState.ACTIVE,
    (SimState.ACTIVE, SimAction.SUSPEND): SimState.SUSPENDED,
    (SimState.SUSPENDED, SimAction.RESUME): SimState.ACTIVE,
    (SimState.STOCK, SimAction.RETIRE): SimState.RETIRED,
    (SimState.ASSIGNED, SimAction.RETIRE): SimState.RETIRED,
    (SimState.ACTIVE, SimAction.RETIRE): SimState.RETIRED,
    (SimState.SUSPENDED, SimAction.RETIRE): SimState.RETIRED,
}
ALL_PAIRS = list(itertools.product(SimState, SimAction))


@pytest.mark.parametrize(("state", "action"), list(LEGAL))
def test_legal_transition(state: SimState, action: SimAction) -> None:
    assert transition(state, action, "because") is LEGAL[(state, action)]


@pytest.mark.parametrize(("state", "action"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_illegal_transition_is_refused_clearly(state: SimState, action: SimAction) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, action, "because")
    assert isinstance(info.value, Conflict)
    assert f"cannot {action.value} a SIM that is {state.value}" in str(info.value)


def test_retired_is_terminal() -> None:
    assert allowed_actions(SimState.RETIRED) == []


@pytest.mark.parametrize("action", [SimAction.SUSPEND, SimAction.RETIRE])
@pytest.mark.parametrize("reason", ["", "   "])
def test_cutting_off_needs_a_reason(action: SimAction, reason: str) -> None:
    state = SimState.ACTIVE
    with pytest.raises(InvalidInput, match="reason is required"):
        transition(state, action, reason)


def test_other_transitions_take_an_optional_reason() -> None:
    assert transition(SimState.SUSPENDED, SimAction.RESUME) is SimState.ACTIVE
