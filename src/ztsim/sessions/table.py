"""The in-memory index of live sessions, kept by the AAA process from accounting.

Sessions are keyed by (gateway, Acct-Session-Id) (RFC 2866 §5.5: unique per NAS).
Every operation is idempotent, so a retransmitted or duplicated Accounting-Request
changes nothing, and each returns what changed so the caller can persist it.
"""

from __future__ import annotations

import functools
import marshal
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

SessionKey = tuple[str, str]  # (gateway id, Acct-Session-Id)


# A tuple, not a frozen dataclass: one or two are made per Accounting-Request, and a
# frozen dataclass's __init__ sets each of its 17 fields through object.__setattr__
# (3.4 us against 0.5 here).
class Session(NamedTuple):
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


# Inside the index a live session is `marshal`'s bytes of its fields up to `updated_at`
# (times as microseconds since the epoch), keyed by a string: the index's dicts hold
# strings and bytes only, which the cyclic garbage collector never tracks, so its full
# collections no longer walk the live sessions. Kept as `Session`s, with their
# locations' dicts and a set per IMSI, a million of them made each full collection take
# 0.8 to 1.9 s here, holding the GIL: no AAA answer meanwhile. (Tuples of strings are
# untracked too, but only once a collection has seen them, and a dict is tracked again
# as soon as a tracked value goes in: each full collection then still visited every
# entry, 0.2 s a million.) Only the index reads what it marshals.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# A key: the gateway's id (ztsim's own, never a NUL), a NUL, the Acct-Session-Id.
_SEPARATOR = "\x00"
_IMSI: Final = 4
_IMEI: Final = 8
_UE_ADDRESS: Final = 9
_APN: Final = 10
_RAT: Final = 11
_LOCATION: Final = 12
_STARTED_AT: Final = 13
_UPDATED_AT: Final = 14


# The sessions of a batch of accounting share their time: its conversions are remembered.
@functools.lru_cache(maxsize=1024)
def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


@functools.lru_cache(maxsize=1024)
def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _key(key: SessionKey) -> str:
    return key[0] + _SEPARATOR + key[1]


def _session_key(key: str) -> SessionKey:
    gateway_id, _, acct_session_id = key.partition(_SEPARATOR)
    return (gateway_id, acct_session_id)


def _fields(s: Session) -> tuple[Any, ...]:
    return (*s[:_STARTED_AT], _micros(s.started_at), _micros(s.updated_at))


def _load(row: bytes) -> tuple[Any, ...]:
    # Only bytes `_store` made in this process: marshal's format is not for anything read
    # from outside (a file, the network).
    fields: tuple[Any, ...] = marshal.loads(row)  # noqa: S302
    return fields


def _store(fields: tuple[Any, ...]) -> bytes:
    return marshal.dumps(fields)


def _session(
    fields: tuple[Any, ...], stopped_at: datetime | None = None, stop_cause: str | None = None
) -> Session:
    (org_id, gateway_id, acct_session_id, nas_address, imsi, iccid, identity_id, device_id,
     imei, ue_address, apn, rat, location, started_us, updated_us) = fields  # fmt: skip
    return Session(
        org_id, gateway_id, acct_session_id, nas_address, imsi, iccid, identity_id,
        device_id, imei, ue_address, apn, rat, location,
        _time(started_us), _time(updated_us),
        stopped_at, stop_cause,
    )  # fmt: skip


