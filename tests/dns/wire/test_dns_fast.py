"""The hot path: question views, prebuilt answers and truncation, checked with the full codec."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.wire.block import BlockMode, block_response
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns, EdnsOption, ExtendedError
from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.fast import (
    QuestionView,
    badvers,
    formerr,
    parse_question,
    refused,
    servfail,
    udp_limit,
)
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.dns.wire.truncate import truncate

from support.dns_strategies import ednses, names, u16


def _query(
    name: str = "Ads.Example.COM",
    qtype: int = RRType.A,
    edns: Edns | None = None,
    flags: Flag = Flag.RD,
    ident: int = 0x4242,
) -> bytes:
    return Message(id=ident, flags=flags, questions=(Question(name, qtype),), edns=edns).to_wire()


def _view(wire: bytes) -> QuestionView:
    view = parse_question(wire)
    assert view is not None
    return view


def test_view_of_plain_query() -> None:
    wire = _query()
    assert _view(wire) == QuestionView(
        0x4242, 0x0100, b"ads.example.com", 1, 1, len(wire), False, 0, False, 0
    )


def test_view_reads_opt() -> None:
    edns = Edns(payload_size=4096, dnssec_ok=True, version=0, options=(EdnsOption(3),))
    wire = _query(edns=edns, qtype=RRType.AAAA)
    view = _view(wire)
    assert (view.has_edns, view.payload_size, view.dnssec_ok, view.edns_version) == (
        True,
        4096,
        True,
        0,
    )
    assert view.question_end == 12 + len(b"\x03ads\x07example\x03com\x00") + 4
    assert view.name == "ads.example.com"


def test_view_of_root_query() -> None:
    assert _view(_query(name="")).qname == b""


@pytest.mark.parametrize(
    "wire",
    [
        _query(flags=Flag.QR),  # a response
        Message(id=1, opcode=5, questions=(Question("a", 1),)).to_wire(),  # UPDATE
        Message(id=1, questions=(Question("a", 1), Question("b", 1))).to_wire(),
        Message(id=1, questions=()).to_wire(),
        Message(
            id=1,
            questions=(Question("a", 1),),
            additionals=(ResourceRecord("a", 250, 255, 0, b""),),
        ).to_wire(),  # TSIG-like record: slow path
        _query(name="a\\.b.c"),  # a dot inside a label
        _query(name="\\200.com"),  # non-ASCII octet
        _query() + b"\x00",  # trailing junk
        _query()[:-1],
        _query(edns=Edns())[:-1],
        _query(edns=Edns())[:-2] + b"\x00\x03" + b"\x00\x0a\x00",  # option header cut short
        _query(edns=Edns())[:-2] + b"\x00\x05" + b"\x00\x0a\x00\x02\x01",  # option data cut
        bytes.fromhex("000101000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01",  # pointer
    ],
)
def test_view_declines(wire: bytes) -> None:
    assert parse_question(wire) is None


def _check_view_against_decoder(wire: bytes) -> None:
    view = parse_question(wire)
    if view is None:
        return
    message = decode_message(wire)  # whatever the fast path accepts, the full codec accepts
    (question,) = message.questions
    assert view.qname.decode() == question.name.lower()
    assert (view.qtype, view.qclass, view.id) == (question.qtype, question.qclass, message.id)
    assert view.has_edns == (message.edns is not None)
    if message.edns is not None:
        assert view.payload_size == message.edns.payload_size
        assert view.dnssec_ok == message.edns.dnssec_ok


@given(names, u16, u16, st.none() | ednses, st.data())
@settings(max_examples=500)
def test_view_of_damaged_queries_agrees_with_decoder(
    name: str, qtype: int, qclass: int, edns: Edns | None, data: st.DataObject
) -> None:
    wire = bytearray(
        Message(
            id=7, flags=Flag.RD, questions=(Question(name, qtype, qclass),), edns=edns
        ).to_wire()
    )
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        index = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
        wire[index] = data.draw(st.integers(min_value=0, max_value=255))
    _check_view_against_decoder(bytes(wire))


@given(st.binary(max_size=120))
@settings(max_examples=1000)
def test_view_of_arbitrary_bytes_is_none_or_agrees_with_decoder(wire: bytes) -> None:
    _check_view_against_decoder(wire)


_ldh = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=12)


@given(st.lists(_ldh, max_size=5), st.integers(0, 0xFFFF), st.booleans(), st.booleans())
def test_view_agrees_with_decoder_on_queries(
    labels: list[str], qtype: int, with_edns: bool, dnssec_ok: bool
) -> None:
    edns = Edns(payload_size=1400, dnssec_ok=dnssec_ok) if with_edns else None
    wire = _query(".".join(labels), qtype, edns)
    view = _view(wire)
    assert view.qname == ".".join(labels).lower().encode()
    assert view.qtype == qtype
    assert view.dnssec_ok == (dnssec_ok and with_edns)


def _ede(message: Message) -> tuple[ExtendedError, ...]:
    return message.edns.extended_errors() if message.edns else ()


@pytest.mark.parametrize(
    ("mode", "qtype", "rcode", "rdata"),
    [
        (BlockMode.NULL_IP, RRType.A, Rcode.NOERROR, b"\x00" * 4),
        (BlockMode.NULL_IP, RRType.AAAA, Rcode.NOERROR, b"\x00" * 16),
        (BlockMode.NULL_IP, RRType.HTTPS, Rcode.NOERROR, None),
        (BlockMode.NXDOMAIN, RRType.A, Rcode.NXDOMAIN, None),
        (BlockMode.NODATA, RRType.AAAA, Rcode.NOERROR, None),
        (BlockMode.REFUSED, RRType.A, Rcode.REFUSED, None),
    ],
)
def test_block_modes(mode: BlockMode, qtype: int, rcode: int, rdata: bytes | None) -> None:
    wire = _query(qtype=qtype, edns=Edns(dnssec_ok=True))
    response = decode_message(block_response(wire, _view(wire), mode, EdeCode.BLOCKED, "ads"))
    assert response.id == 0x4242
    assert response.flags == Flag.QR | Flag.RD | Flag.RA
    assert response.rcode == rcode
    assert response.questions == (Question("Ads.Example.COM", qtype),)  # case echoed
    if rdata is None:
        assert response.answers == ()
    else:
        assert response.answers == (ResourceRecord("Ads.Example.COM", qtype, 1, 60, rdata),)
    assert response.edns is not None
    assert response.edns.dnssec_ok
    assert _ede(response) == (ExtendedError(15, "ads"),)


def test_block_page_addresses_and_other_types() -> None:
    def answer(qtype: int) -> Message:
        wire = _query(qtype=qtype)
        return decode_message(
            block_response(
                wire,
                _view(wire),
                BlockMode.ADDRESS,
                ipv4="192.0.2.7",
                ttl=5,
                other_types=BlockMode.REFUSED,
            )
        )

    assert answer(RRType.A).answers[0].rdata == bytes([192, 0, 2, 7])
    assert answer(RRType.A).answers[0].ttl == 5
    assert answer(RRType.AAAA).answers == ()  # no IPv6 block page: NODATA
    assert answer(RRType.AAAA).rcode == Rcode.NOERROR
    assert answer(RRType.MX).rcode == Rcode.REFUSED


def test_no_opt_and_so_no_ede_without_client_edns() -> None:
    wire = _query()
    response = decode_message(block_response(wire, _view(wire), ede_text="ads"))
    assert response.edns is None
    assert response.answers[0].rdata == b"\x00" * 4


def test_non_in_class_gets_other_types_answer() -> None:
    wire = Message(id=1, questions=(Question("a.com", RRType.A, 3),)).to_wire()
    assert decode_message(block_response(wire, _view(wire))).answers == ()


@pytest.mark.parametrize(("build", "rcode"), [(refused, Rcode.REFUSED), (servfail, Rcode.SERVFAIL)])
def test_simple_responses(build: object, rcode: int) -> None:
    wire = _query(edns=Edns())
    response = decode_message(build(wire, _view(wire), EdeCode.FILTERED, "policy"))  # type: ignore[operator]
    assert response.rcode == rcode
    assert response.questions == (Question("Ads.Example.COM", 1),)
    assert _ede(response) == (ExtendedError(17, "policy"),)


def test_badvers() -> None:
    wire = _query(edns=Edns(version=1))
    view = _view(wire)
    assert view.edns_version == 1
    response = decode_message(badvers(wire, view))
    assert response.rcode == Rcode.BADVERS
    assert response.edns is not None
    assert response.edns.version == 0  # RFC 6891 §6.1.3: the version we do implement


def test_formerr() -> None:
    wire = bytes.fromhex("abcd 0100 0001 0000 0000 0000") + b"\x05abc"
    response = decode_message(formerr(wire) or b"")
    assert (response.id, response.rcode, response.flags) == (0xABCD, 1, Flag.QR | Flag.RD | Flag.RA)
    assert formerr(b"\x00" * 11) is None
    assert formerr(bytes.fromhex("abcd 8100") + bytes(8)) is None  # never answer a response


def test_udp_limit() -> None:
    assert udp_limit(_view(_query())) == 512
    assert udp_limit(_view(_query(edns=Edns(payload_size=100)))) == 512
    assert udp_limit(_view(_query(edns=Edns(payload_size=4096)))) == 1232
    assert udp_limit(_view(_query(edns=Edns(payload_size=1400))), server_max=4096) == 1400


def _big_response(edns: Edns | None) -> bytes:
    answers = tuple(ResourceRecord.address("a.example", f"192.0.2.{i}", 60) for i in range(60))
    return Message(
        id=9,
        flags=Flag.QR | Flag.RD,
        questions=(Question("a.example", 1),),
        answers=answers,
        edns=edns,
    ).to_wire()


def test_truncate_keeps_question_and_opt() -> None:
    wire = _big_response(Edns(options=(ExtendedError(3, "stale").to_option(),)))
    assert len(wire) > 512
    short = truncate(wire, 512)
    assert len(short) <= 512
    response = decode_message(short)
    assert Flag.TC in response.flags
    assert response.answers == ()
    assert response.questions == (Question("a.example", 1),)
    assert response.edns is not None
    assert _ede(response) == (ExtendedError(3, "stale"),)


def test_truncate_leaves_fitting_responses_alone() -> None:
    wire = _big_response(None)
    assert truncate(wire, 4096) is wire
    assert Flag.TC in decode_message(truncate(wire, 100)).flags  # raised to the 512 floor
    with pytest.raises(DnsDecodeError):
        truncate(wire[:600], 512)
