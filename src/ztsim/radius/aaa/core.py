"""The AAA server's datagram handling, sans I/O: datagrams and a time in, actions out.

The actions: a reply (the return value, or silence), a request for an address block
(`need_block`, when a pool runs low or dry) and records (decision events, sessions,
leases, first-attach bindings) left in a `Sink` for a background writer that flushes
them in batches. An Access-Accept or -Reject goes out at once; an Accounting-Response
only once the request's records are durable (RFC 2866 §2): `handle_acct` hands it back
as `AfterCommit` (the reply and the writer's batch it waits for), and the service sends
it when `committed` says that batch is in the database. Only then does it enter the
retransmission cache; a retransmission meanwhile is ignored (its reply is on its way),
and one after a lost process is handled again, which changes nothing twice (see
`accounting`). `AaaCore` holds what the hot path reads (the snapshot, the live
sessions, the address allocator) and never touches the database, not even when a pool
runs dry: that Access-Request goes unanswered, the service claims a block off the hot
path, and the gateway's retransmission (RFC 2865 §2.4) gets the address. A pool with no
block left to claim (`exhausted_pools`, set by the service) gets Access-Reject.
Rows re-read from the database (the change feed's refreshes) come in through `patch`
and `install`, under the first-attach bindings the core made in memory and the writer
has not yet committed (`pending_bindings`), so a refresh read before that commit cannot
undo a binding and let a second device in.
A Status-Server (RFC 5997) is answered on either port by `status`, from memory.
`ztsim.radius.serve.server` is the thin socket adapter; it and the service's tasks hold
the service's lock while they use the core. Bad input of any kind is dropped and
counted (RFC 2865 §3: silently discard), never raised to the caller.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from ipaddress import IPv4Address

from ztsim.clock import Clock, utc_now
from ztsim.events.schema import subject_of
from ztsim.radius.aaa.accounting import AccountingMixin, AttributeValues
from ztsim.radius.aaa.engine import (
    MESSAGES,
    AccessRequest,
    Decision,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    SnapshotPatch,
    attach_text,
    decide,
    make_request_from_text,
)
from ztsim.radius.aaa.status import STATUS_SERVER, STATUS_SERVER_OCTET, StatusMixin
from ztsim.radius.aaa.traffic import (
    AccessRecord,
    AfterCommit,
    Awaiting,
    Counters,
    ReplayCache,
    ReplySettings,
    Sink,
    policy_denial_event,
)
from ztsim.radius.attrtypes import AttributeType
from ztsim.radius.auth import verify_request
from ztsim.radius.builders import (
    ipv4_dns_servers,
    reply_messages,
    session_timeout,
)
from ztsim.radius.codes import Code
from ztsim.radius.dictionary import decode_attributes
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError
from ztsim.radius.fastpath import (
    encode_access_reply,
    message_authenticator_ok,
    scan_accounting,
    scan_request,
)
from ztsim.radius.packet import Attribute, Packet
from ztsim.radius.uli import may_carry_location
from ztsim.sessions.allocator import LOW_WATER, Ipam, PoolEntry
from ztsim.sessions.table import Session, SessionIndex

log = logging.getLogger("ztsim.radius.aaa.core")

_CODES = frozenset(int(c) for c in Code)

# Accounting replies waiting for their commit, at most. Past it (the database is down or
# far behind) a new Accounting-Request is left unanswered and nothing is recorded: the
# gateway keeps it and retransmits (RFC 2866 §2), so holding more here would only grow
# memory (each waits with its records, a few hundred bytes to a few KB) and the batch
# to retry. It is far above what gateways keep in flight (hundreds), so it only bites in
# an outage.
MAX_AWAITING = 20_000
_ACCESS_REQUEST = int(Code.ACCESS_REQUEST)


@functools.lru_cache(maxsize=65536)
def _framed(address: str) -> bytes:
    # Framed-IP-Address (RFC 2865 §5.8): type 8, length 6, the address.
    return bytes((AttributeType.FRAMED_IP_ADDRESS, 6)) + IPv4Address(address).packed


@functools.lru_cache(maxsize=65536)
def _subject(iccid: str) -> str:
    return subject_of("sim", iccid)


# A Reason member is an object the cyclic GC tracks; its text is a plain str.
_REASON_TEXT = {reason: reason.value for reason in Reason}


@functools.cache
def _reject_attributes(reason: Reason) -> bytes:
    return b"".join(a.encode() for a in reply_messages(MESSAGES[reason]))


_ZERO_AUTHENTICATOR = bytes(16)
_PROXY_STATE = int(AttributeType.PROXY_STATE)
_ACCOUNTING_RESPONSE = int(Code.ACCOUNTING_RESPONSE)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def accounting_response(request: Packet, secret: bytes) -> bytes:
    """The Accounting-Response to `request`: its Proxy-States echoed (RFC 2865 §5.33) and
    the Response Authenticator MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2866
    §3); the octets `encode_reply(make_reply(...))` gives, without its objects."""
    echoed = b"".join(a.encode() for a in request.attributes if a.type == _PROXY_STATE)
    return _accounting_response(request.identifier, request.authenticator, echoed, secret)


def _accounting_response(
    identifier: int, authenticator: bytes, echoed: bytes, secret: bytes
) -> bytes:
    head = bytes((_ACCOUNTING_RESPONSE, identifier)) + (20 + len(echoed)).to_bytes(2)
    return head + _md5(head + authenticator + echoed + secret) + echoed


# A live session no longer accepted: its gateway (to send the Disconnect-Request to), why,
# and the attach policy's reason codes when it was the policy (else none).
Revocation = tuple[Session, GatewayEntry, Reason, tuple[str, ...]]
# SIMs re-classified per call of `reclassify_due`: the lock is held for a few ms at most.
RECLASSIFY_BATCH = 2_000


@dataclass
class AaaCore(AccountingMixin, StatusMixin):
    snapshot: Snapshot
    sessions: SessionIndex
    ipam: Ipam
    sink: Sink
    reply_settings: ReplySettings = field(default_factory=ReplySettings)
    clock: Clock = utc_now
    counters: Counters = field(default_factory=Counters)
    replay: ReplayCache = field(default_factory=ReplayCache)
    # Called (on the hot path's thread) when a pool runs low or dry: its next block is
    # to be claimed off the hot path and handed to `ipam.add_block`.
    need_block: Callable[[PoolEntry], None] = lambda _pool: None
    # Ids of pools with no block left to claim, set by whoever claims: their SIMs without
    # an address are refused rather than left waiting for a block that cannot come.
    exhausted_pools: set[str] = field(default_factory=set)
    _accept_tail: bytes = field(init=False, repr=False, default=b"")
    # IMSI -> its last accepted Access-Request's IMEI and APN (`attach_text`), for
    # accounting without them.
    accepted: dict[str, str] = field(default_factory=dict)
    # Accounting replies handed out, not yet durable.
    awaiting: Awaiting = field(default_factory=Awaiting)
    # First-attach bindings made in memory, by IMSI: (ICCID, IMEI, the writer's batch that
    # carries it). Each is laid again over rows re-read before that batch was committed
    # (see `patch`), so a concurrent refresh cannot undo it and let a second device in.
    pending_bindings: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    # The newest writer batch known to be committed (-1: none yet). Whoever re-reads
    # rows notes it before the read (`patch`, `install`).
    committed_generation: int = -1
    # The newest writer batch with accounting the journal could not take (see
    # `may_journal`).
    unjournaled_generation: int = -1

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

    def handle_auth(
        self, datagram: bytes, peer: tuple[str, int], now: datetime | None = None
    ) -> bytes | None:
        """`now`: when the datagram was taken (the server reads the clock once per batch);
        the core's clock if not given."""
        # The hot path: one decode, one HMAC to check, one HMAC and one MD5 to sign.
        self.counters.received += 1
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            self.counters.unknown_client += 1
            return None
        try:
            request_raw = scan_request(datagram)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        if request_raw.code != _ACCESS_REQUEST:
            if request_raw.code == STATUS_SERVER:
                return self._status(datagram, peer, gateway, Code.ACCESS_ACCEPT)
            if request_raw.code in _CODES:
                self.counters.unexpected_code += 1
            else:
                self.counters.malformed += 1
            return None
        key = (peer, request_raw.identifier, request_raw.authenticator)
        cached = self.replay.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return cached
        secret = gateway.secret.reveal()
        if not message_authenticator_ok(
            datagram, request_raw, secret, required=gateway.require_message_authenticator
        ):
            self.counters.bad_authenticator += 1
            return None
        raw = request_raw.access
        request = make_request_from_text(raw.imsi, raw.user_name, raw.imeisv, raw.apn)
        # Kept for the writer only if it may hold a location: see `AccessRecord`.
        located = datagram if may_carry_location(datagram) else None
        answer = self._access(gateway, request, self.clock() if now is None else now, located)
        if answer is None:
            # Not cached: the retransmission is to be decided again, with the new block.
            return None
        code, attributes = answer
        reply = encode_access_reply(code, request_raw, attributes, secret)
        self.replay.put(key, reply, request.imsi)
        self.counters.answered += 1
        return reply

    def handle_acct(
        self, datagram: bytes, peer: tuple[str, int], now: datetime | None = None
    ) -> bytes | AfterCommit | None:
        """The reply to send now (a retransmission of a durable request), the reply to send
        once the writer's batch `generation` is committed, or silence. `now` as for
        `handle_auth`."""
        # The hot path: one pass over the octets for the values, one MD5 to check, one to
        # sign. Anything unusual (a fault, a Message-Authenticator) takes the general path,
        # which counts it where it always did.
        try:
            scanned = scan_accounting(datagram)
        except RadiusDecodeError:
            scanned = None
        if scanned is None:
            return self._handle_acct_general(datagram, peer, now)
        self.counters.received += 1
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            self.counters.unknown_client += 1
            return None
        key = (peer, scanned.identifier, scanned.authenticator)
        cached = self.replay.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return cached
        secret = gateway.secret.reveal()
        octets = datagram[: scanned.length]
        # RFC 2866 §3: the Request Authenticator, MD5 over the packet with 16 zero octets
        # in its place, then the secret.
        expected = _md5(octets[:4] + _ZERO_AUTHENTICATOR + octets[20:] + secret)
        if not hmac.compare_digest(expected, scanned.authenticator):
            self.counters.bad_authenticator += 1
            return None
        if not self._admit(key):
            return None
        self.counters.accounting += 1
        binds = self._accounting(gateway, peer[0], scanned.values, now)
        reply = _accounting_response(
            scanned.identifier, scanned.authenticator, scanned.proxy_states, secret
        )
        return self._await_commit(peer, key, reply, binds)

    def _handle_acct_general(
        self, datagram: bytes, peer: tuple[str, int], now: datetime | None
    ) -> bytes | AfterCommit | None:
        """`handle_acct` through the codec's packet and typed attributes."""
        if datagram[:1] == STATUS_SERVER_OCTET:
            return self._status_on_acct(datagram, peer)
        front = self._front(datagram, peer, Code.ACCOUNTING_REQUEST)
        if not isinstance(front, tuple):
            return front
        gateway, packet, key = front
        if not self._admit(key):
            return None
        try:
            attributes = decode_attributes(packet)
        except RadiusDecodeError:
            self.counters.malformed += 1
            return None
        self.counters.accounting += 1
        binds = self._accounting(gateway, peer[0], attributes, now)
        reply = accounting_response(packet, gateway.secret.reveal())
        return self._await_commit(peer, key, reply, binds)

    def _admit(self, key: tuple[object, ...]) -> bool:
        """Whether a checked Accounting-Request is to be handled: not while its reply waits
        for a commit (a retransmission), nor past the bound of waiting replies (the gateway
        retransmits it later)."""
        if key in self.awaiting:
            self.counters.duplicates += 1
            return False
        if len(self.awaiting) >= MAX_AWAITING:
            self.counters.acct_deferred += 1
            return False
        return True

    def _await_commit(
        self, peer: tuple[str, int], key: tuple[object, ...], reply: bytes, binds: bool
    ) -> AfterCommit:
        # Read after recording: the records are in this batch or an earlier one.
        after = AfterCommit(peer, reply, self.sink.generation, key, binds)
        self.awaiting.add(key, after)
        self.counters.answered += 1
        return after

    def may_journal(self) -> bool:
        """Whether requests may be answered once journaled: not before the requests the
        journal could not take are committed, so that no reply overtakes an earlier one
        (a Stop's Start) that a crash would lose."""
        return self.committed_generation >= self.unjournaled_generation

    def journaled(self, afters: list[AfterCommit]) -> list[AfterCommit]:
        """These replies' requests are in the accounting journal: durable, so theirs to
        send now (those a commit has not sent already), but for those that wait for the
        commit anyway (`AfterCommit.until_commit`); a retransmission gets them from the
        cache."""
        done = []
        for after in afters:
            if not after.until_commit and self.awaiting.take(after.key) is not None:
                self.replay.put(after.key, after.reply)
                done.append(after)
        return done

    def unjournaled(self, afters: list[AfterCommit]) -> None:
        """The journal could not take these requests: they, and those after them, wait for
        their commit."""
        for after in afters:
            self.unjournaled_generation = max(self.unjournaled_generation, after.generation)

    def replay_acct(self, datagram: bytes, peer: tuple[str, int], now: datetime) -> None:
        """Record again an Accounting-Request of the journal of a process that ended (it
        was checked and answered then): no authenticator check (the secret may have
        changed since), no reply, no cache; a request no longer understood is skipped."""
        gateway = self.snapshot.gateway_for(peer[0])
        if gateway is None:
            return  # the gateway is gone: so are its sessions' owners
        try:
            scanned = scan_accounting(datagram)
            attributes: AttributeValues = (
                decode_attributes(Packet.decode(datagram)) if scanned is None else scanned.values
            )
        except RadiusDecodeError:
            return
        self._accounting(gateway, peer[0], attributes, now)

    def committed(self, generation: int) -> list[AfterCommit]:
        """The writer has committed its batches up to `generation`: the replies that waited
        for them, to send now; from now on a retransmission gets them from the cache."""
        self.committed_generation = max(self.committed_generation, generation)
        done = []
        for key, after in self.awaiting.committed(generation):
            self.replay.put(key, after.reply)
            done.append(after)
        return done

    # -- Access-Request ---------------------------------------------------------------------

    def _access(
        self,
        gateway: GatewayEntry,
        request: AccessRequest,
        now: datetime,
        located: bytes | None = None,
    ) -> tuple[int, bytes] | None:
        """The reply code and attribute octets for one request, and its decision recorded;
        None (nothing recorded) when the SIM is to wait for its pool's next block."""
        live = self.sessions.live_imeis(request.imsi) if request.imsi else ()
        decision = decide(self.snapshot, gateway, request, live, now)
        address = None
        sim = decision.sim
        accepted = decision.accepted
        if accepted and sim is not None:
            pool = self.snapshot.pools.get(gateway.org_id)
            got = None if pool is None else self.ipam.allocate(pool, sim.imsi)
            if pool is not None and got is not None:
                address, new = got
                if new:
                    self.sink.lease(pool, sim.imsi, address, now)
                    if (
                        self.ipam.free_count(pool) < LOW_WATER
                        and pool.id not in self.exhausted_pools
                    ):
                        self.need_block(pool)
            elif pool is not None and pool.id not in self.exhausted_pools:
                self.need_block(pool)
                self.counters.no_address_yet += 1
                return None
            else:
                decision = Decision(Reason.NO_ADDRESS, sim)
                accepted = False
        if decision.bind_imei is not None and sim is not None:
            self.sink.bind(sim.org_id, sim.iccid, decision.bind_imei, now)
            self._bind_now(sim, decision.bind_imei)
        # The decision event, as a plain tuple (see `AccessRecord`) the writer turns into rows.
        record: AccessRecord = (
            gateway.org_id,
            gateway.id,
            _subject(sim.iccid) if sim else subject_of("imsi", request.imsi or "-"),
            accepted,
            _REASON_TEXT[decision.reason],
            request.imsi,
            request.apn,
            request.imei,
            address,
            now,
            located,
        )
        if decision.policy is None:
            self.sink.access(record)
        else:
            self.sink.event(policy_denial_event(record, decision.policy), now)
        if accepted and address is not None:
            self.counters.accepts += 1
            if request.imsi is not None:
                self.accepted[request.imsi] = attach_text(request)
            return Code.ACCESS_ACCEPT, _framed(address) + self._accept_tail
        self.counters.rejects += 1
        return Code.ACCESS_REJECT, _reject_attributes(decision.reason)

    def _bind_now(self, sim: SimEntry, imei: str) -> None:
        # The binding is written in the background; until then a pending device stands
        # for it, so a second device attaching meanwhile is already refused. Its batch
        # is read after the record was left (see `Sink.generation`): the batch, or later.
        self.pending_bindings[sim.imsi] = (sim.iccid, imei, self.sink.generation)
        self._stand_in(sim, imei)

    def _stand_in(self, sim: SimEntry, imei: str) -> None:
        pending = _pending_device(sim.iccid)
        self.snapshot.patch(
            SnapshotPatch(sims=(replace(sim, device_id=pending),), device_imeis={pending: imei})
        )

    # -- what the database says, re-read off the hot path (the caller holds the lock) ------

    def patch(self, patch: SnapshotPatch, *, read_after: int) -> None:
        """Rows re-read for a few keys. `read_after`: `committed_generation` as it was
        before the read began, so the rows hold every binding of that batch and earlier;
        a later one is laid over them again (`_reapply`)."""
        self.snapshot.patch(patch)
        imsis = [s.imsi for s in patch.sims]
        # A retransmission of a request answered before the change is decided again.
        self.replay.forget(imsis)
        self.replay.forget(patch.attach_classes)
        self._reapply(imsis, read_after)

    def install(self, snapshot: Snapshot, *, read_after: int) -> None:
        """A whole snapshot, read after batch `read_after` was committed (see `patch`)."""
        self.snapshot = snapshot
        self.replay.forget_all()
        self._reapply(list(self.pending_bindings), read_after)

    def _reapply(self, imsis: list[str], read_after: int) -> None:
        for imsi in imsis:
            pending = self.pending_bindings.get(imsi)
            if pending is None:
                continue
            iccid, imei, generation = pending
            if generation <= read_after:
                # Committed before the read: the rows hold the binding, or the reason it
                # was not made (the SIM was bound or retired meanwhile). They stand.
                del self.pending_bindings[imsi]
                self.snapshot.device_imeis.pop(_pending_device(iccid), None)
                continue
            sim = self.snapshot.sims.get(imsi)
            # A device bound in the database meanwhile wins: the background write of this
            # binding will find the SIM bound and leave it.
            if sim is not None and sim.iccid == iccid and sim.device_id is None:
                self._stand_in(sim, imei)

    def revoked(self, sessions: Iterable[Session]) -> list[Revocation]:
        """The live sessions among `sessions` that the snapshot would no longer accept, with
        their gateway and why (sessions of a gateway no longer known are left alone: there
        is no secret to ask it with)."""
        gateways = {g.id: g for g in self.snapshot.gateways}
        found: list[Revocation] = []
        now = self.clock()
        for s in sessions:
            gateway = gateways.get(s.gateway_id)
            if gateway is None:
                continue
            request = AccessRequest(s.imsi, s.imei, s.apn)
            decision = decide(self.snapshot, gateway, request, now=now)
            if not decision.accepted:
                codes = () if decision.policy is None else decision.policy.reasons
                found.append((s, gateway, decision.reason, codes))
        return found

    # -- attach classes that change by time alone (the caller holds the lock) --------------

    def next_due(self) -> datetime | None:
        """When an attach class is next to be re-classified (None: none is)."""
        return self.snapshot.attach.due.next()

    def reclassify_due(self, now: datetime) -> list[Revocation]:
        """Re-classify the SIMs whose class stood until `now` (a posture report went stale,
        a swap aged), a batch at a time; their live sessions no longer accepted."""
        imsis = self.snapshot.attach.reclassify_due(now, RECLASSIFY_BATCH)
        if not imsis:
            return []
        self.replay.forget(imsis)
        return self.revoked(s for imsi in imsis for s in self.sessions.for_imsi(imsi))


def _pending_device(iccid: str) -> str:
    # Not a device id (those have no colon): accounting never records it as one.
    return f"pending:{iccid}"
