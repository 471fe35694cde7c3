""" "What is recorded about me": the employee's own page, for a `self` sign-in.

Exactly what the API lets a `self` token read (its identity, its SIMs and devices, the
events about any of them, its open eSIM order's activation code: `own_onboarding`),
the DNS privacy mode in force in plain words (the same
paragraph the onboarding pack prints, `ztsim.esim.privacy`), how long events are kept,
and which roles of the org may read them (from `ztsim.identity.roles.GRANTS`, so the
page cannot drift from what the API allows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ztsim.dns.store import repository as dns
from ztsim.errors import Forbidden
from ztsim.esim.privacy import DnsLogging, DnsLogMode, dns_privacy_paragraph
from ztsim.events import store as events
from ztsim.events.schema import Event, subject_of
from ztsim.identity import repository as identities
from ztsim.identity.models import Identity
from ztsim.identity.roles import GRANTS, Permission, Principal, Role
from ztsim.inventory import repository as inventory
from ztsim.inventory.models import Device, Sim
from ztsim.sealing import Sealer
from ztsim.web import own_onboarding
from ztsim.web.own_onboarding import OpenOrder

SHOWN_EVENTS = 200  # the newest; the API's /events pages through all of them
_OWN_LIMIT = 1000  # the API's bound on a person's SIMs and devices (routes_events)

# The event log has no automatic expiry today: said as it is.
RETENTION = (
    "Events are kept until the organisation deletes them: no automatic expiry is "
    "configured. The live session table keeps a session while it lasts and its end after."
)

_ROLE_WORDS = {
    Role.ADMIN: "administrators",
    Role.OPERATOR: "SIM operators",
    Role.ANALYST: "security analysts",
    Role.AUDITOR: "auditors",
}


@dataclass(frozen=True, slots=True)
class Record:
    person: Identity
    sims: list[Sim]
    devices: list[Device]
    events: list[Event]
    privacy: str
    retention: str
    readers: list[str]
    onboarding: OpenOrder | None  # an eSIM order whose code can still be used


def readers() -> list[str]:
    """Who in the org, besides the person, may read the events about them."""
    return [words for role, words in _ROLE_WORDS.items() if Permission.EVENTS_READ in GRANTS[role]]


def read(conn: Connection, principal: Principal, sealer: Sealer, now: datetime) -> Record:
    """The record of the principal's own identity; a `self` principal only."""
    me = principal.own_identity
    if me is None:
        raise Forbidden("the employee page is for a self sign-in")
    org = principal.org_id
    person = identities.get_identity(conn, org, me)
    sims, _ = inventory.list_sims(conn, org, inventory.SimFilter(identity_id=me), limit=_OWN_LIMIT)
    devices, _ = inventory.list_devices(conn, org, owner_id=me, limit=_OWN_LIMIT)
    subjects = [subject_of("identity", me)]
    subjects += [subject_of("sim", s.iccid) for s in sims]
    subjects += [subject_of("device", d.id) for d in devices]
    found, _ = events.query(conn, org, events.EventQuery(subjects_in=subjects), limit=SHOWN_EVENTS)
    settings, _ = dns.get_settings(conn, org)
    logging = DnsLogging(DnsLogMode(settings.privacy.value), settings.pseudonymise)
    return Record(
        person,
        sims,
        devices,
        found,
        dns_privacy_paragraph(logging),
        RETENTION,
        readers(),
        own_onboarding.open_order(conn, sealer, principal, now),
    )
