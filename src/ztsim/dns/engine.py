"""The gateway's sans-I/O engine: (query bytes, requester, now) -> answer bytes, forward, or drop.

The adapters (UDP, TCP, DoH) resolve the requester, call `handle`, and either
send the answer, send `Forward.upstream_query` to an upstream and give the
result (or None if every upstream failed) to `resolved`, or stay silent.
Common cases never build a `Message`: blocks come from prebuilt record bytes,
allowed names from the wire cache. The policy snapshot is an attribute,
swapped by assignment.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ztsim.dns.answercache import AnswerCache, CacheKey, Hit, replay
from ztsim.dns.answers import address_response, cname_response
from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.rules import Action, BlockAnswer
from ztsim.dns.policy.snapshot import Decision, PolicySnapshot
from ztsim.dns.querylog import QueryLog
from ztsim.dns.verdict import Verdict, new_counts
from ztsim.dns.wire._wirename import encode_name, text_to_labels
from ztsim.dns.wire.block import BlockMode, block_response
from ztsim.dns.wire.constants import (
    FLAG_CD,
    FLAG_RD,
    HEADER_LEN,
    EdeCode,
    Opcode,
    Rcode,
    RRClass,
    RRType,
)
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError
from ztsim.dns.wire.fast import (
    QuestionView,
    badvers,
    formerr,
    opt_record,
    parse_question,
    refused,
    servfail,
    udp_limit,
)
from ztsim.dns.wire.message import Flag, Message, decode_message
from ztsim.dns.wire.truncate import truncate

_HEADER = struct.Struct("!HHHHHH")
_FAILED_RCODES = (Rcode.SERVFAIL, Rcode.REFUSED)  # RFC 8767 §4: a reason to serve stale
UNKNOWN_SOURCE_TEXT = "no policy for this source"


class Answer(NamedTuple):
    wire: bytes


class Forward(NamedTuple):
    """Ask an upstream `upstream_query` (ID to be set by the sender), then call `resolved`."""

    query: bytes
    view: QuestionView
    key: CacheKey
    upstream_query: bytes
    limit: int | None  # the client's UDP limit; None over TCP and DoH
    cname: str | None = None  # set when the answer is a CNAME to the forwarded name


Step = Answer | Forward | None


def upstream_query(question: bytes, flags: int, dnssec_ok: bool) -> bytes:
    """Our query upstream: ID 0 (the sender sets it), RD, the client's CD, our own OPT."""
    head = _HEADER.pack(0, FLAG_RD | (flags & FLAG_CD), 1, 0, 0, 1)
    return head + question + opt_record(dnssec_ok)


class _Memo(NamedTuple):
    """A whole answer but its ID, valid until `until`, with what to log for it."""

    tail: bytes
    until: float
    qname: str
    qtype: int
    decision: Decision
    verdict: Verdict


_MemoKey = tuple[int, bool, bytes]  # (policy class, over UDP, query without its ID)
MAX_MEMO = 50_000  # answers remembered per process; cleared whole when full
_FOREVER = float("inf")  # block and override answers change only with the policy


