"""Replaying stored answers: ID and TTL patches must equal a re-encoded message."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.wire.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.wire.constants import RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError
from ztsim.dns.wire.fast import opt_record
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message

from support.dns_strategies import messages


def _aged(message: Message, age: int) -> Message:
    def age_all(records: tuple[ResourceRecord, ...]) -> tuple[ResourceRecord, ...]:
        # RFC 2181 §8: a TTL with the top bit set counts as zero.
        return tuple(
            replace(r, ttl=max((r.ttl if r.ttl < 1 << 31 else 0) - age, 0)) for r in records
        )

    return replace(
        message,
        answers=age_all(message.answers),
        authorities=age_all(message.authorities),
        additionals=age_all(message.additionals),
    )


@given(messages(), st.integers(0, 0xFFFF), st.integers(0, 1 << 32))
@settings(max_examples=300)
def test_patch_equals_aged_message(message: Message, new_id: int, age: int) -> None:
    cached = CachedAnswer.from_wire(message.to_wire())
    patched = decode_message(patch_id_and_ttls(cached, new_id, age))
    expected = _aged(replace(message, id=new_id, edns=None, rcode=message.rcode & 0xF), age)
    assert patched == expected


def _response(edns: Edns | None = None, extra: tuple[ResourceRecord, ...] = ()) -> Message:
    return Message(
        id=1,
        flags=Flag.QR | Flag.RA,
        questions=(Question("www.example.com", RRType.A),),
        answers=(
            ResourceRecord.with_name("www.example.com", RRType.CNAME, "cdn.example.net", 300),
            ResourceRecord.address("cdn.example.net", "192.0.2.1", 60),
        ),
        additionals=extra,
        edns=edns,
    )


def test_offsets_point_at_the_ttls() -> None:
    cached = CachedAnswer.from_wire(_response().to_wire())
    assert cached.ttls == (300, 60)
    assert cached.min_ttl == 60
    assert [int.from_bytes(cached.wire[o : o + 4], "big") for o in cached.ttl_offsets] == [300, 60]


def test_opt_is_dropped_and_replaced_per_client() -> None:
    cached = CachedAnswer.from_wire(_response(Edns(payload_size=4096, dnssec_ok=True)).to_wire())
    assert decode_message(cached.wire).edns is None
    patched = decode_message(patch_id_and_ttls(cached, 7, 10, opt=opt_record(False)))
    assert patched.edns == Edns(payload_size=1232)
    assert [r.ttl for r in patched.answers] == [290, 50]


def test_opt_before_another_record_is_removed_by_re_encoding() -> None:
    glue = ResourceRecord.address("ns.example.com", "192.0.2.53", 100)
    without = _response().to_wire()
    with_glue = _response(None, (glue,)).to_wire()
    glue_wire = with_glue[len(without) :]
    opt = Edns().to_wire()
    moved = with_glue[:10] + b"\x00\x02" + without[12:] + opt + glue_wire
    assert decode_message(moved) == _response(Edns(), (glue,))
    cached = CachedAnswer.from_wire(moved)
    assert decode_message(cached.wire) == _response(None, (glue,))
    assert cached.ttls == (300, 60, 100)


def test_flags_and_question_case_from_the_new_query() -> None:
    cached = CachedAnswer.from_wire(_response().to_wire())
    question = b"\x03WwW\x07ExAmple\x03com\x00\x00\x01\x00\x01"
    patched = decode_message(
        patch_id_and_ttls(cached, 9, 0, query_flags=Flag.RD | Flag.CD, question=question)
    )
    assert patched.questions == (Question("WwW.ExAmple.com", 1),)
    assert patched.flags == Flag.QR | Flag.RA | Flag.RD | Flag.CD
    with pytest.raises(DnsEncodeError):
        patch_id_and_ttls(cached, 9, 0, question=question[:-1])


def test_malformed_answers_are_refused() -> None:
    wire = _response().to_wire()
    with pytest.raises(DnsDecodeError):
        CachedAnswer.from_wire(wire[:-1])
    with pytest.raises(DnsEncodeError):
        CachedAnswer(wire, 12, (len(wire),), (1,))
