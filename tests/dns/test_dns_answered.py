"""What an answer resolved: the asked name's addresses (through its CNAME chain), the
smallest TTL of the records used; anything else is None, and no input makes it raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.answered import Resolved, resolved
from ztsim.dns.wire.constants import RRType
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord

RESPONSE = Flag.QR | Flag.RD | Flag.RA


def _answer(
    qname: str, qtype: int, *records: ResourceRecord, rcode: int = 0, flags: Flag = RESPONSE
) -> bytes:
    return Message(
        id=7, flags=flags, rcode=rcode, questions=(Question(qname, qtype),), answers=records
    ).to_wire()


A = ResourceRecord.address
CNAME = RRType.CNAME


def test_addresses_of_the_asked_name() -> None:
    wire = _answer(
        "Intranet.ACME.test",
        RRType.A,
        A("intranet.acme.test", "192.0.2.7", 300),
        A("INTRANET.acme.test", "192.0.2.8", 60),
        A("intranet.acme.test", "192.0.2.7", 300),  # repeated: once
    )
    assert resolved(wire) == Resolved("intranet.acme.test", ("192.0.2.7", "192.0.2.8"), 60)
    six = _answer("v6.test", RRType.AAAA, A("v6.test", "2001:db8::1", 30))
    assert resolved(six) == Resolved("v6.test", ("2001:db8::1",), 30)


def test_a_cname_chain_is_followed_and_its_links_bound_the_ttl() -> None:
    wire = _answer(
        "www.acme.test",
        RRType.A,
        ResourceRecord.with_name("www.acme.test", CNAME, "lb.cdn.test", 20),
        ResourceRecord.with_name("lb.cdn.test", CNAME, "edge.cdn.test", 600),
        A("edge.cdn.test", "198.51.100.9", 300),
        A("elsewhere.test", "203.0.113.1", 300),  # not on the chain: not the question's
    )
    assert resolved(wire) == Resolved("www.acme.test", ("198.51.100.9",), 20)


@pytest.mark.parametrize(
    "wire",
    [
        _answer("a.test", RRType.A, A("a.test", "192.0.2.1", 60), rcode=3),  # NXDOMAIN
        _answer("a.test", RRType.A, flags=RESPONSE),  # NODATA
        _answer("a.test", RRType.A, A("a.test", "192.0.2.1", 60), flags=Flag.RD),  # a query
        _answer("a.test", RRType.MX),  # not an address question
        _answer("a.test", RRType.A, A("b.test", "192.0.2.1", 60)),  # another name only
        _answer("a.test", RRType.A, A("a.test", "0.0.0.0", 60)),  # noqa: S104 (a block)
        _answer("a.test", RRType.AAAA, A("a.test", "::", 60)),  # a block
        _answer("a.test", RRType.AAAA, A("a.test", "192.0.2.1", 60)),  # not the asked type
        b"",
        b"\x00" * 11,
    ],
)
def test_anything_else_is_none(wire: bytes) -> None:
    assert resolved(wire) is None


def test_a_ttl_with_the_top_bit_set_is_zero() -> None:
    wire = bytearray(_answer("a.test", RRType.A, A("a.test", "192.0.2.1", 60)))
    wire[-10:-6] = b"\x80\x00\x00\x00"  # the TTL of the last record (RFC 2181 §8)
    assert resolved(bytes(wire)) == Resolved("a.test", ("192.0.2.1",), 0)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_make_it_raise(data: bytes) -> None:
    found = resolved(data)
    assert found is None or found.addresses


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.integers(12, 119))
def test_no_damage_to_an_answer_makes_it_raise(noise: bytes, at: int) -> None:
    wire = bytearray(
        _answer(
            "www.acme.test",
            RRType.A,
            ResourceRecord.with_name("www.acme.test", CNAME, "edge.test", 20),
            A("edge.test", "198.51.100.9", 300),
        )
    )
    wire[at : at + len(noise)] = noise
    resolved(bytes(wire))


LABELS = st.sampled_from(["a", "b", "www", "edge", "cdn"])
NAMES = st.lists(LABELS, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + ".test")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(NAMES, min_size=1, max_size=4, unique=True),
    st.lists(st.integers(1, 254), min_size=1, max_size=4, unique=True),
    st.lists(st.tuples(NAMES, st.integers(1, 254)), max_size=3),
    st.lists(st.integers(0, 100_000), min_size=8, max_size=8),
)
def test_built_answers_read_back(
    chain: list[str], hosts: list[int], noise: list[tuple[str, int]], ttls: list[int]
) -> None:
    records = [
        ResourceRecord.with_name(chain[i], CNAME, chain[i + 1], ttls[i])
        for i in range(len(chain) - 1)
    ]
    records += [A(chain[-1], f"192.0.2.{h}", ttls[4 + i]) for i, h in enumerate(hosts)]
    records += [A(n, f"203.0.113.{h}", 5) for n, h in noise if n not in chain]
    found = resolved(_answer(chain[0], RRType.A, *records))
    assert found is not None
    assert found.qname == chain[0]
    assert found.addresses == tuple(f"192.0.2.{h}" for h in hosts)
    assert found.ttl == min(ttls[: len(chain) - 1] + ttls[4 : 4 + len(hosts)])
