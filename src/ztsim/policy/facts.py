"""What a policy knows about a subject: who it is, its SIM's signals and its device's posture.

A `Subject` is the input of every decision, in every plane. Values check themselves and
are hashable, so compiled policies can cache on them. Facts that age (a posture report, a
SIM swap) carry their times; whether a condition over them holds is a question asked at
an instant (`ztsim.policy.conditions`), never stored here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ztsim.errors import InvalidInput

Scalar = str | int | float | bool
_ATTRIBUTE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_ATTRIBUTES = 64
MAX_TEXT = 200


class IdentityKind(StrEnum):  # the values of ztsim.identity.models.IdentityKind
    USER = "user"  # a person
    SERVICE = "service"  # an IoT device's service identity


class SimKind(StrEnum):  # the values of ztsim.inventory.models.SimKind
    PHYSICAL = "physical"
    ESIM = "esim"


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidInput(f"{what} must carry a time zone")


def check_attribute(name: str, value: object) -> Scalar:
    """One posture attribute as policies read it; InvalidInput names what is wrong."""
    if not _ATTRIBUTE.fullmatch(name):
        raise InvalidInput(f"posture attribute {name!r}: lower-case letters, digits and _")
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"posture attribute {name!r}: not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"posture attribute {name!r}: longer than {MAX_TEXT} characters")
        return value
    raise InvalidInput(f"posture attribute {name!r}: a string, number or true/false")


@dataclass(frozen=True, slots=True)
class Posture:
    """One device's last posture report: attributes as the MDM saw them at `observed_at`.

    Past `expires_at` (or a check's maximum age) the report says nothing, and every
    check that reads it fails closed."""

    attributes: Mapping[str, Scalar]
    observed_at: datetime
    expires_at: datetime | None = None
    source: str = "generic"
    _key: tuple[tuple[str, Scalar], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise InvalidInput(f"a posture report has at most {MAX_ATTRIBUTES} attributes")
        checked = {name: check_attribute(name, v) for name, v in self.attributes.items()}
        _aware(self.observed_at, "observed_at")
        _aware(self.expires_at, "expires_at")
        if self.expires_at is not None and self.expires_at <= self.observed_at:
            raise InvalidInput("a posture report expires after it was observed")
        object.__setattr__(self, "attributes", checked)
        object.__setattr__(self, "_key", tuple(sorted(checked.items())))

    @classmethod
    def stored(
        cls,
        attributes: dict[str, Scalar],
        observed_at: datetime,
        expires_at: datetime | None,
        source: str,
    ) -> Posture:
        """A report as the database holds it, taken without checking it again.

        Safe because every stored report was a checked `Posture` when written (the
        posture store writes nothing else), JSON gives back the same names and scalars
        (finite floats stay floats, ints ints), and the time columns read back aware, in
        UTC; a gateway's load takes a million reports, where checking each again cost more
        than evaluating it. `attributes` becomes the report's own: the caller's fresh dict
        (a JSON decode), not to be touched after. The value is as immutable and hashable
        as a checked one."""
        posture = object.__new__(cls)
        object.__setattr__(posture, "attributes", attributes)
        object.__setattr__(posture, "observed_at", observed_at)
        object.__setattr__(posture, "expires_at", expires_at)
        object.__setattr__(posture, "source", source)
        object.__setattr__(posture, "_key", tuple(sorted(attributes.items())))
        return posture

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Posture):
            return NotImplemented
        return (self._key, self.observed_at, self.expires_at, self.source) == (
            other._key,
            other.observed_at,
            other.expires_at,
            other.source,
        )

    def __hash__(self) -> int:
        return hash((self._key, self.observed_at, self.expires_at, self.source))


@dataclass(frozen=True, slots=True)
class SimSignals:
    """What the SIM itself tells: facts only ztsim knows, because it is the SIM's AAA."""

    imei_mismatch: bool = False  # attached from a device other than the one it is bound to
    clone_suspected: bool = False  # twin sessions or an SQN anomaly, not yet cleared
    swapped_at: datetime | None = None  # the last SIM swap or re-issue for this subscriber
    # The end of the org's cooling-off after that swap: `sim.swap_recent` holds before it.
    swap_recent_until: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.swapped_at, "swapped_at")
        _aware(self.swap_recent_until, "swap_recent_until")


NO_SIGNALS = SimSignals()


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a decision is about. An org's address or token without an identity is a
    subject too (org only): policies that name nobody still apply to it."""

    org_id: str
    identity_id: str | None = None
    identity_kind: IdentityKind | None = None
    group_ids: frozenset[str] = frozenset()
    fleet_ids: frozenset[str] = frozenset()
    sim_kind: SimKind | None = None
    signals: SimSignals = NO_SIGNALS
    posture: Posture | None = None

    def __post_init__(self) -> None:
        if not self.org_id:
            raise InvalidInput("a subject belongs to an org")
        if self.identity_kind is not None:
            object.__setattr__(self, "identity_kind", IdentityKind(self.identity_kind))
        if self.sim_kind is not None:
            object.__setattr__(self, "sim_kind", SimKind(self.sim_kind))
        object.__setattr__(self, "group_ids", frozenset(self.group_ids))
        object.__setattr__(self, "fleet_ids", frozenset(self.fleet_ids))
