"""Change notifications: how a committed inventory or identity change reaches the roles
that hold live state (the AAA server disconnects sessions the change revokes).

Observers, not imports: the API calls `notify` after its transaction commits, and the
composition root (`ztsim.node`) decides who listens. Other processes learn the same
changes from their periodic snapshot reload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("ztsim.sessions.changes")


class ChangeKind(StrEnum):
    SIM = "sim"  # state or device binding of one SIM
    IDENTITY = "identity"  # an identity enabled or disabled
    NETWORK = "network"  # gateways, pools or org policy


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    kind: ChangeKind
    org_id: str
    iccid: str | None = None
    identity_id: str | None = None


Listener = Callable[[ChangeEvent], None]


def ignore(_change: ChangeEvent) -> None:
    """The notifier of a process with no listener."""


class Notifier:
    """Fans a change out to listeners; a failing listener never fails the caller."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def __call__(self, change: ChangeEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:
                log.exception("change listener failed for %s", change.kind)