class Engine:
    """Also keeps a memo of recent answers keyed on (the requester's policy class,
    transport, query without its ID): a repeated query costs one dict probe. Blocks and
    overrides stay valid until the policy is swapped (which clears the memo); cache
    replays until their TTLs tick. The UDP thread and the event loop share it: each
    access is one dict operation, atomic under the GIL."""

    def __init__(
        self,
        policy: PolicySnapshot,
        cache: AnswerCache,
        log: QueryLog | None = None,
    ) -> None:
        self._policy = policy
        self.cache = cache
        self.log = log
        self._memo: dict[_MemoKey, _Memo] = {}
        # Queries by `Verdict`: read by the metrics. The UDP thread and the loop both add;
        # under the GIL a rare lost increment is the price of taking no lock.
        self.verdicts = new_counts()
        self.queries = [0, 0]  # [over TCP (TCP, DoT, DoH), over UDP]

    @property
    def policy(self) -> PolicySnapshot:
        return self._policy

    @policy.setter
    def policy(self, policy: PolicySnapshot) -> None:
        self._policy = policy
        self._memo = {}

    def handle(self, wire: bytes, who: Requester | None, now: float, *, udp: bool) -> Step:
        # Read before the policy: a snapshot swap in another thread replaces the dict after
        # the policy, so an answer built from the old policy only lands in the old dict.
        memos = self._memo
        self.queries[udp] += 1
        if who is not None:
            if who.revoked:  # before the memo: a revoked requester shares a policy class
                self.verdicts[Verdict.REFUSED_REVOKED] += 1
                return _refused(wire, who.revoked)
            memo = memos.get((self._policy.policy_class(who), udp, wire[2:]))
            if memo is not None and now < memo.until:
                self.verdicts[memo.verdict] += 1
                if self.log is not None:
                    self.log.record(who, memo.qname, memo.qtype, memo.decision)
                # Built as a tuple (what Answer is) without its Python-level __new__:
                # half the cost, on the path most queries take.
                return tuple.__new__(Answer, (wire[:2] + memo.tail,))
        view = parse_question(wire)
        if view is None:
            self.verdicts[Verdict.OTHER] += 1
            return _slow_path(wire)
        if view.edns_version:
            self.verdicts[Verdict.OTHER] += 1
            return Answer(badvers(wire, view))  # RFC 6891 §6.1.3: we speak version 0 only
        if who is None:
            self.verdicts[Verdict.REFUSED_UNKNOWN_SOURCE] += 1
            return Answer(refused(wire, view, EdeCode.PROHIBITED, UNKNOWN_SOURCE_TEXT))
        if view.qclass != RRClass.IN:
            self.verdicts[Verdict.REFUSED_NOT_SERVED] += 1
            return Answer(refused(wire, view, EdeCode.NOT_SUPPORTED, "class not served"))
        qname = view.name
        decision = self.policy.decide(who, qname, view.qtype)
        if self.log is not None:
            self.log.record(who, qname, view.qtype, decision)
        limit = udp_limit(view) if udp else None
        if decision.action is Action.BLOCK:
            reply = self._blocked(wire, view, who, decision)
            return self._remember(
                memos, who, udp, wire, reply, _FOREVER, qname, view.qtype, decision, Verdict.BLOCKED
            )
        if decision.action is Action.OVERRIDE:
            if decision.cname is None:
                reply = address_response(wire, view, decision.addresses)
                return self._remember(
                    memos,
                    who,
                    udp,
                    wire,
                    reply,
                    _FOREVER,
                    qname,
                    view.qtype,
                    decision,
                    Verdict.OVERRIDDEN,
                )
            return self._cname(wire, view, decision.cname, now, limit)
        key = (view.qname, view.qtype, view.qclass, view.dnssec_ok)
        hit = self.cache.get(key, now)
        if hit is not None:
            reply = self._reply(wire, view, hit, limit)
            return self._remember(
                memos,
                who,
                udp,
                wire,
                reply,
                hit.until,
                qname,
                view.qtype,
                decision,
                Verdict.ALLOWED,
            )
        question = wire[HEADER_LEN : view.question_end]
        return Forward(wire, view, key, upstream_query(question, view.flags, view.dnssec_ok), limit)

    def _remember(
        self,
        memos: dict[_MemoKey, _Memo],
        who: Requester,
        udp: bool,
        wire: bytes,
        reply: bytes,
        until: float,
        qname: str,
        qtype: int,
        decision: Decision,
        verdict: Verdict,
    ) -> Answer:
        self.verdicts[verdict] += 1
        if len(memos) >= MAX_MEMO:
            memos.clear()
        key = (self._policy.policy_class(who), udp, wire[2:])
        memos[key] = _Memo(reply[2:], until, qname, qtype, decision, verdict)
        return Answer(reply)

    def resolved(self, forward: Forward, response: bytes | None, now: float) -> bytes:
        """The client's answer once the upstream answered (`response`) or all failed (None)."""
        wire, view = forward.query, forward.view
        failed = (
            response is None or len(response) < HEADER_LEN or response[3] & 0xF in _FAILED_RCODES
        )
        hit: Hit | None = None
        stale = False
        if not failed and response is not None:
            stored = self.cache.put(forward.key, response, now)
            hit = None if stored is None else Hit(stored, 0, False)
        else:
            hit = self.cache.get(forward.key, now, allow_stale=True)
            stale = hit is not None and hit.stale
        if hit is None:
            self.verdicts[Verdict.SERVFAIL] += 1
            if view.has_edns:
                return servfail(wire, view, EdeCode.NO_REACHABLE_AUTHORITY, "no upstream answered")
            return servfail(wire, view)
        if forward.cname is not None:
            self.verdicts[Verdict.OVERRIDDEN] += 1
            target = replay(hit, view.id, view.flags, _stored_question(hit), b"", stale=stale)
            return _fit(cname_response(wire, view, forward.cname, target), forward.limit)
        self.verdicts[Verdict.ALLOWED] += 1
        return self._reply(wire, view, hit, forward.limit, stale=stale)

    def _reply(
        self, wire: bytes, view: QuestionView, hit: Hit, limit: int | None, *, stale: bool = False
    ) -> bytes:
        opt = b""
        if view.has_edns:
            opt = opt_record(view.dnssec_ok, EdeCode.STALE_ANSWER if stale else None)
        question = wire[HEADER_LEN : view.question_end]
        try:
            reply = replay(hit, view.id, view.flags, question, opt, stale=stale)
        except DnsEncodeError:
            return servfail(wire, view)
        return _fit(reply, limit)

    def _blocked(self, wire: bytes, view: QuestionView, who: Requester, d: Decision) -> bytes:
        settings = self.policy.settings(who.org_id)
        mode = settings.block_answer.mode
        other = (
            BlockMode.REFUSED if settings.block_answer is BlockAnswer.NULL_IP else BlockMode.NODATA
        )
        return block_response(
            wire,
            view,
            mode,
            d.ede_code,
            d.ede_text,
            ipv4=settings.block_page_ipv4,
            ipv6=settings.block_page_ipv6,
            other_types=other,
        )

    def _cname(
        self, wire: bytes, view: QuestionView, target: str, now: float, limit: int | None
    ) -> Step:
        if view.qtype == RRType.CNAME:
            self.verdicts[Verdict.OVERRIDDEN] += 1
            return Answer(cname_response(wire, view, target))
        key = (target.encode("ascii"), view.qtype, view.qclass, view.dnssec_ok)
        hit = self.cache.get(key, now)
        if hit is not None:
            chased = replay(hit, view.id, view.flags, _stored_question(hit), b"")
            self.verdicts[Verdict.OVERRIDDEN] += 1
            return Answer(_fit(cname_response(wire, view, target, chased), limit))
        question = bytearray()
        encode_name(text_to_labels(target), question, None)
        question += struct.pack("!HH", view.qtype, view.qclass)
        query = upstream_query(bytes(question), view.flags, view.dnssec_ok)
        return Forward(wire, view, key, query, limit, target)


