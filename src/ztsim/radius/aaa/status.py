"""Status-Server (RFC 5997): a gateway asks whether its AAA server is alive, sans I/O.

Packet gateways health-check their AAA servers with it and fail over to another when it
goes unanswered, so it is answered from memory on both ports, whatever the database is
doing: an Access-Accept on the authentication port, an Accounting-Response on the
accounting port. It reads nothing but the packet's authenticators, and writes no event,
session or lease, and no accounting record (so its Accounting-Response waits for no
commit). Its checks are the ones every request gets: a registered client, a packet the
codec decodes, and authenticators that verify; else it is silently discarded and counted
with the other drops. A retransmission gets the reply already sent (RFC 5080 §2.2.2).

A mixin of `AaaCore`, as `AccountingMixin` is: the core dispatches code 12 here from its
general paths only, so the Access-Request and Accounting-Request hot paths do no extra
work for it (the C scanner passes any code through; the core checks it).
"""

from __future__ import annotations

from ztsim.radius.aaa.engine import GatewayEntry, Snapshot
from ztsim.radius.aaa.traffic import Counters, ReplayCache
from ztsim.radius.auth import verify_request
from ztsim.radius.codes import Code
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError
from ztsim.radius.packet import Packet
from ztsim.radius.reply import encode_reply, make_reply
from ztsim.radius.secret import SharedSecret

# RFC 5997 §3: the code, in the first octet of the datagram.
STATUS_SERVER = int(Code.STATUS_SERVER)
STATUS_SERVER_OCTET = bytes((STATUS_SERVER,))


def status_reply(request: Packet, code: Code, secret: SharedSecret) -> bytes:
    """The signed answer to a verified Status-Server: `code` is the port's reply (RFC 5997
    §3: Access-Accept on the authentication port, Accounting-Response on the accounting
    port), with a Message-Authenticator first, computed over the request's authenticator
    as for any reply (RFC 3579 §3.2), on both ports (the table of RFC 5997 §5 allows it in
    either; FreeRADIUS's radclient checks it). No other attribute: the answer says
    "alive", nothing about the server (the table's Reply-Message is optional)."""
    return encode_reply(make_reply(request, code), request, secret, add_message_authenticator=True)


class StatusMixin:
    # Provided by AaaCore.
    snapshot: Snapshot
    counters: Counters
    replay: ReplayCache

    def _status(
        self, datagram: bytes, peer: tuple[str, int], gateway: GatewayEntry, code: Code
    ) -> bytes | None:
        """The reply (`code`) to a Status-Server from `gateway`, already counted as
        received; None (counted) when it is to be discarded."""
        try:
            request = Packet.decode(datagram)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        # The reply code in the key: one cache serves both ports, and the answers differ.
        key = (peer, request.identifier, request.authenticator, code)
        cached = self.replay.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return cached
        try:
            # RFC 5997 §3: without a valid Message-Authenticator, silently discarded
            # (`verify_request` requires one on Status-Server, whatever the gateway's setting).
            verify_request(request, gateway.secret)
        except RadiusAuthError:
            self.counters.bad_authenticator += 1
            return None
        reply = status_reply(request, code, gateway.secret)
        self.replay.put(key, reply)
        self.counters.answered += 1
        self.counters.status_server += 1
        return reply

    def _status_on_acct(self, datagram: bytes, peer: tuple[str, int]) -> bytes | None:
        """A Status-Server on the accounting port: counted as received there, then as on
        the authentication port, answered with an Accounting-Response."""
        self.counters.received += 1
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            self.counters.unknown_client += 1
            return None
        return self._status(datagram, peer, gateway, Code.ACCOUNTING_RESPONSE)
