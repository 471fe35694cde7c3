"""Roles and what each may do. Pure: the API asks `allows()` before every handler runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"  # SIM operations
    ANALYST = "analyst"  # reads events
    AUDITOR = "auditor"  # reads everything, changes nothing
    SELF = "self"  # an employee's own SIM, device and data only
    NETWORK = "network"  # a serving node of the org's core (AUSF): authentication vectors only
    SMDP = "smdp"  # the SM-DP+ that serves the org's eSIM profiles: progress reports only
    POSTURE = "posture"  # an MDM connector (Intune, Jamf, ...): device posture reports only


class Permission(StrEnum):
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    IDENTITIES_READ = "identities:read"
    IDENTITIES_WRITE = "identities:write"
    TOKENS_READ = "tokens:read"
    TOKENS_WRITE = "tokens:write"
    SIMS_READ = "sims:read"
    SIMS_WRITE = "sims:write"
    BINDINGS_WRITE = "bindings:write"
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    IMPORTS_READ = "imports:read"
    IMPORTS_WRITE = "imports:write"
    EVENTS_READ = "events:read"
    AKA_VECTORS = "aka:vectors"
    GATEWAYS_READ = "gateways:read"
    GATEWAYS_WRITE = "gateways:write"
    SESSIONS_READ = "sessions:read"
    ESIM_READ = "esim:read"
    ESIM_WRITE = "esim:write"
    ESIM_REISSUE = "esim:reissue"
    ESIM_PACK = "esim:pack"  # the pack shows the matching ID: not a plain read
    ESIM_PROGRESS = "esim:progress"
    DNS_READ = "dns:read"
    DNS_WRITE = "dns:write"
    POSTURE_READ = "posture:read"
    POSTURE_WRITE = "posture:write"
    POLICY_READ = "policy:read"
    POLICY_WRITE = "policy:write"
    # Why one subject gets its decisions: a `self` token may ask it about itself only.
    POLICY_EXPLAIN = "policy:explain"
    # CAMARA API consumers (OAuth clients); read without their secrets.
    API_CLIENTS_READ = "api-clients:read"
    API_CLIENTS_WRITE = "api-clients:write"
    # Risk (issue 19): settings and swap requests are read by who runs or audits swaps;
    # settings change and swaps are approved by admins only (the two-person rule).
    RISK_READ = "risk:read"
    RISK_WRITE = "risk:write"
    SWAPS_APPROVE = "swaps:approve"
    # Private connectivity (issue 20): sites and networks; admins write, readers read.
    NET_READ = "net:read"
    NET_WRITE = "net:write"


_READS = frozenset(p for p in Permission if p.value.endswith(":read"))
_ADMIN = frozenset(Permission) - {Permission.AKA_VECTORS, Permission.ESIM_PROGRESS}

GRANTS: dict[Role, frozenset[Permission]] = {
    # Vectors go to serving nodes only: an admin token is not an AUSF.
    Role.ADMIN: _ADMIN,
    Role.OPERATOR: frozenset(
        {
            Permission.ORG_READ,
            Permission.IDENTITIES_READ,
            Permission.SIMS_READ,
            Permission.SIMS_WRITE,
            Permission.DEVICES_READ,
            Permission.DEVICES_WRITE,
            Permission.IMPORTS_READ,
            Permission.IMPORTS_WRITE,
            Permission.ESIM_READ,
            Permission.ESIM_WRITE,
            Permission.ESIM_PACK,
            Permission.GATEWAYS_READ,
            Permission.SESSIONS_READ,
            Permission.DNS_READ,
            Permission.POLICY_READ,
            Permission.POLICY_EXPLAIN,
            Permission.RISK_READ,  # to follow the swap requests they made
            Permission.NET_READ,
        }
    ),
    # Sessions say who held an address: what an analyst needs to read a DNS or flow log.
    Role.ANALYST: frozenset(
        {
            Permission.ORG_READ,
            Permission.EVENTS_READ,
            Permission.SESSIONS_READ,
            Permission.DNS_READ,
            Permission.POLICY_READ,
            Permission.POLICY_EXPLAIN,
            Permission.NET_READ,  # which prefixes are behind which site: to read flow logs
        }
    ),
    Role.AUDITOR: _READS | {Permission.POLICY_EXPLAIN},
    # Scoped by the handlers to the token's own identity.
    Role.SELF: frozenset(
        {
            Permission.ORG_READ,
            Permission.SIMS_READ,
            Permission.DEVICES_READ,
            Permission.EVENTS_READ,
            Permission.ESIM_READ,
            Permission.ESIM_PACK,
            Permission.POSTURE_READ,
            Permission.POLICY_EXPLAIN,
        }
    ),
    Role.NETWORK: frozenset({Permission.AKA_VECTORS}),
    Role.SMDP: frozenset({Permission.ESIM_PROGRESS}),
    # Reports in, nothing out: a leaked connector token reads no device's posture.
    Role.POSTURE: frozenset({Permission.POSTURE_WRITE}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: always one org, one role; a `self` principal also one identity."""

    org_id: str
    role: Role
    token_id: str
    identity_id: str | None = None

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    @property
    def own_identity(self) -> str | None:
        """The identity every read is narrowed to, or None for org-wide roles."""
        return self.identity_id if self.role is Role.SELF else None
