"""The one event shape shared by every plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event before it is stored. `subject` is `<type>:<id>`, e.g. `sim:8944...`."""

    org_id: str
    kind: str
    actor: str
    subject: str
    outcome: Outcome = Outcome.SUCCESS
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    org_id: str
    time: datetime
    kind: str
    actor: str
    subject: str
    outcome: Outcome
    reason: str
    payload: dict[str, Any]


def subject_of(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"
