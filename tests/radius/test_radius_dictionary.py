"""Typed attribute values: standard, 3GPP (TS 29.061 §16.4.7) and Microsoft DNS."""

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from ztsim.radius import (
    VENDOR_3GPP,
    AcctStatusType,
    Attribute,
    CellGlobalId,
    DecodedAttribute,
    EutranCellGlobalId,
    LocationType,
    MsTimeZone,
    NrCellGlobalId,
    Plmn,
    RadiusDecodeError,
    RadiusEncodeError,
    RatType,
    RoutingAreaId,
    ServiceAreaId,
    TrackingAreaId,
    UserLocationInfo,
    decode_attributes,
    ipv4_dns_servers,
    ipv6_dns_servers,
    make_attribute,
    reply_messages,
    session_timeout,
)


def _vsa(vendor: int, sub_type: int, value: bytes) -> Attribute:
    return Attribute(26, vendor.to_bytes(4, "big") + bytes((sub_type, len(value) + 2)) + value)


def _one(attribute: Attribute) -> DecodedAttribute:
    (decoded,) = decode_attributes([attribute])
    return decoded


# PLMN BCD (TS 24.008 §10.5.1.13): MCC 262 / MNC 01 is 62 F2 10, MCC 310 / MNC 410 is 13 00 14.
@pytest.mark.parametrize(
    ("octets", "mcc", "mnc"),
    [("62f210", "262", "01"), ("130014", "310", "410"), ("00f110", "001", "01")],
)
def test_plmn_bcd(octets: str, mcc: str, mnc: str) -> None:
    plmn = Plmn.decode(bytes.fromhex(octets))
    assert (plmn.mcc, plmn.mnc) == (mcc, mnc)
    assert plmn.encode().hex() == octets


def test_plmn_rejects_non_bcd() -> None:
    with pytest.raises(RadiusDecodeError):
        Plmn.decode(bytes.fromhex("6af210"))
    with pytest.raises(RadiusEncodeError):
        Plmn("26", "01")


# Geographic Location field layouts of TS 29.061 §16.4.7.2 item 22, assembled by hand.
ULI_CASES = [
    ("8062f2101234", LocationType.TAI, (TrackingAreaId(Plmn("262", "01"), 0x1234),)),
    (
        "8162f2100abcdef1",
        LocationType.ECGI,
        (EutranCellGlobalId(Plmn("262", "01"), 0x0ABCDEF1),),
    ),
    (
        "82130014000162f21000000101",
        LocationType.TAI_AND_ECGI,
        (
            TrackingAreaId(Plmn("310", "410"), 1),
            EutranCellGlobalId(Plmn("262", "01"), 0x101),
        ),
    ),
    ("0062f21000110022", LocationType.CGI, (CellGlobalId(Plmn("262", "01"), 0x11, 0x22),)),
    ("0162f21000110033", LocationType.SAI, (ServiceAreaId(Plmn("262", "01"), 0x11, 0x33),)),
    ("0262f210001107ff", LocationType.RAI, (RoutingAreaId(Plmn("262", "01"), 0x11, 7),)),
    (
        "8762f2100f12345678",
        LocationType.NCGI,
        (NrCellGlobalId(Plmn("262", "01"), 0xF12345678),),
    ),
    (
        "88" + "62f210" + "000102",
        LocationType.TAI_5GS,
        (TrackingAreaId(Plmn("262", "01"), 0x102, five_gs=True),),
    ),
    (
        "89" + "62f210" + "000102" + "62f210" + "0000000001",
        LocationType.TAI_5GS_AND_NCGI,
        (
            TrackingAreaId(Plmn("262", "01"), 0x102, five_gs=True),
            NrCellGlobalId(Plmn("262", "01"), 1),
        ),
    ),
]


@pytest.mark.parametrize(("hex_value", "location_type", "parts"), ULI_CASES)
def test_user_location_info(
    hex_value: str, location_type: LocationType, parts: tuple[object, ...]
) -> None:
    raw = bytes.fromhex(hex_value)
    decoded = _one(_vsa(VENDOR_3GPP, 22, raw))
    assert decoded.name == "3GPP-User-Location-Info"
    uli = decoded.value
    assert isinstance(uli, UserLocationInfo)
    assert uli.location_type is location_type
    assert uli.locations == parts
    assert uli.encode() == raw
    assert UserLocationInfo.build(location_type, *parts).encode() == raw  # type: ignore[arg-type]


def test_uli_accessors() -> None:
    uli = UserLocationInfo.decode(bytes.fromhex("82130014000162f21000000101"))
    assert uli.tai == TrackingAreaId(Plmn("310", "410"), 1)
    assert uli.ecgi == EutranCellGlobalId(Plmn("262", "01"), 0x101)
    assert uli.ncgi is None
    assert uli.plmn == Plmn("310", "410")


