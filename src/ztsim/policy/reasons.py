"""Reason codes: short, stable strings that say why a decision came out as it did.

They go into events, the Extended DNS Error text and `policy explain`, so that a person
who is denied learns which check or signal denied them:

- `rule:<name>` the rule that decided; `default:allow` / `default:deny` when none did;
  `fleet:allow-list-only` for a name outside an allow-list-only fleet's lists;
- `posture:<check>:<passed|failed|stale|missing>` a posture check's state that mattered;
- `sim:swap-recent`, `sim:imei-mismatch`, `sim:clone-suspected`, `sim:kind`,
  `identity:kind` a SIM or identity condition that mattered.
"""

from __future__ import annotations

from ztsim.policy.checks import CheckStatus
from ztsim.policy.conditions import Condition

DEFAULT_ALLOW = "default:allow"
DEFAULT_DENY = "default:deny"
ALLOW_LIST_ONLY = "fleet:allow-list-only"

_PATH_CODES = {
    "sim.swap_age": "sim:swap-recent",
    "sim.swap_recent": "sim:swap-recent",  # the same fact (a recent swap), told the same way
    "sim.imei_mismatch": "sim:imei-mismatch",
    "sim.clone_suspected": "sim:clone-suspected",
    "sim.kind": "sim:kind",
    "identity.kind": "identity:kind",
}


def rule(name: str) -> str:
    return f"rule:{name}"


def posture(check: str, status: CheckStatus) -> str:
    return f"posture:{check}:{status.value}"


def condition(parsed: Condition) -> tuple[str, ...]:
    """The codes of the facts a SIM or identity condition reads, in a stable order."""
    return tuple(sorted({_PATH_CODES[p] for p in parsed.paths if p in _PATH_CODES}))
