"""Accounting-Request handling (RFC 2866, TS 29.061 §16.4.3): the session table from
Start, Interim-Update and Stop; Accounting-On/Off end a gateway's sessions.

A mixin of `AaaCore`: it reads the core's snapshot and writes the core's session
index and sink. Every operation is idempotent, so duplicates change nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ztsim.clock import Clock
from ztsim.events.schema import NewEvent, subject_of
from ztsim.radius.aaa.engine import AccessRequest, GatewayEntry, Snapshot, access_request
from ztsim.radius.aaa.traffic import Counters, Sink
from ztsim.radius.dictionary import DecodedAttributes
from ztsim.radius.uli import UserLocationInfo
from ztsim.radius.values import AcctStatusType, RatType
from ztsim.sessions.table import Session, SessionIndex


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
    sink: Sink
    clock: Clock
    counters: Counters
    accepted: dict[str, AccessRequest]

    def _accounting(self, gateway: GatewayEntry, nas: str, attrs: DecodedAttributes) -> None:
        now = self.clock()
        status = attrs.get("Acct-Status-Type")
        if status in (AcctStatusType.ACCOUNTING_ON, AcctStatusType.ACCOUNTING_OFF):
            cause = "accounting_on" if status == AcctStatusType.ACCOUNTING_ON else "accounting_off"
            self._stop_keys(self.sessions.stop_where(gateway_id=gateway.id), now, cause)
            return
        session_id = attrs.get("Acct-Session-Id")
        if not isinstance(session_id, str) or not session_id:
            # Answered (RFC 2866 §4.1 asks for a response once recorded) but unusable.
            self.counters.acct_without_session += 1
            return
        key = (gateway.id, session_id)
        if status == AcctStatusType.STOP:
            # TS 29.061 §16.4.7.2: Session-Stop-Indicator says the whole PDP/IP session
            # ended; without it only this accounting session (one bearer) ended.
            self._stop_keys([key], now, "stop")
            if attrs.get("3GPP-Session-Stop-Indicator") is not None:
                imsi = access_request(attrs).imsi
                if imsi is not None:
                    rest = self.sessions.stop_where(gateway_id=gateway.id, imsi=imsi)
                    self._stop_keys(rest, now, "stop")
            return
        if status not in (AcctStatusType.START, AcctStatusType.INTERIM_UPDATE):
            return
        request = access_request(attrs)
        if request.imsi is not None and (request.imei is None or request.apn is None):
            # Accounting may leave out 3GPP-IMEISV or the APN: the accepted attach has them.
            attach = self.accepted.get(request.imsi)
            if attach is not None:
                request = request._replace(
                    imei=request.imei or attach.imei, apn=request.apn or attach.apn
                )
        sim = self.snapshot.sims.get(request.imsi) if request.imsi else None
        if sim is not None and sim.org_id != gateway.org_id:
            sim = None
        ue = attrs.get("Framed-IP-Address")
        started = self.sessions.upsert(
            Session(
                org_id=gateway.org_id,
                gateway_id=gateway.id,
                acct_session_id=session_id,
                nas_address=nas,
                imsi=request.imsi,
                iccid=sim.iccid if sim else None,
                identity_id=sim.identity_id if sim else None,
                device_id=sim.device_id
                if sim and sim.device_id and ":" not in sim.device_id
                else None,
                imei=request.imei,
                ue_address=str(ue) if ue is not None else None,
                apn=request.apn,
                rat=_rat_name(attrs.get("3GPP-RAT-Type")),
                location=location_json(attrs.get("3GPP-User-Location-Info")),
                started_at=now,
                updated_at=now,
            )
        )
        if started is not None:
            self.sink.session(started)
            if started.started_at == now and status == AcctStatusType.START:
                self._session_event(started, "radius.session_started", now)

    def _stop_keys(self, keys: list[tuple[str, str]], now: datetime, cause: str) -> None:
        for key in keys:
            stopped = self.sessions.stop(key, now, cause)
            if stopped is not None:
                self.sink.session(stopped)
                self._session_event(stopped, "radius.session_stopped", now)

    def _session_event(self, s: Session, kind: str, now: datetime) -> None:
        subject = subject_of("sim", s.iccid) if s.iccid else subject_of("imsi", s.imsi or "-")
        self.sink.event(
            NewEvent(
                s.org_id,
                kind,
                f"gateway:{s.gateway_id}",
                subject,
                reason=s.stop_cause or "",
                payload={
                    "acct_session_id": s.acct_session_id,
                    "ue_address": s.ue_address,
                    "imsi": s.imsi,
                    "imei": s.imei,
                    "identity_id": s.identity_id,
                },
            ),
            now,
        )