class SessionIndex:
    """Live sessions by key, by IMSI and by gateway: no operation of the accounting path
    walks every live session (an AAA process may hold a million). Sessions go in and come
    out as `Session`s (their times in UTC); the index holds them out of the garbage
    collector's sight."""

    def __init__(self, sessions: Iterable[Session] = ()) -> None:
        self._live: dict[str, bytes] = {}
        # An IMSI's one key (the usual case); the keys of an IMSI with several, and of a
        # gateway, as a dict's (a dict of strings is untracked, a set never is). A
        # misbehaving gateway may give one IMSI thousands: each add and remove is O(1).
        self._by_imsi: dict[str, str] = {}
        self._imsi_keys: dict[str, dict[str, None]] = {}
        self._by_gateway: dict[str, dict[str, None]] = {}
        for session in sessions:
            if session.live:
                self._add(_key(session.key), _fields(session))

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Session]:
        return iter([_session(_load(row)) for row in self._live.values()])

    def _fields_of(self, key: str) -> tuple[Any, ...] | None:
        row = self._live.get(key)
        return None if row is None else _load(row)

    def get(self, key: SessionKey) -> Session | None:
        fields = self._fields_of(_key(key))
        return None if fields is None else _session(fields)

    def ue_address(self, key: SessionKey) -> str | None:
        """The live session's UE address; None without one, or without such a session."""
        fields = self._fields_of(_key(key))
        return None if fields is None else fields[_UE_ADDRESS]

    def _keys_of(self, imsi: str) -> Iterable[str]:
        one = self._by_imsi.get(imsi)
        if one is not None:
            return (one,)
        return list(self._imsi_keys.get(imsi, ()))

    def for_imsi(self, imsi: str) -> list[Session]:
        return [_session(_load(self._live[k])) for k in self._keys_of(imsi)]

    def live_imeis(self, imsi: str) -> set[str]:
        if imsi not in self._by_imsi and imsi not in self._imsi_keys:
            # Every Access-Request asks; most IMSIs have no live session.
            return set()
        imeis = (_load(self._live[k])[_IMEI] for k in self._keys_of(imsi))
        return {imei for imei in imeis if imei is not None}

    def _add(self, key: str, fields: tuple[Any, ...]) -> None:
        self._live[key] = _store(fields)
        imsi = fields[_IMSI]
        if imsi is not None:
            many = self._imsi_keys.get(imsi)
            one = self._by_imsi.get(imsi)
            if many is not None:
                many[key] = None
            elif one is None:
                self._by_imsi[imsi] = key
            elif one != key:
                del self._by_imsi[imsi]
                self._imsi_keys[imsi] = {one: None, key: None}
        gateway_id = fields[1]
        gateway = self._by_gateway.get(gateway_id)
        if gateway is None:
            gateway = self._by_gateway[gateway_id] = {}
        gateway[key] = None

    def _remove(self, key: str) -> tuple[Any, ...] | None:
        row = self._live.pop(key, None)
        if row is None:
            return None
        fields = _load(row)
        imsi = fields[_IMSI]
        if imsi is not None:
            if self._by_imsi.get(imsi) == key:
                del self._by_imsi[imsi]
            elif (many := self._imsi_keys.get(imsi)) is not None:
                many.pop(key, None)
                if len(many) <= 1:
                    del self._imsi_keys[imsi]
                    for last in many:
                        self._by_imsi[imsi] = last
        gateway_id = fields[1]
        gateway = self._by_gateway.get(gateway_id)
        if gateway is not None:
            gateway.pop(key, None)
            if not gateway:
                del self._by_gateway[gateway_id]
        return fields

    def upsert(self, session: Session) -> Session | None:
        """Start or update a live session; returns the stored session, or None when the
        request repeats what is already known (a duplicate changes nothing)."""
        key = _key(session.key)
        current = self._fields_of(key)
        if current is None:
            self._add(key, _fields(session))
            return session
        updated_at = _micros(session.updated_at)
        merged = (
            *current[:_IMEI],
            session.imei or current[_IMEI],
            session.ue_address or current[_UE_ADDRESS],
            current[_APN],
            session.rat or current[_RAT],
            session.location or current[_LOCATION],
            current[_STARTED_AT],
            max(current[_UPDATED_AT], updated_at),
        )
        if merged == current:
            return None
        self._live[key] = _store(merged)  # the same key, IMSI and gateway
        return _session(merged)

    def stop(self, key: SessionKey, when: datetime, cause: str) -> Session | None:
        """End one session; None if it was not live (a repeated Stop changes nothing)."""
        fields = self._remove(_key(key))
        return None if fields is None else _session(fields, when, cause)

    def stop_where(self, *, gateway_id: str, imsi: str | None = None) -> list[SessionKey]:
        """Keys of the live sessions of a gateway (Accounting-On/Off), or of one IMSI at
        it (a Stop with 3GPP-Session-Stop-Indicator)."""
        if imsi is None:
            return [_session_key(k) for k in self._by_gateway.get(gateway_id, ())]
        keys = (_session_key(k) for k in self._keys_of(imsi))
        return [k for k in keys if k[0] == gateway_id]
