"""What the AAA hot path keeps and hands on: counters, the replay cache, the sink for
records, accounting replies waiting for their records to be durable, the rows of the
events table, and the fixed parts of every Access-Accept."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from ztsim.db.jsontext import json_text
from ztsim.events.schema import NewEvent, Outcome
from ztsim.policy.reference import Decision as PolicyDecision
from ztsim.radius.aaa.engine import Reason
from ztsim.radius.uli import find_location, location_summary
from ztsim.sessions.allocator import PoolEntry
from ztsim.sessions.table import Session

# RFC 5080 §2.2.2: answer a retransmission with the cached reply for a while.
REPLAY_SECONDS = 30.0
REPLAY_ENTRIES = 65536
# Past the bound, entries go a sixteenth at a time: at thousands of replies a second the
# cache is always full, and expiring one entry per reply cost more than the rest of it.
_REPLAY_HIGH = REPLAY_ENTRIES + REPLAY_ENTRIES // 16
DEFAULT_SESSION_TIMEOUT = 86400


@dataclass
class Counters:
    received: int = 0
    answered: int = 0
    unknown_client: int = 0
    malformed: int = 0
    bad_authenticator: int = 0
    unexpected_code: int = 0
    # Access-Requests left unanswered while their pool waits for a block: the gateway's
    # retransmission is answered once the block is in.
    no_address_yet: int = 0
    duplicates: int = 0
    accepts: int = 0
    rejects: int = 0
    accounting: int = 0
    acct_without_session: int = 0
    # Accounting-Requests left unanswered (nothing recorded) while too many replies
    # wait for their records to be committed: the gateway retransmits them later.
    acct_deferred: int = 0
    # Status-Server health checks answered (RFC 5997), on either port; also in `answered`.
    status_server: int = 0

    @property
    def dropped(self) -> int:
        return (
            self.unknown_client
            + self.malformed
            + self.bad_authenticator
            + self.unexpected_code
            + self.no_address_yet
            + self.acct_deferred
        )

    def as_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "dropped": self.dropped}


# An access decision as the hot path leaves it, for the writer to turn into its events
# (`access_events`, `AccessRows`) off the hot path: org id, gateway id, subject,
# accepted, reason (its text), IMSI, APN, IMEI, UE address, time, and the request's
# octets when they may carry 3GPP-User-Location-Info (else None): the writer reads the
# location from them (`location_of`), so the hot path only looks for its marker. Bytes
# are not tracked by the cyclic GC either. A plain tuple of
# strings, None, a bool and a datetime on purpose: the cyclic GC stops tracking such a
# tuple at its first collection, so records waiting for the writer do not pile up in the
# old generation. A NamedTuple (or a Reason member inside) stays tracked, and the full
# collections that followed stalled the hot path for about 100 ms every few tens of
# thousands of requests, scanning the whole heap.
AccessRecord = tuple[
    str, str, str, bool, str, str | None, str | None, str | None, str | None, datetime, bytes | None
]

# The risk event that goes with a decision, by the decision's reason text.
_RISK_KIND: dict[str, str] = {
    Reason.CLONE_SUSPECTED.value: "risk.clone",
    Reason.IMEI_MISMATCH.value: "risk.device_swap",
}


@functools.lru_cache(maxsize=65536)
def _location(value: bytes) -> str | None:
    # A UE attaches from few cells: each value is decoded, and its JSON made, once.
    summary = location_summary(value)
    return None if summary is None else json_text(summary)


def location_of(request: bytes | None) -> str | None:
    """The `location` of an access event, as JSON text (see `uli.location_summary`), from
    the request's octets; None when they carry no location that decodes."""
    if request is None:
        return None
    value = find_location(request)
    return None if value is None else _location(value)


def _access_payload(record: AccessRecord) -> dict[str, Any]:
    _, gateway_id, _, _, _, imsi, apn, imei, address, _, request = record
    payload: dict[str, Any] = {
        "gateway_id": gateway_id,
        "imsi": imsi,
        "apn": apn,
        "imei": imei,
    }
    if address is not None:
        payload["ue_address"] = address
    location = location_of(request)
    if location is not None:
        payload["location"] = json.loads(location)
    return payload


def access_events(record: AccessRecord) -> list[NewEvent]:
    """The decision event, and a risk event for a cloned SIM or a swapped device."""
    org_id, gateway_id, subject, accepted, reason, *_ = record
    payload = _access_payload(record)
    actor = f"gateway:{gateway_id}"
    outcome = Outcome.SUCCESS if accepted else Outcome.DENIED
    events = [NewEvent(org_id, "radius.access", actor, subject, outcome, reason, payload)]
    risk = _RISK_KIND.get(reason)
    if risk is not None:
        events.append(NewEvent(org_id, risk, actor, subject, Outcome.DENIED, reason, payload))
    return events


