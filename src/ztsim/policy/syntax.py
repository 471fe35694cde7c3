"""The condition language's values: its syntax tree (small immutable nodes) and the
`Outcome` of evaluating one. `conditions` parses text into them; `evaluation` compiles
them into closures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ztsim.policy.facts import Scalar

SIM_PATHS = frozenset(
    {"sim.swap_age", "sim.swap_recent", "sim.imei_mismatch", "sim.clone_suspected", "sim.kind"}
)
IDENTITY_PATHS = frozenset({"identity.kind"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether a condition holds now, and the instant before which that cannot change
    (None: only a change of facts can change it)."""

    holds: bool
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar | tuple[Scalar, ...] | timedelta


@dataclass(frozen=True, slots=True)
class Path:
    name: str  # "device.managed", "sim.swap_age", "identity.kind"


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


Node = Literal | Path | Compare | BoolOp | Not
