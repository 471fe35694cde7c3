"""Accounting-Request handling (RFC 2866, TS 29.061 §16.4.3): the session table from
Start, Interim-Update and Stop; Accounting-On/Off end a gateway's sessions.

A mixin of `AaaCore`: it reads the core's snapshot and address allocator and writes the
core's session index and sink. Every operation is idempotent, so duplicates change nothing.

Start and Interim-Update make a session only for a SIM of the gateway's own org, and only
with the address ztsim leased to it (or none): anything else is answered but recorded as
refused (`radius.accounting_refused`, and `risk.clone` when the SIM is the org's own), so a
gateway can neither claim another org's UE address for the DNS gateway nor pull another
org's device data (the IMEI of its last attach) into its own sessions and events.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Protocol

from ztsim.clock import Clock
from ztsim.db.jsontext import json_text
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.radius.aaa.engine import (
    AccessRequest,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    attach_of,
    make_request,
)
from ztsim.radius.aaa.traffic import Counters, EventRow, Sink
from ztsim.radius.datatypes import Value
from ztsim.radius.uli import UserLocationInfo
from ztsim.radius.values import AcctStatusType, RatType
from ztsim.sessions.allocator import Ipam
from ztsim.sessions.table import Session, SessionIndex

# Why an Accounting-Request for a SIM of the gateway's own org was refused: its
# Framed-IP-Address is not the SIM's lease (or it has none).
NOT_LEASED = "address_not_leased"
SESSION_STARTED = "radius.session_started"
SESSION_STOPPED = "radius.session_stopped"
_SUCCESS = Outcome.SUCCESS.value


class AttributeValues(Protocol):
    """The first value of each attribute by name: `DecodedAttributes`, or the values
    `fastpath.scan_accounting` read."""

    def get(self, name: str, /) -> Value | None: ...


def _request(attrs: AttributeValues) -> AccessRequest:
    # As `engine.access_request` reads an Access-Request.
    return make_request(
        attrs.get("3GPP-IMSI"),
        attrs.get("User-Name"),
        attrs.get("3GPP-IMEISV"),
        attrs.get("Called-Station-Id"),
    )


def location_json(value: object) -> dict[str, Any] | None:
    if not isinstance(value, UserLocationInfo):
        return None
    parts = [{"kind": type(p).__name__, **dataclasses.asdict(p)} for p in value.locations]
    kind = value.location_type
    return {"type": getattr(kind, "name", str(kind)), "parts": parts, "raw": value.raw.hex()}


def _rat_name(value: object) -> str | None:
    if isinstance(value, RatType):
        return value.name
    return str(value) if isinstance(value, int) else None


class AccountingMixin:
    # Provided by AaaCore.
    snapshot: Snapshot
    sessions: SessionIndex
    ipam: Ipam
    sink: Sink
    clock: Clock
    counters: Counters
    accepted: dict[str, str]  # see `AaaCore.accepted`

    def _accounting(
        self,
        gateway: GatewayEntry,
        nas: str,
        attrs: AttributeValues,
        now: datetime | None = None,
    ) -> bool:
        """Records the request; whether it gave a session a UE address it did not have (the
        other planes are to know it before the gateway is answered)."""
        if now is None:
            now = self.clock()
        status = attrs.get("Acct-Status-Type")
        if status in (AcctStatusType.ACCOUNTING_ON, AcctStatusType.ACCOUNTING_OFF):
            cause = "accounting_on" if status == AcctStatusType.ACCOUNTING_ON else "accounting_off"
            self._stop_keys(self.sessions.stop_where(gateway_id=gateway.id), now, cause)
            return False
        session_id = attrs.get("Acct-Session-Id")
        if not isinstance(session_id, str) or not session_id:
            # Answered (RFC 2866 §4.1 asks for a response once recorded) but unusable.
            self.counters.acct_without_session += 1
            return False
        key = (gateway.id, session_id)
        if status == AcctStatusType.STOP:
            # TS 29.061 §16.4.7.2: Session-Stop-Indicator says the whole PDP/IP session
            # ended; without it only this accounting session (one bearer) ended.
            self._stop_keys([key], now, "stop")
            if attrs.get("3GPP-Session-Stop-Indicator") is not None:
                imsi = _request(attrs).imsi
                if imsi is not None:
                    rest = self.sessions.stop_where(gateway_id=gateway.id, imsi=imsi)
                    self._stop_keys(rest, now, "stop")
            return False
        if status not in (AcctStatusType.START, AcctStatusType.INTERIM_UPDATE):
            return False
        request = _request(attrs)
        ue = attrs.get("Framed-IP-Address")
        sim = self.snapshot.sims.get(request.imsi) if request.imsi else None
        if sim is None or sim.org_id != gateway.org_id:
            # Another org's SIM is, for this gateway, no SIM at all (as in `decide`): the
            # same answer and event as for an unknown IMSI, so neither leaks.
            reason = Reason.IMSI_MISSING if request.imsi is None else Reason.UNKNOWN_IMSI
            self._refused(gateway, session_id, request.imsi, ue, reason.value, None, now)
            return False
        if ue is not None and str(ue) != self._leased(sim):
            # An address ztsim did not lease to this SIM: a clone signal, not a session.
            self._refused(gateway, session_id, sim.imsi, ue, NOT_LEASED, sim, now, request.imei)
            return False
        if request.imei is None or request.apn is None:
            # Accounting may leave out 3GPP-IMEISV or the APN: the accepted attach has them.
            attach = self.accepted.get(sim.imsi)
            if attach is not None:
                imei, apn = attach_of(attach)
                request = request._replace(imei=request.imei or imei, apn=request.apn or apn)
        before = self.sessions.ue_address(key)
        started = self.sessions.upsert(
            Session(
                org_id=gateway.org_id,
                gateway_id=gateway.id,
                acct_session_id=session_id,
                nas_address=nas,
                imsi=sim.imsi,
                iccid=sim.iccid,
                identity_id=sim.identity_id,
                device_id=sim.device_id if sim.device_id and ":" not in sim.device_id else None,
                imei=request.imei,
                ue_address=str(ue) if ue is not None else None,
                apn=request.apn,
                rat=_rat_name(attrs.get("3GPP-RAT-Type")),
                location=location_json(attrs.get("3GPP-User-Location-Info")),
                started_at=now,
                updated_at=now,
            )
        )
        if started is None:
            return False
        self.sink.session(started)
        if started.started_at == now and status == AcctStatusType.START:
            self._session_event(started, SESSION_STARTED, now)
        return started.ue_address is not None and before != started.ue_address

    def _leased(self, sim: SimEntry) -> str | None:
        pool = self.snapshot.pools.get(sim.org_id)
        return None if pool is None else self.ipam.lookup(pool, sim.imsi)

    def _refused(
        self,
        gateway: GatewayEntry,
        session_id: str,
        imsi: str | None,
        ue: object,
        reason: str,
        sim: SimEntry | None,
        now: datetime,
        imei: str | None = None,
    ) -> None:
        """Answered (RFC 2866 §4.1: the request was received) but recorded as refused, in
        the gateway's org; with a risk event when it is the SIM's own org. Only what the
        gateway sent goes in, never anything the SIM's record or last attach holds."""
        payload: dict[str, Any] = {
            "gateway_id": gateway.id,
            "acct_session_id": session_id,
            "imsi": imsi,
            "ue_address": None if ue is None else str(ue),
        }
        if sim is not None:
            payload["imei"] = imei
        subject = subject_of("sim", sim.iccid) if sim else subject_of("imsi", imsi or "-")
        actor = f"gateway:{gateway.id}"
        kinds = ["radius.accounting_refused"] + (["risk.clone"] if sim is not None else [])
        for kind in kinds:
            self.sink.event(
                NewEvent(gateway.org_id, kind, actor, subject, Outcome.DENIED, reason, payload),
                now,
            )

    def _stop_keys(self, keys: list[tuple[str, str]], now: datetime, cause: str) -> None:
        for key in keys:
            stopped = self.sessions.stop(key, now, cause)
            if stopped is not None:
                self.sink.session(stopped)
                self._session_event(stopped, SESSION_STOPPED, now)

    def _session_event(self, s: Session, kind: str, now: datetime) -> None:
        # The session as it is, not its event: the writer's thread makes the row.
        self.sink.session_event(s, kind, now)