def test_uli_wrong_length_is_an_error_and_unknown_type_is_kept_raw() -> None:
    with pytest.raises(RadiusDecodeError, match="needs 5 octets"):
        UserLocationInfo.decode(bytes.fromhex("8062f21012"))
    with pytest.raises(RadiusDecodeError):
        UserLocationInfo.decode(b"")
    unknown = UserLocationInfo.decode(bytes.fromhex("c8aabb"))
    assert (unknown.location_type, unknown.locations, unknown.raw) == (200, (), b"\xaa\xbb")
    spare = UserLocationInfo.decode(bytes.fromhex("8562f2100102"))
    assert spare.location_type is LocationType.EXTENDED_ENODEB_ID
    assert spare.raw == bytes.fromhex("62f2100102")


def test_uli_build_checks_parts_against_type() -> None:
    with pytest.raises(RadiusEncodeError):
        UserLocationInfo.build(LocationType.ECGI, TrackingAreaId(Plmn("262", "01"), 1))
    with pytest.raises(RadiusEncodeError):
        EutranCellGlobalId(Plmn("262", "01"), 1 << 28)


# TS 24.008 §10.5.3.8: quarter hours as swapped BCD, sign in bit 4.
@pytest.mark.parametrize(
    ("octets", "quarters", "dst", "offset"),
    [
        ("4001", 4, 1, timedelta(hours=1)),  # CET in summer
        ("2200", 22, 0, timedelta(hours=5, minutes=30)),  # India
        ("0a00", -20, 0, timedelta(hours=-5)),  # US Eastern
        ("0000", 0, 0, timedelta(0)),
    ],
)
def test_ms_timezone(octets: str, quarters: int, dst: int, offset: timedelta) -> None:
    zone = _one(_vsa(VENDOR_3GPP, 23, bytes.fromhex(octets))).value
    assert zone == MsTimeZone(quarters, dst)
    assert isinstance(zone, MsTimeZone)
    assert zone.utc_offset == offset
    assert zone.encode().hex() == octets


@pytest.mark.parametrize("octets", ["40", "a000", "4003", "400102"])
def test_ms_timezone_errors(octets: str) -> None:
    with pytest.raises(RadiusDecodeError):
        MsTimeZone.decode(bytes.fromhex(octets))


def test_3gpp_attributes_decode_to_typed_values() -> None:
    attributes = [
        _vsa(VENDOR_3GPP, 1, b"001010000000001"),
        _vsa(VENDOR_3GPP, 2, (0xDEADBEEF).to_bytes(4, "big")),
        _vsa(VENDOR_3GPP, 3, (3).to_bytes(4, "big")),
        _vsa(VENDOR_3GPP, 6, bytes((192, 0, 2, 1))),
        _vsa(VENDOR_3GPP, 8, b"00101"),
        _vsa(VENDOR_3GPP, 10, b"5"),
        _vsa(VENDOR_3GPP, 12, b"0"),
        _vsa(VENDOR_3GPP, 13, b"0800"),
        _vsa(VENDOR_3GPP, 17, IPv6Address("2001:db8::53").packed * 2),
        _vsa(VENDOR_3GPP, 20, b"3534900698733201"),
        _vsa(VENDOR_3GPP, 21, b"\x0a"),
        _vsa(VENDOR_3GPP, 21, b"\x63"),
        _vsa(VENDOR_3GPP, 26, b"\x2e"),
        _vsa(VENDOR_3GPP, 27, b"\x03"),
        _vsa(VENDOR_3GPP, 99, b"future"),
    ]
    typed = decode_attributes(attributes)
    assert typed.get("3GPP-IMSI") == "001010000000001"
    assert typed.get("3GPP-Charging-ID") == 0xDEADBEEF  # FreeRADIUS spelling
    assert typed.get("3GPP-PDP-Type") == 3
    assert typed.get("3GPP-SGSN-Address") == IPv4Address("192.0.2.1")
    assert typed.get("3GPP-IMSI-MCC-MNC") == "00101"
    assert typed.get("3GPP-NSAPI") == "5"
    assert typed.get("3GPP-Selection-Mode") == "0"
    assert typed.get("3GPP-Charging-Characteristics") == "0800"
    assert typed.get("3GPP-IPv6-DNS-Servers") == (IPv6Address("2001:db8::53"),) * 2
    assert typed.get("3GPP-IMEISV") == "3534900698733201"
    assert typed.get_all("3GPP-RAT-Type") == (RatType.NR, 0x63)
    assert typed.get("3GPP-Negotiated-DSCP") == 0x2E
    assert typed.get("3GPP-Allocate-IP-Type") == 3
    assert typed.get("Vendor-10415-Attr-99") == b"future"