def policy_denial_event(record: AccessRecord, policy: PolicyDecision) -> NewEvent:
    """The decision event of a request the org's attach rules refused, with the rule that
    did (None: the fail-closed default) and the reason codes (`rule:<name>`,
    `posture:<check>:<status>`, `sim:swap-recent`, ...). Rare enough to be an event
    object rather than an `AccessRecord` row: it carries more than a record holds."""
    org_id, gateway_id, subject, _, reason, *_ = record
    payload = _access_payload(record)
    payload["policy_rule"] = policy.rule
    payload["policy_reasons"] = list(policy.reasons)
    actor = f"gateway:{gateway_id}"
    return NewEvent(org_id, "radius.access", actor, subject, Outcome.DENIED, reason, payload)


class Sink(Protocol):
    """Where the hot path leaves records for the background writer.

    `generation`: the number of the batch that records left now go into. Once the
    writer has committed batch g, every record left before `generation` was read as g
    is durable (the writer takes a batch and moves to the next number in one step).
    """

    generation: int

    def access(self, record: AccessRecord) -> None: ...
    def event(self, event: NewEvent, when: datetime) -> None: ...
    # `accounting.session_event(session, kind)` at `when`, made into a row by the writer.
    def session_event(self, session: Session, kind: str, when: datetime) -> None: ...
    def session(self, session: Session) -> None: ...
    def lease(self, pool: PoolEntry, imsi: str, address: str, when: datetime) -> None: ...
    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None: ...


@dataclass(frozen=True)
class ReplySettings:
    dns_primary: str | None = None
    dns_secondary: str | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT


# A tuple, as `Session` is: one is made per Accounting-Request, and a frozen dataclass's
# __init__ sets each field through object.__setattr__ (0.6 us against 0.24 here).
class AfterCommit(NamedTuple):
    """An Accounting-Response to send once the writer has committed batch `generation`
    (RFC 2866 §2: the server answers only once it has recorded the request), or once its
    request is in the accounting journal (`AaaCore.journaled`), unless `until_commit`:
    it gave a session its UE address, which the other planes learn from the commit, and
    the gateway is answered only once they can (its first DNS query is answered)."""

    peer: tuple[str, int]
    reply: bytes
    generation: int
    key: tuple[object, ...] = ()
    until_commit: bool = False


class Awaiting:
    """Accounting replies waiting for their records' commit, oldest first, by request key
    (a retransmission of one of them is not handled again: its reply is on its way)."""

    def __init__(self) -> None:
        self._replies: OrderedDict[tuple[object, ...], AfterCommit] = OrderedDict()

    def __len__(self) -> int:
        return len(self._replies)

    def __contains__(self, key: tuple[object, ...]) -> bool:
        return key in self._replies

    def add(self, key: tuple[object, ...], after: AfterCommit) -> None:
        self._replies[key] = after

    def take(self, key: tuple[object, ...]) -> AfterCommit | None:
        return self._replies.pop(key, None)

    def committed(self, generation: int) -> list[tuple[tuple[object, ...], AfterCommit]]:
        """Take the replies whose batch (or an earlier one) is committed: generations only
        grow in the order replies are added, so they come off the front."""
        replies = self._replies
        done = []
        while replies:
            key = next(iter(replies))
            if replies[key].generation > generation:
                break
            done.append(replies.popitem(last=False))
        return done


