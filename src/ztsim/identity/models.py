"""Identity records as the rest of the platform sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ztsim.identity.roles import Role


class IdentityKind(StrEnum):
    USER = "user"
    SERVICE = "service"  # an IoT device's service identity


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    slug: str
    tofu_binding: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    org_id: str
    kind: IdentityKind
    name: str
    email: str | None
    external_id: str | None
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Collection:
    """A group (of identities) or a fleet (of service identities)."""

    id: str
    org_id: str
    name: str
    member_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about a token after creation: never the token itself."""

    id: str
    org_id: str
    name: str
    role: Role
    identity_id: str | None
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
