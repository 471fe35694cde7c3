"""The in-memory index of live sessions, kept by the AAA process from accounting.

Sessions are keyed by (gateway, Acct-Session-Id) (RFC 2866 §5.5: unique per NAS).
Every operation is idempotent, so a retransmitted or duplicated Accounting-Request
changes nothing, and each returns what changed so the caller can persist it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

SessionKey = tuple[str, str]  # (gateway id, Acct-Session-Id)


@dataclass(frozen=True, slots=True)
class Session:
    org_id: str
    gateway_id: str
    acct_session_id: str
    nas_address: str
    imsi: str | None
    iccid: str | None
    identity_id: str | None
    device_id: str | None
    imei: str | None
    ue_address: str | None
    apn: str | None
    rat: str | None
    location: dict[str, Any] | None
    started_at: datetime
    updated_at: datetime
    stopped_at: datetime | None = None
    stop_cause: str | None = None

    @property
    def key(self) -> SessionKey:
        return (self.gateway_id, self.acct_session_id)

    @property
    def live(self) -> bool:
        return self.stopped_at is None


class SessionIndex:
    """Live sessions by key, by IMSI and by gateway: no operation of the accounting path
    walks every live session (an AAA process may hold a million)."""

    def __init__(self, sessions: Iterable[Session] = ()) -> None:
        self._live: dict[SessionKey, Session] = {}
        self._by_imsi: dict[str, set[SessionKey]] = {}
        self._by_gateway: dict[str, set[SessionKey]] = {}
        for session in sessions:
            if session.live:
                self._add(session)

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._live.values()))

    def get(self, key: SessionKey) -> Session | None:
        return self._live.get(key)

    def for_imsi(self, imsi: str) -> list[Session]:
        return [self._live[k] for k in self._by_imsi.get(imsi, ())]

    def live_imeis(self, imsi: str) -> set[str]:
        keys = self._by_imsi.get(imsi)
        if not keys:
            # Every Access-Request asks; most IMSIs have no live session.
            return set()
        return {s.imei for s in self.for_imsi(imsi) if s.imei is not None}

    def _add(self, session: Session) -> None:
        self._live[session.key] = session
        if session.imsi is not None:
            self._by_imsi.setdefault(session.imsi, set()).add(session.key)
        self._by_gateway.setdefault(session.gateway_id, set()).add(session.key)

    def _remove(self, key: SessionKey) -> Session | None:
        session = self._live.pop(key, None)
        if session is None:
            return None
        if session.imsi is not None:
            _discard(self._by_imsi, session.imsi, key)
        _discard(self._by_gateway, session.gateway_id, key)
        return session

    def upsert(self, session: Session) -> Session | None:
        """Start or update a live session; returns the stored session, or None when the
        request repeats what is already known (a duplicate changes nothing)."""
        current = self._live.get(session.key)
        if current is not None:
            merged = replace(
                current,
                ue_address=session.ue_address or current.ue_address,
                rat=session.rat or current.rat,
                location=session.location or current.location,
                imei=session.imei or current.imei,
                updated_at=max(current.updated_at, session.updated_at),
            )
            if merged == current:
                return None
            if current.imsi != merged.imsi:
                self._remove(current.key)
            self._add(merged)
            return merged
        self._add(session)
        return session

    def stop(self, key: SessionKey, when: datetime, cause: str) -> Session | None:
        """End one session; None if it was not live (a repeated Stop changes nothing)."""
        s = self._remove(key)
        if s is None:
            return None
        # Not `dataclasses.replace`, which reads the fields anew each call: 3 µs a Stop.
        return Session(
            s.org_id,
            s.gateway_id,
            s.acct_session_id,
            s.nas_address,
            s.imsi,
            s.iccid,
            s.identity_id,
            s.device_id,
            s.imei,
            s.ue_address,
            s.apn,
            s.rat,
            s.location,
            s.started_at,
            s.updated_at,
            when,
            cause,
        )

    def stop_where(self, *, gateway_id: str, imsi: str | None = None) -> list[SessionKey]:
        """Keys of the live sessions of a gateway (Accounting-On/Off), or of one IMSI at
        it (a Stop with 3GPP-Session-Stop-Indicator)."""
        if imsi is None:
            return list(self._by_gateway.get(gateway_id, ()))
        return [k for k in self._by_imsi.get(imsi, ()) if k[0] == gateway_id]


def _discard(index: dict[str, set[SessionKey]], value: str, key: SessionKey) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]
