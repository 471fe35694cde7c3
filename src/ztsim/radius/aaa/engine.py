"""The access decision, sans-I/O: a request and a frozen snapshot in, a decision out.

The snapshot is everything the decision needs from the inventory (SIMs by IMSI,
bound devices, identities, orgs, gateways, pools) and from the orgs' attach policies
(`ztsim.radius.aaa.attach`), built off the hot path by `ztsim.radius.store.snapshot`.
The built-in checks come first; a SIM they accept is then judged by its org's attach
rules, if the org has any. Nothing here touches a database, a socket or a clock,
so the same function decides Access-Requests and re-checks live sessions when a
SIM is suspended or a binding changes (revocation).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import NamedTuple

from ztsim.identifiers.imei import IMEI_BODY_DIGITS, IMEI_LENGTH, IMEISV_LENGTH
from ztsim.identifiers.luhn import luhn_check_digit
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.reference import Decision as PolicyDecision
from ztsim.radius.aaa.attach import AttachClass, AttachState, allows, judge
from ztsim.radius.dictionary import DecodedAttributes
from ztsim.radius.secret import SharedSecret
from ztsim.sessions.allocator import PoolEntry

_ACTIVE = "active"
# Remembered source addresses per snapshot: enough for every gateway, not for a flood.
_SEEN_LIMIT = 4096
# TS 23.003 §2.2: an IMSI is at most 15 digits; MCC + MNC make at least 5.
_IMSI_DIGITS = range(5, 16)


class Reason(StrEnum):
    """Why a request was accepted or rejected; stored with every decision event."""

    ACCEPTED = "accepted"
    BOUND_ON_FIRST_ATTACH = "bound_on_first_attach"
    IMSI_MISSING = "imsi_missing"
    UNKNOWN_IMSI = "unknown_imsi"
    SIM_NOT_ACTIVE = "sim_not_active"
    APN_NOT_ALLOWED = "apn_not_allowed"
    NO_IDENTITY = "no_identity"
    IDENTITY_DISABLED = "identity_disabled"
    IMEI_MISSING = "imei_missing"
    NO_BOUND_DEVICE = "no_bound_device"
    IMEI_MISMATCH = "imei_mismatch"
    CLONE_SUSPECTED = "clone_suspected"
    NO_ADDRESS = "no_address"
    POLICY_DENIED = "policy_denied"  # an attach rule (or its fail-closed default) refused


# Rejections that point at a cloned SIM or a swapped device: recorded as risk events too.
RISK_REASONS = frozenset({Reason.IMEI_MISMATCH, Reason.CLONE_SUSPECTED})

# The text a gateway may show or log (Reply-Message); never names a person or a device.
MESSAGES: Mapping[Reason, str] = {
    Reason.ACCEPTED: "welcome",
    Reason.BOUND_ON_FIRST_ATTACH: "welcome",
    Reason.IMSI_MISSING: "no IMSI in the request",
    Reason.UNKNOWN_IMSI: "unknown subscriber",
    Reason.SIM_NOT_ACTIVE: "SIM is not active",
    Reason.APN_NOT_ALLOWED: "APN not allowed",
    Reason.NO_IDENTITY: "SIM is not assigned",
    Reason.IDENTITY_DISABLED: "subscriber is disabled",
    Reason.IMEI_MISSING: "no IMEISV in the request",
    Reason.NO_BOUND_DEVICE: "SIM is not bound to a device",
    Reason.IMEI_MISMATCH: "device is not the one bound to this SIM",
    Reason.CLONE_SUSPECTED: "SIM is already in use on another device",
    Reason.NO_ADDRESS: "no address available",
    # Which rule or check refused is in the event, not on the wire.
    Reason.POLICY_DENIED: "access denied by policy",
}


@dataclass(frozen=True, slots=True)
class SimEntry:
    iccid: str
    org_id: str
    imsi: str
    state: str
    identity_id: str | None
    device_id: str | None


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    id: str
    org_id: str
    name: str
    network: IPv4Network | IPv6Network
    secret: SharedSecret = field(repr=False)
    apns: frozenset[str]
    require_message_authenticator: bool
    coa_port: int


@dataclass(frozen=True, slots=True)
class SnapshotPatch:
    """Rows re-read for a few keys: SIMs as they are now, identities and devices by id,
    orgs' compiled attach policies and SIMs' attach classes by IMSI (None: it no longer
    exists, or the org has no attach rules any more)."""

    sims: tuple[SimEntry, ...] = ()
    identities_enabled: Mapping[str, bool | None] = field(default_factory=dict)
    device_imeis: Mapping[str, str | None] = field(default_factory=dict)
    attach_policies: Mapping[str, CompiledPolicy | None] = field(default_factory=dict)
    attach_classes: Mapping[str, AttachClass | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The view of the inventory the decisions read. Its gateways and pools are replaced
    whole; its SIMs, devices and identities are patched in place (`patch`), by whoever
    holds the core's lock: copying a million SIMs per change would hold up the hot path
    for tens of milliseconds each time."""

    sims: dict[str, SimEntry] = field(default_factory=dict)  # by IMSI
    device_imeis: dict[str, str] = field(default_factory=dict)  # device id -> IMEI
    identities_enabled: dict[str, bool] = field(default_factory=dict)
    tofu_orgs: frozenset[str] = frozenset()
    gateways: tuple[GatewayEntry, ...] = ()
    pools: Mapping[str, PoolEntry] = field(default_factory=dict)  # by org id
    attach: AttachState = field(default_factory=AttachState, compare=False)
    _by_address: Mapping[IPv4Address | IPv6Address, GatewayEntry] = field(
        init=False, repr=False, compare=False
    )
    # Source address text -> gateway, filled as datagrams arrive (bounded below).
    _seen: dict[str, GatewayEntry | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = {
            g.network.network_address: g for g in self.gateways if g.network.num_addresses == 1
        }
        object.__setattr__(self, "_by_address", exact)
        object.__setattr__(self, "_seen", {})

    def patch(self, patch: SnapshotPatch) -> None:
        """Apply re-read rows in place (see the class): a key's entry is replaced in one
        dict assignment, so a reader sees it before or after, never half of it."""
        for sim in patch.sims:
            self.sims[sim.imsi] = sim
        for identity_id, enabled in patch.identities_enabled.items():
            if enabled is None:
                self.identities_enabled.pop(identity_id, None)
            else:
                self.identities_enabled[identity_id] = enabled
        for device_id, imei in patch.device_imeis.items():
            if imei is None:
                self.device_imeis.pop(device_id, None)
            else:
                self.device_imeis[device_id] = imei
        self.attach.patch(patch.attach_policies, patch.attach_classes)

    def gateway_for(self, source: str) -> GatewayEntry | None:
        """The registered client a datagram from `source` comes from, or None."""
        try:
            return self._seen[source]
        except KeyError:
            pass
        found = self._lookup(source)
        if len(self._seen) < _SEEN_LIMIT:
            self._seen[source] = found
        return found

    def _lookup(self, source: str) -> GatewayEntry | None:
        try:
            address = ip_address(source)
        except ValueError:
            return None
        found = self._by_address.get(address)
        if found is not None:
            return found
        # Longest prefix first, so a host entry inside a registered prefix wins.
        candidates = [
            g
            for g in self.gateways
            if g.network.version == address.version and address in g.network
        ]
        return max(candidates, key=lambda g: g.network.prefixlen, default=None)


# Tuples, not frozen dataclasses: one of each per Access-Request, and a frozen
# dataclass's __init__ sets each field through object.__setattr__.
class AccessRequest(NamedTuple):
    """What the decision reads from an Access-Request (or a live session)."""

    imsi: str | None
    imei: str | None
    apn: str | None


_ACCEPTING = frozenset({Reason.ACCEPTED, Reason.BOUND_ON_FIRST_ATTACH})


def attach_text(request: AccessRequest) -> str:
    """An accepted attach's IMEI and APN as one string, as the core remembers it per IMSI
    for accounting that leaves them out: a string is nothing for the cyclic garbage
    collector to walk, where a million attached SIMs' tuples were. (An IMEI is digits.)"""
    return (request.imei or "") + "\x00" + (request.apn or "")


def attach_of(text: str) -> tuple[str | None, str | None]:
    """The IMEI and APN `attach_text` wrote."""
    imei, _, apn = text.partition("\x00")
    return imei or None, apn or None


class Decision(NamedTuple):
    reason: Reason
    sim: SimEntry | None = None
    # Trust on first attach: the IMEI to bind to the SIM now.
    bind_imei: str | None = None
    # POLICY_DENIED: the attach policy's decision (its rule and reason codes).
    policy: PolicyDecision | None = None

    @property
    def accepted(self) -> bool:
        return self.reason in _ACCEPTING

    @property
    def risk(self) -> bool:
        return self.reason in RISK_REASONS

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


@functools.lru_cache(maxsize=65536)
def imei_of(value: object) -> str | None:
    """The 15-digit IMEI from a 3GPP-IMEISV value: a 16-digit IMEISV (TS 23.003 §6.2.2:
    TAC, SNR, SVN; the check digit recomputed, Annex B) or a 15-digit IMEI whose check
    digit holds."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        return None
    body = value[:IMEI_BODY_DIGITS]
    if len(value) == IMEISV_LENGTH:
        return body + str(luhn_check_digit(body))
    if len(value) == IMEI_LENGTH and str(luhn_check_digit(body)) == value[-1]:
        return value
    return None


def normalise_apn(value: str) -> str:
    return value.strip().lower()


def make_request(imsi: object, user_name: object, imeisv: object, apn: object) -> AccessRequest:
    """IMSI from 3GPP-IMSI (else a User-Name of digits), IMEI from 3GPP-IMEISV, APN from
    Called-Station-Id (TS 29.061 §16.4.7)."""
    if not isinstance(imsi, str):
        imsi = user_name if isinstance(user_name, str) and user_name.isdigit() else None
    if imsi is not None and (len(imsi) not in _IMSI_DIGITS or not imsi.isdigit()):
        imsi = None
    return AccessRequest(
        imsi=imsi,
        imei=imei_of(imeisv),
        apn=normalise_apn(apn) if isinstance(apn, str) else None,
    )


# The hot path's raw text values: a SIM sends the same ones at every attach, so each
# combination is checked once.
make_request_from_text = functools.lru_cache(maxsize=65536)(make_request)


def access_request(attributes: DecodedAttributes) -> AccessRequest:
    return make_request(
        attributes.get("3GPP-IMSI"),
        attributes.get("User-Name"),
        attributes.get("3GPP-IMEISV"),
        attributes.get("Called-Station-Id"),
    )


def decide(
    snapshot: Snapshot,
    gateway: GatewayEntry,
    request: AccessRequest,
    live_imeis: Collection[str] = (),
    now: datetime | None = None,
) -> Decision:
    """Accept or reject. `live_imeis` are the IMEIs of the IMSI's live sessions; `now`
    ages attach classes (None: as last classified)."""
    if request.imsi is None:
        return Decision(Reason.IMSI_MISSING)
    sim = snapshot.sims.get(request.imsi)
    # Another org's SIM is, for this gateway, no SIM at all.
    if sim is None or sim.org_id != gateway.org_id:
        return Decision(Reason.UNKNOWN_IMSI)
    if sim.state != _ACTIVE:
        return Decision(Reason.SIM_NOT_ACTIVE, sim)
    apn = request.apn
    if apn is None or apn not in gateway.apns:
        return Decision(Reason.APN_NOT_ALLOWED, sim)
    if sim.identity_id is None:
        return Decision(Reason.NO_IDENTITY, sim)
    if not snapshot.identities_enabled.get(sim.identity_id, False):
        return Decision(Reason.IDENTITY_DISABLED, sim)
    if request.imei is None:
        return Decision(Reason.IMEI_MISSING, sim)
    if live_imeis and any(other != request.imei for other in live_imeis):
        return Decision(Reason.CLONE_SUSPECTED, sim)
    if sim.device_id is None:
        if sim.org_id in snapshot.tofu_orgs:
            policy = snapshot.attach.policies.get(sim.org_id)
            bound = Decision(Reason.BOUND_ON_FIRST_ATTACH, sim, bind_imei=request.imei)
            return bound if policy is None else _by_policy(snapshot, policy, bound, apn, now)
        return Decision(Reason.NO_BOUND_DEVICE, sim)
    if snapshot.device_imeis.get(sim.device_id) != request.imei:
        return Decision(Reason.IMEI_MISMATCH, sim)
    policy = snapshot.attach.policies.get(sim.org_id)
    if policy is None:
        return Decision(Reason.ACCEPTED, sim)
    return _by_policy(snapshot, policy, Decision(Reason.ACCEPTED, sim), apn, now)


def _by_policy(
    snapshot: Snapshot,
    policy: CompiledPolicy,
    accepted: Decision,
    apn: str,
    now: datetime | None,
) -> Decision:
    """An accepting decision, unless the org's attach rules refuse its SIM this APN."""
    sim = accepted.sim
    entry = None if sim is None else snapshot.attach.classes.get(sim.imsi)
    verdict = judge(policy, entry, apn, now)
    if allows(verdict):
        return accepted
    return Decision(Reason.POLICY_DENIED, accepted.sim, policy=verdict)
