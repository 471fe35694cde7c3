"""The location an access event carries: 3GPP-User-Location-Info found in a request's
octets without the codec's objects (the same value the codec decodes), and summed up as
the serving PLMN with its TAC and cell."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ztsim.radius import (
    Code,
    EutranCellGlobalId,
    LocationType,
    NrCellGlobalId,
    Packet,
    Plmn,
    RadiusDecodeError,
    TrackingAreaId,
    UserLocationInfo,
    decode_attributes,
    make_attribute,
)
from ztsim.radius.uli import find_location, location_summary, may_carry_location

GERMANY = Plmn("262", "01")
TAI_ECGI = UserLocationInfo.build(
    LocationType.TAI_AND_ECGI, TrackingAreaId(GERMANY, 0x1234), EutranCellGlobalId(GERMANY, 99)
)


def _request(*attributes: tuple[str, object]) -> bytes:
    packet = Packet(
        Code.ACCESS_REQUEST, 7, bytes(16), tuple(make_attribute(n, v) for n, v in attributes)
    )
    return packet.encode()


def test_the_value_is_found_among_other_attributes() -> None:
    datagram = _request(
        ("User-Name", "001010000000001"),
        ("3GPP-IMSI", "001010000000001"),
        ("3GPP-IMEISV", "3534900698733201"),
        ("3GPP-User-Location-Info", TAI_ECGI),
        ("Called-Station-Id", "corp"),
    )
    assert may_carry_location(datagram)
    value = find_location(datagram)
    assert value == TAI_ECGI.encode()
    assert location_summary(value) == {"plmn": "262-01", "tac": 0x1234, "eci": 99}


def test_no_location_is_none_and_the_marker_test_says_so() -> None:
    datagram = _request(("User-Name", "001010000000001"), ("3GPP-IMSI", "001010000000001"))
    assert not may_carry_location(datagram)
    assert find_location(datagram) is None


def test_summaries_name_what_the_type_holds() -> None:
    ncgi = UserLocationInfo.build(LocationType.NCGI, NrCellGlobalId(Plmn("310", "410"), 5))
    assert location_summary(ncgi.encode()) == {"plmn": "310-410", "nci": 5}
    tai = UserLocationInfo.build(LocationType.TAI, TrackingAreaId(GERMANY, 1))
    assert location_summary(tai.encode()) == {"plmn": "262-01", "tac": 1}
    # A type this codec keeps raw names no PLMN; a cut value does not decode.
    assert location_summary(bytes((200, 1, 2, 3))) is None
    assert location_summary(TAI_ECGI.encode()[:-1]) is None
    assert location_summary(b"") is None


@given(st.binary(max_size=200))
def test_any_octets_give_a_value_or_none_never_an_error(data: bytes) -> None:
    value = find_location(data)
    assert value is None or isinstance(value, bytes)
    if value is not None:
        location_summary(value)


_names = st.sampled_from(["User-Name", "Called-Station-Id", "3GPP-IMSI", "Class"])


@given(
    st.lists(st.tuples(_names, st.text("0123456789", min_size=1, max_size=30)), max_size=6),
    st.integers(0, 6),
    st.booleans(),
)
def test_the_walk_agrees_with_the_codec(
    others: list[tuple[str, str]], at: int, with_location: bool
) -> None:
    attributes: list[tuple[str, object]] = [
        (n, v.encode() if n == "Class" else v) for n, v in others
    ]
    if with_location:
        attributes.insert(min(at, len(attributes)), ("3GPP-User-Location-Info", TAI_ECGI))
    datagram = _request(*attributes)
    try:
        decoded = decode_attributes(Packet.decode(datagram)).get("3GPP-User-Location-Info")
    except RadiusDecodeError:
        return
    found = find_location(datagram)
    expected = decoded.encode() if isinstance(decoded, UserLocationInfo) else None
    assert found == expected
