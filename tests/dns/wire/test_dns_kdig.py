"""Cross-checks with Knot's kdig: it builds real queries for our decoder and judges our answers.

Each test serves one UDP exchange on loopback: kdig's query is captured and
parsed by us, and our response is printed by kdig, whose text we check.
"""

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ztsim.dns.wire.block import BlockMode, block_response
from ztsim.dns.wire.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.fast import QuestionView, opt_record, parse_question, servfail, udp_limit
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.dns.wire.truncate import truncate

pytestmark = pytest.mark.skipif(shutil.which("kdig") is None, reason="needs kdig (knot-dnsutils)")

Handler = Callable[[bytes, QuestionView], bytes]


@contextmanager
def _responder(handler: Handler) -> Iterator[tuple[int, list[bytes]]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    queries: list[bytes] = []

    def serve() -> None:
        try:
            query, peer = sock.recvfrom(65535)
        except TimeoutError:
            return
        queries.append(query)
        view = parse_question(query)
        assert view is not None
        sock.sendto(handler(query, view), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], queries
    finally:
        thread.join(timeout=6)
        sock.close()


def _kdig(handler: Handler, *args: str) -> tuple[str, bytes]:
    with _responder(handler) as (port, queries):
        result = subprocess.run(
            ["kdig", "@127.0.0.1", "-p", str(port), "+timeout=2", "+retry=0", "+notcp", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    assert queries, result.stdout + result.stderr
    return result.stdout, queries[0]


def _records(output: str) -> list[list[str]]:
    """Record lines of kdig's answer/authority sections, split on whitespace."""
    return [
        line.split()
        for line in output.splitlines()
        if line and not line.startswith(";") and len(line.split()) >= 4
    ]


def _block(mode: BlockMode, code: int, text: str) -> Handler:
    return lambda wire, view: block_response(wire, view, mode, code, text)


def test_blocked_a_with_ede_and_nsid_query() -> None:
    out, query = _kdig(
        _block(BlockMode.NULL_IP, EdeCode.BLOCKED, "rule ads.example"),
        "ads.example.com",
        "A",
        "+edns",
        "+nsid",
    )
    assert "status: NOERROR" in out
    assert "EDE: 15 (Blocked): 'rule ads.example'" in out
    assert ["ads.example.com.", "60", "IN", "A", "0.0.0.0"] in _records(out)  # noqa: S104
    message = decode_message(query)
    assert message.questions == (Question("ads.example.com", RRType.A),)
    assert message.edns is not None
    assert [option.code for option in message.edns.options] == [3]  # RFC 5001 NSID, empty
    view = parse_question(query)
    assert view is not None
    assert (view.qname, view.has_edns, view.payload_size) == (
        b"ads.example.com",
        True,
        message.edns.payload_size,
    )


def test_blocked_aaaa_echoes_do() -> None:
    out, query = _kdig(
        _block(BlockMode.NULL_IP, EdeCode.BLOCKED, ""), "ads.example.com", "AAAA", "+dnssec"
    )
    view = parse_question(query)
    assert view is not None
    assert view.dnssec_ok
    assert "flags: do" in out
    assert "EDE: 15 (Blocked)" in out
    assert ["ads.example.com.", "60", "IN", "AAAA", "::"] in _records(out)


def test_no_edns_client_gets_no_opt() -> None:
    out, query = _kdig(
        _block(BlockMode.NULL_IP, EdeCode.BLOCKED, "x"), "ads.example.com", "A", "+noedns"
    )
    assert decode_message(query).edns is None
    assert "EDNS PSEUDOSECTION" not in out
    assert "EDE" not in out
    assert ["ads.example.com.", "60", "IN", "A", "0.0.0.0"] in _records(out)  # noqa: S104


def test_nxdomain_filtered() -> None:
    out, _ = _kdig(
        _block(BlockMode.NXDOMAIN, EdeCode.FILTERED, "parental"), "adult.example", "A", "+edns"
    )
    assert "status: NXDOMAIN" in out
    assert "EDE: 17 (Filtered): 'parental'" in out
    assert _records(out) == []


def test_servfail_with_ede() -> None:
    out, _ = _kdig(
        lambda wire, view: servfail(wire, view, EdeCode.NO_REACHABLE_AUTHORITY, "upstream down"),
        "example.org",
        "MX",
        "+edns",
    )
    assert "status: SERVFAIL" in out
    assert "EDE: 22 (No Reachable Authority): 'upstream down'" in out


def _full_answer(view: QuestionView) -> Message:
    name = view.name
    return Message(
        id=view.id,
        flags=Flag.QR | Flag.RD | Flag.RA,
        questions=(Question(name, view.qtype),),
        answers=(
            ResourceRecord.with_name(name, RRType.CNAME, "cdn.example.net", 300),
            ResourceRecord.address("cdn.example.net", "192.0.2.10", 120),
            ResourceRecord.address("cdn.example.net", "2001:db8::10", 120),
            ResourceRecord(
                "cdn.example.net", RRType.MX, 1, 60, b"\x00\x0a\x04mail\x07example\x03net\x00"
            ),
            ResourceRecord("cdn.example.net", RRType.TXT, 1, 60, b"\x05hello\x05world"),
        ),
        authorities=(
            ResourceRecord(
                "example.net",
                RRType.SOA,
                1,
                900,
                b"\x02ns\x07example\x03net\x00\x0ahostmaster\x07example\x03net\x00"
                + (2026112401).to_bytes(4, "big")
                + (7200).to_bytes(4, "big")
                + (3600).to_bytes(4, "big")
                + (1209600).to_bytes(4, "big")
                + (300).to_bytes(4, "big"),
            ),
        ),
        edns=Edns() if view.has_edns else None,
    )


_EXPECTED = [
    ["www.example.com.", "300", "IN", "CNAME", "cdn.example.net."],
    ["cdn.example.net.", "120", "IN", "A", "192.0.2.10"],
    ["cdn.example.net.", "120", "IN", "AAAA", "2001:db8::10"],
    ["cdn.example.net.", "60", "IN", "MX", "10", "mail.example.net."],
    ["cdn.example.net.", "60", "IN", "TXT", '"hello"', '"world"'],
    [
        *("example.net.", "900", "IN", "SOA", "ns.example.net.", "hostmaster.example.net."),
        *("2026112401", "7200", "3600", "1209600", "300"),
    ],
]


def test_full_codec_answer_read_by_kdig() -> None:
    out, _ = _kdig(lambda wire, view: _full_answer(view).to_wire(), "www.example.com", "A")
    assert "status: NOERROR" in out
    assert _records(out) == _EXPECTED


def test_cached_answer_replayed_with_kdig_id_and_aged_ttls() -> None:
    def replay(wire: bytes, view: QuestionView) -> bytes:
        stored = _full_answer(view._replace(id=1)).to_wire()
        cached = CachedAnswer.from_wire(stored)
        opt = opt_record(view.dnssec_ok) if view.has_edns else b""
        return patch_id_and_ttls(
            cached,
            view.id,
            50,
            query_flags=view.flags,
            question=wire[12 : view.question_end],
            opt=opt,
        )

    out, _ = _kdig(replay, "www.example.com", "A", "+edns")
    assert "status: NOERROR" in out  # kdig drops answers whose ID does not match
    records = _records(out)
    assert [r[1] for r in records] == ["250", "70", "70", "10", "10", "850"]
    assert [r[:1] + r[2:] for r in records] == [r[:1] + r[2:] for r in _EXPECTED]


def test_truncated_answer_sets_tc() -> None:
    def big(wire: bytes, view: QuestionView) -> bytes:
        answers = tuple(ResourceRecord.address(view.name, f"192.0.2.{i}", 60) for i in range(1, 80))
        message = Message(
            id=view.id,
            flags=Flag.QR | Flag.RD,
            questions=(Question(view.name, 1),),
            answers=answers,
        )
        return truncate(message.to_wire(), udp_limit(view))

    out, _ = _kdig(big, "many.example", "A", "+noedns", "+ignore")
    assert "tc" in out.split("Flags:")[1].splitlines()[0].split()
    assert _records(out) == []


def test_kdig_edns_options_decode() -> None:
    out, query = _kdig(
        _block(BlockMode.REFUSED, EdeCode.PROHIBITED, ""),
        "example.com",
        "HTTPS",
        "+cookie=0102030405060708",
        "+subnet=192.0.2.0/24",
        "+padding=128",
    )
    assert "status: REFUSED" in out
    message = decode_message(query)
    assert message.edns is not None
    options = {option.code: option.data for option in message.edns.options}
    assert options[10] == bytes.fromhex("0102030405060708")  # RFC 7873 §4: client cookie
    # RFC 7871 §6: FAMILY 1, SOURCE PREFIX 24, SCOPE 0, then the prefix's 3 octets.
    assert options[8] == b"\x00\x01\x18\x00\xc0\x00\x02"
    assert options[12] == bytes(128)  # RFC 7830 §3: zero octets; kdig's +padding=N is N of them
