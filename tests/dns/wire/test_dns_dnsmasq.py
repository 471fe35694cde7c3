"""Decoding real answers from an independent server: dnsmasq, run on loopback with local data."""

import socket
from collections.abc import Iterator

import pytest

from ztsim.dns.wire.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns, ExtendedError
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.dns.wire.truncate import truncate

from support.dns_gateway_harness import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(DNSMASQ is None, reason="needs dnsmasq (dnsmasq-base)")


@pytest.fixture(scope="module")
def dnsmasq_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    hosts = tmp_path_factory.mktemp("dnsmasq") / "hosts"
    hosts.write_text("")  # every record comes from the options below
    with dnsmasq(
        hosts,
        "--host-record=www.example.test,192.0.2.1,2001:db8::1",
        "--cname=alias.example.test,www.example.test",
        "--mx-host=example.test,mail.example.test,10",
        "--txt-record=example.test,v=spf1 -all",
        "--srv-host=_sip._udp.example.test,sip.example.test,5060,1,2",
        "--ptr-record=1.2.0.192.in-addr.arpa,www.example.test",
        "--address=/nx.test/",
    ) as port:
        yield port


def _ask(port: int, query: Message) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(query.to_wire(), ("127.0.0.1", port))
        return sock.recvfrom(65535)[0]


_EDNS = Edns()


def _query(name: str, qtype: int, edns: Edns | None = _EDNS) -> Message:
    return Message(id=0x5151, flags=Flag.RD, questions=(Question(name, qtype),), edns=edns)


def _name(text: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".")) + b"\x00"


@pytest.mark.parametrize(
    ("name", "qtype", "answers"),
    [
        (
            "alias.example.test",
            RRType.A,
            [
                ResourceRecord(
                    "alias.example.test", RRType.CNAME, 1, 300, _name("www.example.test")
                ),
                ResourceRecord.address("www.example.test", "192.0.2.1", 300),
            ],
        ),
        (
            "www.example.test",
            RRType.AAAA,
            [ResourceRecord.address("www.example.test", "2001:db8::1", 300)],
        ),
        (
            "example.test",
            RRType.MX,
            [
                ResourceRecord(
                    "example.test", RRType.MX, 1, 300, b"\x00\x0a" + _name("mail.example.test")
                )
            ],
        ),
        (
            "example.test",
            RRType.TXT,
            [ResourceRecord("example.test", RRType.TXT, 1, 300, b"\x0bv=spf1 -all")],
        ),
        (
            "_sip._udp.example.test",
            RRType.SRV,
            [
                ResourceRecord(
                    "_sip._udp.example.test",
                    RRType.SRV,
                    1,
                    300,
                    bytes.fromhex("0001 0002 13c4") + _name("sip.example.test"),
                )
            ],
        ),
        (
            "1.2.0.192.in-addr.arpa",
            RRType.PTR,
            [
                ResourceRecord(
                    "1.2.0.192.in-addr.arpa", RRType.PTR, 1, 300, _name("www.example.test")
                )
            ],
        ),
    ],
)
def test_answers(dnsmasq_port: int, name: str, qtype: int, answers: list[ResourceRecord]) -> None:
    wire = _ask(dnsmasq_port, _query(name, qtype))
    message = decode_message(wire)
    assert message.id == 0x5151
    assert Flag.QR in message.flags
    assert message.rcode == Rcode.NOERROR
    assert message.questions == (Question(name, qtype),)
    assert list(message.answers) == answers
    assert message.edns is not None
    # The replay path must give the same records, aged, under a new ID.
    cached = CachedAnswer.from_wire(wire)
    replayed = decode_message(patch_id_and_ttls(cached, 7, 100))
    assert replayed.id == 7
    assert [r.ttl for r in replayed.answers] == [200] * len(answers)
    assert [r.rdata for r in replayed.answers] == [r.rdata for r in answers]
    assert truncate(wire, 512) is wire


def test_nxdomain_without_edns(dnsmasq_port: int) -> None:
    message = decode_message(_ask(dnsmasq_port, _query("x.nx.test", RRType.A, None)))
    assert message.rcode == Rcode.NXDOMAIN
    assert message.edns is None


def test_refused_carries_ede(dnsmasq_port: int) -> None:
    # dnsmasq 2.90 answers names it has no data and no upstream for with REFUSED + EDE 14.
    message = decode_message(_ask(dnsmasq_port, _query("nope.example.test", RRType.A)))
    assert message.rcode == Rcode.REFUSED
    assert message.edns is not None
    assert [e.info_code for e in message.edns.extended_errors()] == [EdeCode.NOT_READY]
    assert message.edns.extended_errors() == (ExtendedError(EdeCode.NOT_READY, ""),)