def test_standard_attributes_decode_to_typed_values() -> None:
    typed = decode_attributes(
        [
            Attribute(40, (3).to_bytes(4, "big")),
            Attribute(55, (1700000000).to_bytes(4, "big")),
            Attribute(97, bytes.fromhex("0040 2001 0db8 0001 0002")),
            Attribute(168, IPv6Address("2001:db8::1").packed),
            Attribute(101, (503).to_bytes(4, "big")),
            Attribute(31, b"491701234567"),
            Attribute(250, b"\x00\x01"),
            Attribute(26, (9).to_bytes(4, "big") + b"\x01\x03x"),
        ]
    )
    assert typed.get("Acct-Status-Type") is AcctStatusType.INTERIM_UPDATE
    assert typed.get("Event-Timestamp") == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert typed.get("Framed-IPv6-Prefix") == IPv6Network("2001:db8:1:2::/64")
    assert typed.get("Framed-IPv6-Address") == IPv6Address("2001:db8::1")
    assert typed.get("Error-Cause") == 503
    assert typed.get("Calling-Station-Id") == "491701234567"
    assert typed.get("Attr-250") == b"\x00\x01"
    assert [(a.vendor, a.value) for a in typed if a.name == "Vendor-Specific"] == [
        (9, b"\x01\x03x")
    ]


@pytest.mark.parametrize(
    "attribute",
    [
        Attribute(4, b"\x01\x02\x03"),  # IPv4 of 3 octets
        Attribute(27, b"\x00\x00\x00"),  # integer of 3 octets
        Attribute(1, b"\xff\xfe"),  # not UTF-8
        Attribute(97, b"\x00\x81"),  # prefix length 129
        Attribute(97, b"\x00\x40\x20\x01"),  # /64 with 2 octets
        Attribute(97, b"\x00\x04\xf8"),  # bits past the prefix length
        Attribute(26, b"\x00\x00\x28"),  # Vendor-Specific too short
        _vsa(VENDOR_3GPP, 1, b"00101abc"),  # IMSI not digits
        _vsa(VENDOR_3GPP, 21, b"\x06\x06"),  # RAT-Type of 2 octets
        _vsa(VENDOR_3GPP, 17, bytes(15)),  # IPv6 list not a multiple of 16
        Attribute(26, VENDOR_3GPP.to_bytes(4, "big") + b"\x01\x09abc"),  # sub-length overruns
        Attribute(26, VENDOR_3GPP.to_bytes(4, "big") + b"\x01"),  # sub-attribute cut off
    ],
)
def test_malformed_known_values_raise_decode_error(attribute: Attribute) -> None:
    with pytest.raises(RadiusDecodeError):
        decode_attributes([attribute])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("3GPP-IMSI", "001010000000001"),
        ("3GPP-RAT-Type", RatType.EUTRAN),
        ("3GPP-Charging-Id", 7),
        ("3GPP-MS-TimeZone", MsTimeZone(-20, 1)),
        ("3GPP-User-Location-Info", UserLocationInfo.decode(bytes.fromhex("8062f2101234"))),
        ("3GPP-IPv6-DNS-Servers", (IPv6Address("2001:db8::1"),)),
        ("Framed-IPv6-Prefix", IPv6Network("2001:db8:0:100::/56")),
        ("Framed-IPv6-Prefix", IPv6Network("::/0")),
        ("Event-Timestamp", datetime(2024, 7, 9, tzinfo=UTC)),
        ("Acct-Status-Type", AcctStatusType.STOP),
        ("Calling-Station-Id", "491701234567"),
        ("Class", b"\x00opaque"),
        ("MS-Primary-DNS-Server", IPv4Address("8.8.8.8")),
    ],
)
def test_make_attribute_round_trips(name: str, value: object) -> None:
    decoded = _one(make_attribute(name, value))
    assert decoded.name == name
    assert decoded.value == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("No-Such-Attribute", 1),
        ("Session-Timeout", -1),
        ("Session-Timeout", "60"),
        ("3GPP-IMSI", "00101x"),
        ("3GPP-RAT-Type", 256),
        ("3GPP-RAT-Type", AcctStatusType.START),
        ("Framed-IP-Address", "not-an-ip"),
        ("Event-Timestamp", datetime(2024, 7, 9)),
        ("Reply-Message", "x" * 254),
    ],
)
def test_make_attribute_refuses_bad_values(name: str, value: object) -> None:
    with pytest.raises(RadiusEncodeError):
        make_attribute(name, value)


def test_ipv4_dns_servers_use_microsoft_vsa() -> None:
    primary, secondary = ipv4_dns_servers("192.0.2.53", "192.0.2.54")
    # Vendor 311, types 28/29, IPv4 values.
    assert primary.value == bytes.fromhex("00000137 1c06 c0000235")
    assert secondary.value == bytes.fromhex("00000137 1d06 c0000236")
    typed = decode_attributes([primary, secondary])
    assert typed.get("MS-Secondary-DNS-Server") == IPv4Address("192.0.2.54")


def test_ipv6_dns_servers_and_session_timeout() -> None:
    attributes = ipv6_dns_servers(["2001:db8::53", "2001:db8::54"])
    assert [a.type for a in attributes] == [169, 169]
    assert session_timeout(3600) == Attribute(27, (3600).to_bytes(4, "big"))
    with pytest.raises(RadiusEncodeError):
        session_timeout(2**32)


def test_reply_messages_split_on_character_boundaries() -> None:
    text = "é" * 200  # 400 UTF-8 octets
    parts = reply_messages(text)
    assert all(len(p.value) <= 253 for p in parts)
    assert b"".join(p.value for p in parts).decode() == text
    assert reply_messages("") == (Attribute(18, b""),)
