"""What the settings page shows and the one change it makes.

Shown: the org's name and device-lock setting; its DNS privacy mode, each mode in the
plain words employees are given (`ztsim.esim.privacy`, the paragraph of the onboarding
pack and of the employee's own page) and who may read what it records; the SIM-swap
protection (two-person rule, cooling-off) from the risk settings, read-only.

Changed: the privacy mode, through `ztsim.dns.store.service.put_settings` as
PUT /api/v1/dns/settings does, with every other DNS setting read and written back as it
was, in the same transaction, so the audit event and the gateways' update are the API's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection

from ztsim.dns.policy.rules import PrivacyMode
from ztsim.dns.store import repository as dns
from ztsim.dns.store import service as dns_service
from ztsim.errors import InvalidInput
from ztsim.esim.privacy import DnsLogging, DnsLogMode, dns_privacy_paragraph
from ztsim.identity import repository as identities
from ztsim.identity.models import Org
from ztsim.identity.roles import Permission
from ztsim.policy.durations import format_duration
from ztsim.risk.settings import RiskSettings
from ztsim.risk.store import settings as risk
from ztsim.web.record import readers
from ztsim.web.viewer import Viewer

# From least to most recorded: the order the modes are offered in, and how a change is
# told (more or less recorded from now on).
ORDER = (PrivacyMode.NONE, PrivacyMode.BLOCKED_ONLY, PrivacyMode.ALL)
LABELS = {
    PrivacyMode.NONE: "Record nothing",
    PrivacyMode.BLOCKED_ONLY: "Record blocked look-ups only",
    PrivacyMode.ALL: "Record every look-up",
}


@dataclass(frozen=True, slots=True)
class Mode:
    value: str
    label: str
    told: str  # what employees are told, in the org's pseudonymisation
    current: bool


@dataclass(frozen=True, slots=True)
class SwapProtection:
    approval_required: bool
    cooling_off: str


@dataclass(frozen=True, slots=True)
class SettingsView:
    org: Org
    modes: list[Mode] | None  # None: the role may not read the DNS settings
    readers: list[str]
    swaps: SwapProtection | None  # None: the role may not read the risk settings


@dataclass(frozen=True, slots=True)
class Change:
    before: Mode
    after: Mode
    consequences: list[str]


def parse_mode(text: str | None) -> PrivacyMode:
    try:
        return PrivacyMode(text or "")
    except ValueError:
        choices = ", ".join(m.value for m in ORDER)
        raise InvalidInput(f"the privacy mode must be one of {choices}") from None


def told(mode: PrivacyMode, pseudonymised: bool) -> str:
    return dns_privacy_paragraph(DnsLogging(DnsLogMode(mode.value), pseudonymised))


def modes(current: PrivacyMode, pseudonymised: bool) -> list[Mode]:
    return [Mode(m.value, LABELS[m], told(m, pseudonymised), m is current) for m in ORDER]


def read(conn: Connection, viewer: Viewer) -> SettingsView:
    org_id = viewer.principal.org_id
    org = identities.get_org(conn, org_id)
    shown_modes = None
    if viewer.may(Permission.DNS_READ):
        settings, _ = dns.get_settings(conn, org_id)
        shown_modes = modes(settings.privacy, settings.pseudonymise)
    swaps = None
    if viewer.may(Permission.RISK_READ):
        swaps = _swaps(risk.get_settings(conn, org_id))
    return SettingsView(org, shown_modes, readers(), swaps)


def _swaps(settings: RiskSettings) -> SwapProtection:
    return SwapProtection(settings.approval_required, format_duration(settings.cooling_off))


def preview(conn: Connection, org_id: str, new: PrivacyMode) -> Change:
    """What changing to `new` means for employees; nothing is written."""
    settings, _ = dns.get_settings(conn, org_id)
    old, pseudonymised = settings.privacy, settings.pseudonymise
    before = Mode(old.value, LABELS[old], told(old, pseudonymised), True)
    after = Mode(new.value, LABELS[new], told(new, pseudonymised), False)
    return Change(before, after, consequences(old, new))


def consequences(old: PrivacyMode, new: PrivacyMode) -> list[str]:
    if old is new:
        return ["Nothing changes: this is the mode in force."]
    if ORDER.index(new) > ORDER.index(old):
        said = [
            "From the change on, the DNS filter records more about employees' look-ups. "
            "Nothing from before the change is recorded after the fact."
        ]
    else:
        said = [
            "From the change on, the DNS filter records less. Records already kept stay "
            "in the event log: this change does not erase them."
        ]
    return [
        *said,
        "Each employee's own page (What is recorded about me) shows the new words at once; "
        "onboarding packs already handed out still describe the old mode.",
        "Who may read the records does not change: "
        + ", ".join(readers())
        + " of the organisation, and each employee their own.",
    ]


def change_privacy(
    conn: Connection, org_id: str, new: PrivacyMode, *, actor: str, now: datetime
) -> bool:
    """Set the privacy mode, every other DNS setting as it is; False when already set
    (nothing written, no event)."""
    settings, networks = dns.get_settings(conn, org_id)
    if settings.privacy is new:
        return False
    dns_service.put_settings(
        conn, org_id, replace(settings, privacy=new), networks, actor=actor, now=now
    )
    return True
