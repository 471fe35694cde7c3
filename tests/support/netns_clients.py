"""A packet gateway's traffic from inside its namespace: RADIUS requests from the
gateway's address, DNS queries from its UE addresses, and a Disconnect-Request
(RFC 5176) listener. Plain blocking sockets made in the namespace (`entered`), built
and read with ztsim's own codecs; each request is matched to its reply by identifier.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.radius import (
    AcctStatusType,
    Attribute,
    Code,
    Packet,
    RadiusAuthError,
    RadiusDecodeError,
    RatType,
    SharedSecret,
    decode_attributes,
    encode_reply,
    make_attribute,
    make_reply,
    sign_request,
    verify_reply,
    verify_request,
)
from ztsim.radius.auth import hide_password

from support.netns_hosts import udp_socket_in

REFUSED = 5
NOERROR = 0
NO_ANSWER = -1
RADIUS_AUTH, RADIUS_ACCT, COA_PORT = 1812, 1813, 3799


# -- DNS ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsReply:
    rcode: int  # NO_ANSWER: nothing in time
    addresses: tuple[str, ...] = ()


def dns_query(name: str, query_id: int) -> bytes:
    return Message(query_id, Flag.RD, questions=(Question(name, 1),)).to_wire()


def dns_reply(data: bytes) -> tuple[int, DnsReply] | None:
    """(query id, reply) of a response datagram; None if it is not one."""
    try:
        message = decode_message(data)
    except DnsDecodeError:
        return None
    found = tuple(
        str(ipaddress.IPv4Address(rr.rdata))
        for rr in message.answers
        if rr.rtype == 1 and len(rr.rdata) == 4
    )
    return message.id, DnsReply(message.rcode, found)


def ask(ns: str, source: str, server: str, name: str, *, timeout: float = 1.0) -> DnsReply:
    """One UDP query to `server`:53 from `source` (an address the namespace owns)."""
    with udp_socket_in(ns, (source, 0)) as sock:
        query_id = int.from_bytes(os.urandom(2), "big")
        sock.settimeout(timeout)
        sock.sendto(dns_query(name, query_id), (server, 53))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            parsed = dns_reply(data)
            if parsed is not None and parsed[0] == query_id:
                return parsed[1]
    return DnsReply(NO_ANSWER)


# -- RADIUS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sim:
    imsi: str
    imeisv: str
    apn: str


def access_request(sim: Sim, nas: str, secret: SharedSecret, ident: int) -> Packet:
    """An Access-Request as a PGW sends on bearer set-up (TS 29.061 §16.4.7), with a
    Message-Authenticator (required per gateway, RFC 3579)."""
    authenticator = os.urandom(16)
    attributes = (
        *_sim_attributes(sim, nas),
        Attribute(2, hide_password(b"ztsim-sim", secret, authenticator)),
    )
    packet = Packet(Code.ACCESS_REQUEST, ident, authenticator, attributes)
    return sign_request(packet, secret, add_message_authenticator=True)


def accounting_request(
    sim: Sim,
    nas: str,
    secret: SharedSecret,
    ident: int,
    status: AcctStatusType,
    session_id: str,
    ue: str | None,
) -> Packet:
    attrs = [
        make_attribute("Acct-Status-Type", status),
        make_attribute("Acct-Session-Id", session_id),
        *_sim_attributes(sim, nas),
    ]
    if ue is not None:
        attrs.append(make_attribute("Framed-IP-Address", ue))
    return sign_request(Packet(Code.ACCOUNTING_REQUEST, ident, bytes(16), tuple(attrs)), secret)


def _sim_attributes(sim: Sim, nas: str) -> list[Attribute]:
    return [
        make_attribute("User-Name", sim.imsi),
        make_attribute("Called-Station-Id", sim.apn),
        make_attribute("NAS-IP-Address", nas),
        make_attribute("3GPP-IMSI", sim.imsi),
        make_attribute("3GPP-IMEISV", sim.imeisv),
        make_attribute("3GPP-RAT-Type", RatType.EUTRAN),
    ]


@dataclass(frozen=True, slots=True)
class AccessResult:
    code: Code | None  # None: no answer
    address: str | None = None

    @property
    def accepted(self) -> bool:
        return self.code == Code.ACCESS_ACCEPT


class RadiusPeer:
    """The packet gateway's RADIUS client: requests from `address` in namespace `ns`."""

    def __init__(self, ns: str, address: str, secret: str) -> None:
        self.ns = ns
        self.address = address
        self.secret = SharedSecret(secret)
        self._ident = 0
        self._lock = threading.Lock()

    def _next_ident(self) -> int:
        with self._lock:
            self._ident = (self._ident + 1) % 256
            return self._ident

    def exchange(
        self, build: Packet, server: tuple[str, int], *, timeout: float = 1.0, tries: int = 3
    ) -> Packet | None:
        with udp_socket_in(self.ns, (self.address, 0)) as sock:
            wire = build.encode()
            for _ in range(tries):
                sock.sendto(wire, server)
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    try:
                        data = sock.recv(4096)
                    except TimeoutError:
                        break
                    with contextlib.suppress(RadiusDecodeError, RadiusAuthError):
                        reply = Packet.decode(data)
                        if reply.identifier == build.identifier:
                            verify_reply(reply, build, self.secret)
                            return reply
        return None

    def access(
        self, server: str, sim: Sim, *, timeout: float = 1.0, tries: int = 3
    ) -> AccessResult:
        request = access_request(sim, self.address, self.secret, self._next_ident())
        reply = self.exchange(request, (server, RADIUS_AUTH), timeout=timeout, tries=tries)
        if reply is None:
            return AccessResult(None)
        address = decode_attributes(reply).get("Framed-IP-Address")
        return AccessResult(Code(reply.code), None if address is None else str(address))

    def accounting(
        self,
        server: str,
        sim: Sim,
        status: AcctStatusType,
        session_id: str,
        ue: str | None,
        *,
        timeout: float = 1.0,
        tries: int = 3,
    ) -> bool:
        """True once the Accounting-Response came (the records are then durable)."""
        request = accounting_request(
            sim, self.address, self.secret, self._next_ident(), status, session_id, ue
        )
        reply = self.exchange(request, (server, RADIUS_ACCT), timeout=timeout, tries=tries)
        return reply is not None and reply.code == Code.ACCOUNTING_RESPONSE