class ReplayCache:
    """The replies sent, by request, for `REPLAY_SECONDS`: a retransmission gets the same
    reply (RFC 5080 §2.2.2). An Access-Accept is kept under its IMSI too, so that a change
    to the SIM or its holder (`forget`) drops it: a retransmission after a suspend is
    decided again, not accepted from the cache."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: OrderedDict[tuple[object, ...], tuple[float, bytes, str | None]] = (
            OrderedDict()
        )
        self._by_imsi: dict[str, list[tuple[object, ...]]] = {}
        # When the first entry was stored: nothing to expire before it is too old.
        self._oldest = 0.0

    def get(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or self._monotonic() - entry[0] > REPLAY_SECONDS:
            return None
        return entry[1]

    def put(self, key: tuple[object, ...], reply: bytes, imsi: str | None = None) -> None:
        now = self._monotonic()
        entries = self._entries
        if not entries:
            self._oldest = now
        entries[key] = (now, reply, imsi)
        if imsi is not None:
            self._by_imsi.setdefault(imsi, []).append(key)
        if len(entries) > _REPLAY_HIGH or now - self._oldest > REPLAY_SECONDS:
            self._expire(now)

    def forget(self, imsis: Iterable[str]) -> int:
        """Drop the replies kept under these IMSIs; how many."""
        dropped = 0
        for imsi in imsis:
            for key in self._by_imsi.pop(imsi, ()):
                dropped += self._entries.pop(key, None) is not None
        return dropped

    def forget_all(self) -> int:
        """Drop every reply kept under an IMSI (the whole snapshot was replaced)."""
        return self.forget(list(self._by_imsi))

    def _expire(self, now: float) -> None:
        entries = self._entries
        take = entries.popitem
        while entries:
            key, entry = take(last=False)
            stamp, _, imsi = entry
            if len(entries) < REPLAY_ENTRIES and now - stamp <= REPLAY_SECONDS:
                entries[key] = entry  # the oldest to keep: back in front
                entries.move_to_end(key, last=False)
                self._oldest = stamp
                break
            if imsi is not None:
                self._unindex(imsi, key)

    def _unindex(self, imsi: str, key: tuple[object, ...]) -> None:
        keys = self._by_imsi.get(imsi)
        if keys is None:
            return
        if key in keys:
            keys.remove(key)
        if not keys:
            del self._by_imsi[imsi]


# -- rows of the events table -------------------------------------------------------------

# The column order of an event row.
EVENT_COLUMNS = ("org_id", "time", "kind", "actor", "subject", "outcome", "reason", "payload")
EventRow = tuple[str, object, str, str, str, str, str, object]

_OUTCOME_TEXT = {o: o.value for o in Outcome}


def sqlite_time(when: datetime) -> str:
    """The text SQLAlchemy's DATETIME binds on SQLite ("%Y-%m-%d %H:%M:%S.%f") for the
    naive UTC time that UtcDateTime stores; isoformat of a UTC time is that plus "+00:00"."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(" ", "microseconds")[:26]


_escape: Callable[[str], str] = json.encoder.encode_basestring_ascii  # as json.dumps does


# Gateways are few; the bound only matters if ids churn.
_GATEWAY_MEMO = 4096


class AccessRows:
    """`event_row` of each of `access_events(record)`, built straight from the record: one
    per decision is most of the AAA's writing, and this skips the objects in between.
    One per writer: it remembers the text of the last time (decisions of one received
    batch share it) and each gateway's fixed parts."""

    def __init__(self, *, sqlite: bool) -> None:
        self._sqlite = sqlite
        self._last_when: datetime | None = None
        self._last_time: object = None
        # gateway id -> (actor, the payload up to the IMSI's value)
        self._gateways: dict[str, tuple[str, str]] = {}

    def __call__(self, record: AccessRecord) -> list[EventRow]:
        org_id, gateway_id, subject, accepted, reason, imsi, apn, imei, address, when, request = (
            record
        )
        if when is not self._last_when:
            self._last_when = when
            self._last_time = sqlite_time(when) if self._sqlite else when
        fixed = self._gateways.get(gateway_id)
        if fixed is None:
            if len(self._gateways) >= _GATEWAY_MEMO:
                self._gateways.clear()
            fixed = (f"gateway:{gateway_id}", '{"gateway_id": ' + _escape(gateway_id))
            self._gateways[gateway_id] = fixed
        actor, head = fixed
        payload = (
            f'{head}, "imsi": {"null" if imsi is None else _escape(imsi)}'
            f', "apn": {"null" if apn is None else _escape(apn)}'
            f', "imei": {"null" if imei is None else _escape(imei)}'
            + ("" if address is None else ', "ue_address": ' + _escape(address))
        )
        location = location_of(request)
        payload += "}" if location is None else ', "location": ' + location + "}"
        row: EventRow = (
            org_id,
            self._last_time,
            "radius.access",
            actor,
            subject,
            "success" if accepted else "denied",
            reason,
            payload,
        )
        risk = _RISK_KIND.get(reason)
        if risk is None:
            return [row]
        return [
            row,
            (org_id, self._last_time, risk, actor, subject, "denied", reason, payload),
        ]


def event_row(event: NewEvent, when: datetime, *, sqlite: bool) -> EventRow:
    """An event as the driver takes it (the text forms SQLAlchemy's types would bind):
    the time as text on SQLite, the payload as JSON text."""
    return stored_event_row(event, sqlite_time(when) if sqlite else when)


def stored_event_row(event: NewEvent, stored_time: object) -> EventRow:
    """`event_row` with its time already in the driver's form."""
    return (
        event.org_id,
        stored_time,
        event.kind,
        event.actor,
        event.subject,
        _OUTCOME_TEXT[event.outcome],
        event.reason,
        json_text(event.payload),
    )
