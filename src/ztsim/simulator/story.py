"""The demo's story, told from what the platform recorded: who was phished and by which
domain, which device beaconed to a command-and-control domain, which SIM was cloned and
which was stolen, how each was caught, what ztsim did, and what it let through.

Pure: the events (items of `GET /api/v1/events`) and the directory they point into
(identities, SIMs, devices, DNS rules) in, a `Story` out. Nothing is taken from the
scenario or the demo world: change what the devices do and the story changes with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Event = Mapping[str, Any]

# The DNS categories whose blocks the story names (ztsim.dns.policy.rules.Category values).
PHISHING = "phishing"
COMMAND_AND_CONTROL = "command-and-control"

# How a clone was caught, by the event that caught it (ztsim.radius.aaa, ztsim.udm).
TWIN_SESSION = "twin_session"
UNLEASED_ADDRESS = "unleased_address"
DEVICE_LOCK = "device_lock"
SQN_AHEAD = "sqn_ahead"
SQN_BACKWARDS = "sqn_backwards"
SIGNAL_WORDS: Mapping[str, str] = {
    TWIN_SESSION: "twin session (the SIM was already live on another device)",
    UNLEASED_ADDRESS: "accounting from an address not leased to the SIM",
    DEVICE_LOCK: "the device lock (the IMEI is not the one the SIM is bound to)",
    SQN_AHEAD: "SQN anomaly (the USIM reported an SQN beyond any the network issued)",
    SQN_BACKWARDS: "SQN anomaly (a resync moved the sequence number back)",
}
# The access and accounting reasons of ztsim.radius.aaa, as signals.
_RISK_REASONS = {
    "clone_suspected": TWIN_SESSION,
    "address_not_leased": UNLEASED_ADDRESS,
    "imei_mismatch": DEVICE_LOCK,
}
_AKA_KINDS = {"aka.sqn_ahead": SQN_AHEAD, "aka.sqn_backwards": SQN_BACKWARDS}

# Every kind the story reads; the caller fetches these.
KINDS = (
    "dns.query",
    "risk.clone",
    "risk.device_swap",
    "sim.suspend",
    "radius.disconnect",
    "radius.session_started",
    "radius.access",
    *_AKA_KINDS,
)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    email: str | None
    kind: str  # "user" or "service"


@dataclass(frozen=True, slots=True)
class Directory:
    """What the events' subjects point to, as the API lists them."""

    people: Mapping[str, Person]  # by identity id
    sim_owners: Mapping[str, str | None]  # ICCID -> identity id
    sim_devices: Mapping[str, str | None]  # ICCID -> bound device id
    device_imeis: Mapping[str, str]  # device id -> IMEI
    rule_categories: Mapping[str, frozenset[str]]  # DNS rule name -> its categories


@dataclass(frozen=True, slots=True)
class Block:
    """One identity's blocked queries for one domain."""

    who: Person | None
    domain: str
    rule: str
    times: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A SIM refused because it came from a device other than its own."""

    iccid: str
    owner: Person | None
    reason: str  # the access decision's reason
    tried_imei: str | None  # the device that asked to attach
    bound_imei: str | None  # the device the SIM is bound to
    live_imeis: tuple[str, ...]  # devices the SIM had sessions on (the twin's)
    signals: tuple[str, ...]  # how it was caught: TWIN_SESSION, SQN_AHEAD...
    suspended_by: tuple[str, ...]  # "actor: reason" of each suspension
    disconnected: tuple[str, ...]  # UE addresses whose Disconnect-Request was acknowledged


@dataclass(frozen=True, slots=True)
class Allowed:
    attaches: int
    attaches_by_kind: Mapping[str, int]  # identity kind -> accepted attaches
    identities: int  # distinct identities let on
    live_sessions: int


@dataclass(frozen=True, slots=True)
class Story:
    phished: tuple[Block, ...]
    beacons: tuple[Block, ...]
    cloned: tuple[Refusal, ...]
    stolen: tuple[Refusal, ...]
    allowed: Allowed

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _id_of(subject: str, kind: str) -> str | None:
    prefix, _, ident = subject.partition(":")
    return ident if prefix == kind and ident else None


def _blocks(events: Iterable[Event], d: Directory, category: str) -> tuple[Block, ...]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        payload = e.get("payload") or {}
        rule = str(payload.get("rule", ""))
        if payload.get("action") != "blocked" or category not in d.rule_categories.get(
            rule, frozenset()
        ):
            continue
        counts[(str(e["subject"]), str(payload.get("name", "")), rule)] += 1
    return tuple(
        Block(d.people.get(_id_of(subject, "identity") or ""), domain, rule, times)
        for (subject, domain, rule), times in sorted(counts.items())
    )


def _refusals(
    risks: Iterable[Event], by_kind: Mapping[str, Sequence[Event]], d: Directory
) -> tuple[Refusal, ...]:
    found: dict[str, Refusal] = {}
    for e in risks:
        iccid = _id_of(str(e["subject"]), "sim")
        if iccid is None or iccid in found:
            continue
        subject = str(e["subject"])

        def about(kind: str, subject: str = subject) -> list[Event]:
            return [x for x in by_kind.get(kind, ()) if x["subject"] == subject]

        tried = (e.get("payload") or {}).get("imei")
        signals = [_RISK_REASONS[r] for r in (e.get("reason"),) if r in _RISK_REASONS]
        signals += [word for kind, word in _AKA_KINDS.items() if about(kind)]
        live = {
            str(s["payload"]["imei"])
            for s in about("radius.session_started")
            if (s.get("payload") or {}).get("imei") not in (None, tried)
        }
        owner = d.sim_owners.get(iccid)
        device = d.sim_devices.get(iccid)
        found[iccid] = Refusal(
            iccid=iccid,
            owner=d.people.get(owner) if owner else None,
            reason=str(e.get("reason", "")),
            tried_imei=None if tried is None else str(tried),
            bound_imei=d.device_imeis.get(device) if device else None,
            live_imeis=tuple(sorted(live)),
            signals=tuple(signals),
            suspended_by=tuple(f"{s['actor']}: {s['reason']}" for s in about("sim.suspend")),
            disconnected=tuple(
                str(x["payload"].get("ue_address"))
                for x in about("radius.disconnect")
                if x.get("outcome") == "success"
            ),
        )
    return tuple(found[k] for k in sorted(found))


def _allowed(by_kind: Mapping[str, Sequence[Event]], d: Directory, live: int) -> Allowed:
    accepted = [e for e in by_kind.get("radius.access", ()) if e.get("outcome") == "success"]
    kinds: Counter[str] = Counter()
    who: set[str] = set()
    for e in accepted:
        owner = d.sim_owners.get(_id_of(str(e["subject"]), "sim") or "")
        person = d.people.get(owner) if owner else None
        kinds[person.kind if person else "unknown"] += 1
        if owner:
            who.add(owner)
    return Allowed(len(accepted), dict(sorted(kinds.items())), len(who), live)


def tell(by_kind: Mapping[str, Sequence[Event]], directory: Directory, live_sessions: int) -> Story:
    """The story of a run: `by_kind` holds the events of each of `KINDS`."""
    queries = by_kind.get("dns.query", ())
    return Story(
        phished=_blocks(queries, directory, PHISHING),
        beacons=_blocks(queries, directory, COMMAND_AND_CONTROL),
        cloned=_refusals(by_kind.get("risk.clone", ()), by_kind, directory),
        stolen=_refusals(by_kind.get("risk.device_swap", ()), by_kind, directory),
        allowed=_allowed(by_kind, directory, live_sessions),
    )