def _parts(s: Session) -> tuple[str, str, str, dict[str, Any]]:
    """A session event's actor (the gateway), subject, reason and payload."""
    subject = subject_of("sim", s.iccid) if s.iccid else subject_of("imsi", s.imsi or "-")
    payload = {
        "acct_session_id": s.acct_session_id,
        "ue_address": s.ue_address,
        "imsi": s.imsi,
        "imei": s.imei,
        "identity_id": s.identity_id,
    }
    return f"gateway:{s.gateway_id}", subject, s.stop_cause or "", payload


def session_event(s: Session, kind: str) -> NewEvent:
    """A session's start or end (`SESSION_STARTED`, `SESSION_STOPPED`) as an event, in the
    gateway's name; an end's reason is its stop cause (stop, accounting_off, disconnected)."""
    actor, subject, reason, payload = _parts(s)
    return NewEvent(s.org_id, kind, actor, subject, reason=reason, payload=payload)


def session_event_row(s: Session, kind: str, stored_time: object) -> EventRow:
    """`session_event` as the driver takes it (`traffic.stored_event_row`), without the
    event object: one is made per Start and per Stop."""
    actor, subject, reason, payload = _parts(s)
    return (s.org_id, stored_time, kind, actor, subject, _SUCCESS, reason, json_text(payload))
