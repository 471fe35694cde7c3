"""What travels on the change feed: one committed change a plane must apply.

A change names what changed (topic and key), never the new state itself: a gateway
re-reads the key's current state, so applying a change twice, or an older change after
a newer one, leaves it where the database is (at-least-once delivery is then enough).
The payload carries only what a consumer needs to find the rows again (an address, an
ICCID), never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ztsim.errors import InvalidInput


class Topic(StrEnum):
    SIM = "sim"  # key: ICCID. State, device binding or holder of one SIM
    IDENTITY = "identity"  # key: identity id. Enabled or disabled, group or fleet membership
    NETWORK = "network"  # key: org id. Gateways, IP pools, the org's attach settings
    DNS = "dns"  # key: org id. DNS settings, rules, lists, networks
    # key: token id. A DoH device token issued or revoked (a topic's name, not a secret)
    DEVICE_TOKEN = "device_token"  # noqa: S105
    SESSION = "session"  # key: UE address (else the accounting session). Started, moved, stopped
    POSTURE = "posture"  # key: device id. A new posture report for the device (or it was dropped)
    POLICY = "policy"  # key: org id. Posture checks or rules of any plane (a policy file applied)
    NET = "net"  # key: org id. Sites (tunnels) and the private networks behind them


MAX_KEY = 200  # the outbox's column


def _frozen(payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(payload or {}))


@dataclass(frozen=True, slots=True)
class NewChange:
    """A change to publish in the transaction that makes it."""

    org_id: str
    topic: Topic
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > MAX_KEY:
            raise InvalidInput(f"a change's key is 1 to {MAX_KEY} characters")
        if type(self.topic) is not Topic:  # most are given as one: Topic() costs 0.3 µs
            object.__setattr__(self, "topic", Topic(self.topic))
        object.__setattr__(self, "payload", _frozen(self.payload))


@dataclass(frozen=True, slots=True)
class Change:
    """A published change, as a follower reads it: `seq` orders it among all others."""

    seq: int
    org_id: str
    topic: Topic
    key: str
    payload: Mapping[str, Any]
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", _frozen(self.payload))


def keys_of(changes: list[Change] | tuple[Change, ...], topic: Topic) -> list[str]:
    """The distinct keys of one topic, in the order they first appear."""
    seen: dict[str, None] = {}
    for change in changes:
        if change.topic is topic:
            seen.setdefault(change.key, None)
    return list(seen)