def _refused(wire: bytes, text: str) -> Answer | None:
    """REFUSED with Extended DNS Error 18, Prohibited (RFC 8914 §4.19: a client the server
    will not serve), whatever the policy or a network default would say."""
    view = parse_question(wire)
    if view is None:
        return _slow_path(wire)
    if view.edns_version:
        return Answer(badvers(wire, view))
    return Answer(refused(wire, view, EdeCode.PROHIBITED, text))


def _stored_question(hit: Hit) -> bytes:
    return hit.answer.wire[HEADER_LEN : hit.answer.question_end]


def _fit(reply: bytes, limit: int | None) -> bytes:
    return reply if limit is None else truncate(reply, limit)


def _slow_path(wire: bytes) -> Answer | None:
    """Queries the fast path passes over: FORMERR, NOTIMP, REFUSED or silence."""
    try:
        message = decode_message(wire)
    except DnsDecodeError:
        reply = formerr(wire)
        return None if reply is None else Answer(reply)
    if message.flags & Flag.QR:
        return None  # never answer a response: no loops between servers
    if message.opcode != Opcode.QUERY:
        rcode = Rcode.NOTIMP
    elif len(message.questions) != 1:
        rcode = Rcode.FORMERR
    else:
        rcode = Rcode.REFUSED  # a name or record layout we do not serve
    response = Message(
        id=message.id,
        flags=Flag.QR | Flag.RA | (message.flags & Flag.RD),
        opcode=message.opcode,
        rcode=rcode,
        questions=message.questions if rcode != Rcode.FORMERR else (),
    )
    try:
        return Answer(response.to_wire())
    except DnsEncodeError:
        return None
