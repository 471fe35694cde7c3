"""The AAA server's datagram handling: bytes and a peer in, a reply (or silence) out.

`AaaCore` holds what the hot path reads (the snapshot, the live sessions, the IPAM
cache) and never touches the database itself, except to claim a new address block
when one runs dry: records (decision events, sessions, leases, first-attach
bindings) go to a `Sink` that a background writer flushes in batches. `RadiusServer`
is the thin asyncio adapter. Bad input of any kind is dropped and counted
(RFC 2865 §3: silently discard), never raised to the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from ztsim.clock import Clock, utc_now
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.radius.attrtypes import AttributeType
from ztsim.radius.auth import verify_request
from ztsim.radius.builders import (
    ipv4_dns_servers,
    reply_messages,
    session_timeout,
)
from ztsim.radius.codes import Code
from ztsim.radius.dictionary import DecodedAttributes, decode_attributes
from ztsim.radius.engine import (
    MESSAGES,
    AccessRequest,
    Decision,
    GatewayEntry,
    PoolEntry,
    Reason,
    Snapshot,
    access_request,
    decide,
    make_request,
)
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError
from ztsim.radius.fastpath import encode_access_reply, message_authenticator_ok, read_access
from ztsim.radius.packet import Attribute, Packet
from ztsim.radius.reply import encode_reply, make_reply
from ztsim.radius.uli import UserLocationInfo
from ztsim.radius.values import AcctStatusType, RatType
from ztsim.sessions.ipam import Ipam
from ztsim.sessions.table import Session, SessionIndex

log = logging.getLogger("ztsim.radius.server")

# RFC 5080 §2.2.2: answer a retransmission with the cached reply for a while.
REPLAY_SECONDS = 30.0
REPLAY_ENTRIES = 65536
DEFAULT_SESSION_TIMEOUT = 86400


@dataclass
class Counters:
    received: int = 0
    answered: int = 0
    unknown_client: int = 0
    malformed: int = 0
    bad_authenticator: int = 0
    unexpected_code: int = 0
    duplicates: int = 0
    accepts: int = 0
    rejects: int = 0
    accounting: int = 0

    @property
    def dropped(self) -> int:
        return self.unknown_client + self.malformed + self.bad_authenticator + self.unexpected_code

    def as_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "dropped": self.dropped}


class Sink(Protocol):
    """Where the hot path leaves records for the background writer."""

    def event(self, event: NewEvent, when: datetime) -> None: ...
    def session(self, session: Session) -> None: ...
    def lease(self, pool: PoolEntry, imsi: str, address: str, when: datetime) -> None: ...
    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None: ...


@dataclass(frozen=True)
class ReplySettings:
    dns_primary: str | None = None
    dns_secondary: str | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT


class ReplayCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or self._monotonic() - entry[0] > REPLAY_SECONDS:
            return None
        return entry[1]

    def put(self, key: tuple[object, ...], reply: bytes) -> None:
        now = self._monotonic()
        self._entries[key] = (now, reply)
        while self._entries:
            oldest_key, (stamp, _) = next(iter(self._entries.items()))
            if len(self._entries) <= REPLAY_ENTRIES and now - stamp <= REPLAY_SECONDS:
                break
            del self._entries[oldest_key]


def location_json(value: object) -> dict[str, Any] | None:
    if not isinstance(value, UserLocationInfo):
        return None
    parts = [{"kind": type(p).__name__, **dataclasses.asdict(p)} for p in value.locations]
    kind = value.location_type
    return {"type": getattr(kind, "name", str(kind)), "parts": parts, "raw": value.raw.hex()}


@functools.lru_cache(maxsize=65536)
def _framed(address: str) -> bytes:
    # Framed-IP-Address (RFC 2865 §5.8): type 8, length 6, the address.
    return bytes((AttributeType.FRAMED_IP_ADDRESS, 6)) + socket.inet_aton(address)


@functools.cache
def _reject_attributes(reason: Reason) -> bytes:
    return b"".join(a.encode() for a in reply_messages(MESSAGES[reason]))


def _rat_name(value: object) -> str | None:
    if isinstance(value, RatType):
        return value.name
    return str(value) if isinstance(value, int) else None


@dataclass
class AaaCore:
    snapshot: Snapshot
    sessions: SessionIndex
    ipam: Ipam
    sink: Sink
    claim_block: Callable[[PoolEntry], int]
    reply_settings: ReplySettings = field(default_factory=ReplySettings)
    clock: Clock = utc_now
    counters: Counters = field(default_factory=Counters)
    replay: ReplayCache = field(default_factory=ReplayCache)
    # Called when a pool runs low, so the next block is claimed off the hot path.
    on_low_pool: Callable[[PoolEntry], None] = lambda _pool: None
    _accept_tail: bytes = field(init=False, repr=False, default=b"")

    def __post_init__(self) -> None:
        settings = self.reply_settings
        tail: list[Attribute] = []
        if settings.dns_primary:
            tail.extend(ipv4_dns_servers(settings.dns_primary, settings.dns_secondary))
        tail.append(session_timeout(settings.session_timeout))
        self._accept_tail = b"".join(a.encode() for a in tail)

    # -- common front: client, decoding, retransmissions, authenticators -------------------

    def _front(
        self, datagram: bytes, peer: tuple[str, int], expected: Code
    ) -> tuple[GatewayEntry, Packet, tuple[object, ...]] | bytes | None:
        self.counters.received += 1
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            self.counters.unknown_client += 1
            return None
        try:
            packet = Packet.decode(datagram)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        if packet.code is not expected:
            self.counters.unexpected_code += 1
            return None
        key = (peer, packet.identifier, packet.authenticator)
        cached = self.replay.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return cached
        try:
            verify_request(
                packet,
                gateway.secret,
                require_message_authenticator=(
                    expected is Code.ACCESS_REQUEST and gateway.require_message_authenticator
                ),
            )
        except RadiusAuthError:
            self.counters.bad_authenticator += 1
            return None
        return gateway, packet, key

    def handle_auth(self, datagram: bytes, peer: tuple[str, int]) -> bytes | None:
        # The hot path: one decode, one HMAC to check, one HMAC and one MD5 to sign.
        self.counters.received += 1
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            self.counters.unknown_client += 1
            return None
        try:
            packet = Packet.decode(datagram)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        if packet.code is not Code.ACCESS_REQUEST:
            self.counters.unexpected_code += 1
            return None
        key = (peer, packet.identifier, packet.authenticator)
        cached = self.replay.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return cached
        secret = gateway.secret.reveal()
        if not message_authenticator_ok(
            datagram, packet, secret, required=gateway.require_message_authenticator
        ):
            self.counters.bad_authenticator += 1
            return None
        raw = read_access(packet.attributes)
        request = make_request(raw.imsi, raw.user_name, raw.imeisv, raw.apn)
        code, attributes = self._access(gateway, request)
        reply = encode_access_reply(code, packet, attributes, raw.proxy_states, secret)
        self.replay.put(key, reply)
        self.counters.answered += 1
        return reply

    def handle_acct(self, datagram: bytes, peer: tuple[str, int]) -> bytes | None:
        front = self._front(datagram, peer, Code.ACCOUNTING_REQUEST)
        if not isinstance(front, tuple):
            return front
        gateway, packet, key = front
        try:
            attributes = decode_attributes(packet)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        self.counters.accounting += 1
        self._accounting(gateway, peer[0], attributes)
        reply = encode_reply(make_reply(packet, Code.ACCOUNTING_RESPONSE), packet, gateway.secret)
        self.replay.put(key, reply)
        self.counters.answered += 1
        return reply

    # -- Access-Request ---------------------------------------------------------------------

    def _address(self, org_id: str, imsi: str) -> tuple[PoolEntry, str, bool] | None:
        pool = self.snapshot.pools.get(org_id)
        if pool is None:
            return None
        got = self.ipam.allocate(pool, imsi)
        if got is None and self.claim_block(pool):
            got = self.ipam.allocate(pool, imsi)
        if got is None:
            return None
        if got[1] and self.ipam.free_count(pool) < 32:
            self.on_low_pool(pool)
        return pool, got[0], got[1]

    def _access(self, gateway: GatewayEntry, request: AccessRequest) -> tuple[int, bytes]:
        """The reply code and attribute octets for one request; records the decision."""
        now = self.clock()
        live = self.sessions.live_imeis(request.imsi) if request.imsi else ()
        decision = decide(self.snapshot, gateway, request, live)
        address = None
        sim = decision.sim
        if decision.accepted and sim is not None:
            got = self._address(gateway.org_id, sim.imsi)
            if got is None:
                decision = Decision(Reason.NO_ADDRESS, sim)
            else:
                pool, address, new = got
                if new:
                    self.sink.lease(pool, sim.imsi, address, now)
        if decision.bind_imei is not None and sim is not None:
            self._bind_now(sim.iccid, sim.imsi, decision.bind_imei)
            self.sink.bind(sim.org_id, sim.iccid, decision.bind_imei, now)
        self._record(gateway, request.imsi, request.imei, request.apn, decision, address, now)
        if decision.accepted and address is not None:
            self.counters.accepts += 1
            return Code.ACCESS_ACCEPT, _framed(address) + self._accept_tail
        self.counters.rejects += 1
        return Code.ACCESS_REJECT, _reject_attributes(decision.reason)

    def _bind_now(self, iccid: str, imsi: str, imei: str) -> None:
        # The binding is written in the background; until then this pending device stands
        # for it, so a second device attaching meanwhile is already refused.
        pending = f"pending:{imei}"
        sim = self.snapshot.sims[imsi]
        self.snapshot = replace(
            self.snapshot,
            sims={**self.snapshot.sims, imsi: replace(sim, device_id=pending)},
            device_imeis={**self.snapshot.device_imeis, pending: imei},
        )

    def _record(
        self,
        gateway: GatewayEntry,
        imsi: str | None,
        imei: str | None,
        apn: str | None,
        decision: Decision,
        address: str | None,
        now: datetime,
    ) -> None:
        sim = decision.sim
        subject = subject_of("sim", sim.iccid) if sim else subject_of("imsi", imsi or "-")
        payload: dict[str, Any] = {"gateway_id": gateway.id, "imsi": imsi, "apn": apn, "imei": imei}
        if address is not None:
            payload["ue_address"] = address
        self.sink.event(
            NewEvent(
                gateway.org_id,
                "radius.access",
                f"gateway:{gateway.id}",
                subject,
                Outcome.SUCCESS if decision.accepted else Outcome.DENIED,
                decision.reason.value,
                payload,
            ),
            now,
        )
        if decision.risk:
            kind = "risk.clone" if decision.reason is Reason.CLONE_SUSPECTED else "risk.device_swap"
            self.sink.event(
                NewEvent(
                    gateway.org_id,
                    kind,
                    f"gateway:{gateway.id}",
                    subject,
                    Outcome.DENIED,
                    decision.reason.value,
                    payload,
                ),
                now,
            )

    # -- Accounting-Request ---------------------------------------------------------------

    def _accounting(self, gateway: GatewayEntry, nas: str, attrs: DecodedAttributes) -> None:
        now = self.clock()
        status = attrs.get("Acct-Status-Type")
        if status in (AcctStatusType.ACCOUNTING_ON, AcctStatusType.ACCOUNTING_OFF):
            cause = "accounting_on" if status == AcctStatusType.ACCOUNTING_ON else "accounting_off"
            self._stop_keys(self.sessions.stop_where(gateway_id=gateway.id), now, cause)
            return
        session_id = attrs.get("Acct-Session-Id")
        if not isinstance(session_id, str) or not session_id:
            self.counters.malformed += 1
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


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, tuple[str, int]], bytes | None]) -> None:
        self.handle = handle
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        try:
            reply = self.handle(data, (str(addr[0]), int(addr[1])))
        except Exception:
            # A bug must not stop the server: the request is dropped and logged.
            log.exception("unexpected error while handling a RADIUS datagram")
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


@dataclass
class RadiusServer:
    auth: asyncio.DatagramTransport
    acct: asyncio.DatagramTransport

    @property
    def auth_port(self) -> int:
        return int(self.auth.get_extra_info("sockname")[1])

    @property
    def acct_port(self) -> int:
        return int(self.acct.get_extra_info("sockname")[1])

    def close(self) -> None:
        self.auth.close()
        self.acct.close()


async def start_server(core: AaaCore, host: str, auth_port: int, acct_port: int) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port)."""
    loop = asyncio.get_running_loop()
    auth, _ = await loop.create_datagram_endpoint(
        lambda: _Endpoint(core.handle_auth), local_addr=(host, auth_port)
    )
    acct, _ = await loop.create_datagram_endpoint(
        lambda: _Endpoint(core.handle_acct), local_addr=(host, acct_port)
    )
    return RadiusServer(auth, acct)
