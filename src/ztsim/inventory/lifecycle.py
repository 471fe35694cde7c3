"""The SIM lifecycle: `stock -> assigned -> active <-> suspended -> retired`.

Decisions beyond the diagram:
- `retire` is allowed from every live state (a SIM lost in stock or stolen while
  active must be retirable without first being activated or suspended);
  `retired` is terminal.
- `suspend` and `retire` need a reason: they cut someone off and are read later
  by whoever has to explain why. Other transitions take an optional reason.
"""

from __future__ import annotations

from enum import StrEnum

from ztsim.errors import Conflict, InvalidInput


class SimState(StrEnum):
    STOCK = "stock"
    ASSIGNED = "assigned"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class SimAction(StrEnum):
    ASSIGN = "assign"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    RESUME = "resume"
    RETIRE = "retire"


class IllegalTransition(Conflict):
    def __init__(self, state: SimState, action: SimAction) -> None:
        allowed = ", ".join(a.value for a in allowed_actions(state)) or "none"
        super().__init__(
            f"cannot {action.value} a SIM that is {state.value} (allowed from {state.value}: {allowed})"
        )
        self.state = state
        self.action = action


TRANSITIONS: dict[tuple[SimState, SimAction], SimState] = {
    (SimState.STOCK, SimAction.ASSIGN): SimState.ASSIGNED,
    (SimState.ASSIGNED, SimAction.ACTIVATE): SimState.ACTIVE,
    (SimState.ACTIVE, SimAction.SUSPEND): SimState.SUSPENDED,
    (SimState.SUSPENDED, SimAction.RESUME): SimState.ACTIVE,
    (SimState.STOCK, SimAction.RETIRE): SimState.RETIRED,
    (SimState.ASSIGNED, SimAction.RETIRE): SimState.RETIRED,
    (SimState.ACTIVE, SimAction.RETIRE): SimState.RETIRED,
    (SimState.SUSPENDED, SimAction.RETIRE): SimState.RETIRED,
}

REASON_REQUIRED = frozenset({SimAction.SUSPEND, SimAction.RETIRE})


def allowed_actions(state: SimState) -> list[SimAction]:
    return [action for (source, action) in TRANSITIONS if source is state]


def transition(state: SimState, action: SimAction, reason: str = "") -> SimState:
    """The state after `action`, or IllegalTransition / InvalidInput (missing reason)."""
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise IllegalTransition(state, action)
    if action in REASON_REQUIRED and not reason.strip():
        raise InvalidInput(f"a reason is required to {action.value} a SIM")
    return target