# -- Disconnect-Request listener (RFC 5176) -------------------------------------------------


class CoaReply(Enum):
    ACK = "ack"
    NAK = "nak"
    SILENT = "silent"  # a gateway that never answers


@dataclass(frozen=True, slots=True)
class Disconnect:
    at: float  # time.time() on arrival
    user_name: str | None
    address: str | None
    session_id: str | None
    sender: str


@dataclass
class CoaListener:
    """Receives Disconnect-Requests at the gateway's address, records each and answers
    as `reply` says. Runs on a thread of its own until `close`."""

    ns: str
    address: str
    secret: str
    reply: CoaReply = CoaReply.ACK
    port: int = COA_PORT
    received: list[Disconnect] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> CoaListener:
        self._sock = udp_socket_in(self.ns, (self.address, self.port))
        self._sock.settimeout(0.2)  # how soon `close` is noticed
        self._thread = threading.Thread(target=self._run, name="coa-listener", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if sock is not None:
            sock.close()

    def wait_for(self, predicate: object, timeout: float) -> Disconnect | None:
        """The first recorded Disconnect-Request for which `predicate(d)` holds."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for d in self.received:
                    if predicate(d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def _run(self) -> None:
        secret = SharedSecret(self.secret)
        while (sock := self._sock) is not None:
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.time()
            try:
                request = Packet.decode(data)
                verify_request(request, secret)
            except (RadiusDecodeError, RadiusAuthError):
                continue
            if request.code != Code.DISCONNECT_REQUEST:
                continue
            attrs = decode_attributes(request)
            name, ue, sid = (
                attrs.get("User-Name"),
                attrs.get("Framed-IP-Address"),
                attrs.get("Acct-Session-Id"),
            )
            with self._cond:
                self.received.append(
                    Disconnect(
                        at,
                        None if name is None else str(name),
                        None if ue is None else str(ue),
                        None if sid is None else str(sid),
                        str(peer[0]),
                    )
                )
                self._cond.notify_all()
            if self.reply is CoaReply.SILENT:
                continue
            code = Code.DISCONNECT_ACK if self.reply is CoaReply.ACK else Code.DISCONNECT_NAK
            answer = encode_reply(
                make_reply(request, code), request, secret, add_message_authenticator=True
            )
            with contextlib.suppress(OSError):
                sock.sendto(answer, peer)
