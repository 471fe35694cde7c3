"""Hypothesis strategies for DNS values, shared by the DNS tests."""

from hypothesis import strategies as st

from ztsim.dns.wire._wirename import encode_name, labels_to_text
from ztsim.dns.wire.edns import Edns, EdnsOption
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord

labels = st.lists(st.binary(min_size=1, max_size=20), max_size=4).map(tuple)
# Few distinct labels, so names share suffixes and the encoder compresses.
shared_labels = st.lists(st.sampled_from([b"a", b"Ex", b"com", b"x\x00.y"]), max_size=4).map(tuple)
names = st.one_of(labels, shared_labels).map(labels_to_text)
u16 = st.integers(min_value=0, max_value=0xFFFF)


def _name_rdata(name: tuple[bytes, ...]) -> bytes:
    out = bytearray()
    encode_name(name, out, None)
    return bytes(out)


_opaque_types = u16.filter(
    lambda t: t not in {1, 28, 41} and not 2 <= t <= 9 and t not in {12, 14, 15, 17, 18, 21, 26, 33}
)


@st.composite
def records(draw: st.DrawFn) -> ResourceRecord:
    name = draw(names)
    ttl = draw(st.integers(min_value=0, max_value=0xFFFFFFFF))
    rclass = draw(st.sampled_from([1, 3, 255]) | u16)
    kind = draw(st.sampled_from(["a", "aaaa", "cname", "mx", "soa", "srv", "opaque"]))
    target = draw(st.one_of(labels, shared_labels))
    if kind == "a":
        return ResourceRecord(name, 1, rclass, ttl, draw(st.binary(min_size=4, max_size=4)))
    if kind == "aaaa":
        return ResourceRecord(name, 28, rclass, ttl, draw(st.binary(min_size=16, max_size=16)))
    if kind == "cname":
        return ResourceRecord(
            name, draw(st.sampled_from([2, 5, 12])), rclass, ttl, _name_rdata(target)
        )
    if kind == "mx":
        return ResourceRecord(name, 15, rclass, ttl, b"\x00\x0a" + _name_rdata(target))
    if kind == "srv":
        return ResourceRecord(name, 33, rclass, ttl, bytes(6) + _name_rdata(target))
    if kind == "soa":
        rname = draw(shared_labels)
        fixed = draw(st.binary(min_size=20, max_size=20))
        return ResourceRecord(
            name, 6, rclass, ttl, _name_rdata(target) + _name_rdata(rname) + fixed
        )
    rdata = draw(st.binary(max_size=40))
    return ResourceRecord(name, draw(_opaque_types), rclass, ttl, rdata)


options = st.builds(EdnsOption, code=u16, data=st.binary(max_size=30))
ednses = st.builds(
    Edns,
    payload_size=u16,
    version=st.integers(min_value=0, max_value=255),
    dnssec_ok=st.booleans(),
    z=st.integers(min_value=0, max_value=0x7FFF),
    options=st.lists(options, max_size=3).map(tuple),
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    edns = draw(st.none() | ednses)
    rcode = draw(st.integers(min_value=0, max_value=0xFFF if edns else 0xF))
    flag_bits = draw(st.lists(st.sampled_from(list(Flag)), max_size=8))
    flags = Flag(0)
    for bit in flag_bits:
        flags |= bit
    return Message(
        id=draw(u16),
        flags=flags,
        opcode=draw(st.integers(min_value=0, max_value=15)),
        rcode=rcode,
        questions=tuple(draw(st.lists(st.builds(Question, names, u16, u16), max_size=2))),
        answers=tuple(draw(st.lists(records(), max_size=3))),
        authorities=tuple(draw(st.lists(records(), max_size=2))),
        additionals=tuple(draw(st.lists(records(), max_size=2))),
        edns=edns,
    )
