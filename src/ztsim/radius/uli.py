"""3GPP-User-Location-Info: where the UE is (TS 29.061 §16.4.7.2, item 22).

The value is a Geographic Location Type octet followed by a Geographic Location
field. CGI/SAI/RAI are coded as in TS 29.060 §7.7.51; TAI, ECGI and eNodeB IDs
as in TS 29.274 §8.21; the 5GS types (NCGI, 5GS TAI) as TS 29.061 describes
from TS 38.413 (24-bit TAC, 36-bit NR Cell Identity). Types this module does not
decode keep their raw octets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError

# TS 24.008 §10.5.1.13 / TS 29.274 §8.21: MCC and MNC take three BCD octets.
PLMN_LENGTH = 3
# TS 24.008 §10.5.1.13: a two-digit MNC fills MNC digit 3 with 1111.
_FILLER = 0xF


class LocationType(IntEnum):
    """Geographic Location Type values (TS 29.061 §16.4.7.2, 3GPP-User-Location-Info)."""

    CGI = 0
    SAI = 1
    RAI = 2
    TAI = 128
    ECGI = 129
    TAI_AND_ECGI = 130
    ENODEB_ID = 131
    TAI_AND_ENODEB_ID = 132
    EXTENDED_ENODEB_ID = 133
    TAI_AND_EXTENDED_ENODEB_ID = 134
    NCGI = 135
    TAI_5GS = 136
    TAI_5GS_AND_NCGI = 137
    NG_RAN_NODE_ID = 138
    TAI_5GS_AND_NG_RAN_NODE_ID = 139


@dataclass(frozen=True, slots=True)
class Plmn:
    """A PLMN identity: three-digit MCC and two- or three-digit MNC."""

    mcc: str
    mnc: str

    def __post_init__(self) -> None:
        if len(self.mcc) != 3 or not (self.mcc.isascii() and self.mcc.isdigit()):
            raise RadiusEncodeError("MCC must be three digits")
        if len(self.mnc) not in (2, 3) or not (self.mnc.isascii() and self.mnc.isdigit()):
            raise RadiusEncodeError("MNC must be two or three digits")

    @classmethod
    def decode(cls, octets: bytes) -> Plmn:
        if len(octets) != PLMN_LENGTH:
            raise RadiusDecodeError(f"PLMN identity is {len(octets)} octets, not 3")
        mcc = (octets[0] & 0xF, octets[0] >> 4, octets[1] & 0xF)
        mnc3, mnc = octets[1] >> 4, (octets[2] & 0xF, octets[2] >> 4)
        digits = [*mcc, *mnc] + ([] if mnc3 == _FILLER else [mnc3])
        if any(d > 9 for d in digits):
            raise RadiusDecodeError("PLMN identity holds a non-BCD digit")
        return cls("".join(map(str, mcc)), "".join(map(str, digits[3:])))

    def encode(self) -> bytes:
        m = [int(c) for c in self.mcc]
        n = [int(c) for c in self.mnc]
        mnc3 = n[2] if len(n) == 3 else _FILLER
        return bytes((m[1] << 4 | m[0], mnc3 << 4 | m[2], n[1] << 4 | n[0]))


def _check_range(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise RadiusEncodeError(f"{name} must fit in {bits} bits")


@dataclass(frozen=True, slots=True)
class CellGlobalId:
    """CGI (TS 23.003 §4.3.1): PLMN, Location Area Code, Cell Identity."""

    plmn: Plmn
    lac: int
    ci: int

    def __post_init__(self) -> None:
        _check_range("LAC", self.lac, 16)
        _check_range("CI", self.ci, 16)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.lac.to_bytes(2, "big") + self.ci.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class ServiceAreaId:
    """SAI (TS 25.413 §9.2.3.9): PLMN, LAC, Service Area Code."""

    plmn: Plmn
    lac: int
    sac: int

    def __post_init__(self) -> None:
        _check_range("LAC", self.lac, 16)
        _check_range("SAC", self.sac, 16)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.lac.to_bytes(2, "big") + self.sac.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class RoutingAreaId:
    """RAI (TS 23.003 §4.2); TS 29.060 §7.7.51 codes RAC in one octet then 0xFF."""

    plmn: Plmn
    lac: int
    rac: int

    def __post_init__(self) -> None:
        _check_range("LAC", self.lac, 16)
        _check_range("RAC", self.rac, 8)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.lac.to_bytes(2, "big") + bytes((self.rac, 0xFF))


@dataclass(frozen=True, slots=True)
class TrackingAreaId:
    """TAI: PLMN and TAC; 16-bit TAC in EPS (TS 29.274 §8.21.4), 24-bit in 5GS."""

    plmn: Plmn
    tac: int
    five_gs: bool = False

    def __post_init__(self) -> None:
        _check_range("TAC", self.tac, 24 if self.five_gs else 16)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.tac.to_bytes(3 if self.five_gs else 2, "big")


@dataclass(frozen=True, slots=True)
class EutranCellGlobalId:
    """ECGI: PLMN and 28-bit E-UTRAN Cell Identity (TS 29.274 §8.21.5)."""

    plmn: Plmn
    eci: int

    def __post_init__(self) -> None:
        _check_range("ECI", self.eci, 28)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.eci.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class NrCellGlobalId:
    """NCGI: PLMN and 36-bit NR Cell Identity, after four spare bits."""

    plmn: Plmn
    nci: int

    def __post_init__(self) -> None:
        _check_range("NCI", self.nci, 36)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.nci.to_bytes(5, "big")


@dataclass(frozen=True, slots=True)
class MacroEnodebId:
    """Macro eNodeB ID: PLMN and 20-bit ID after four spare bits (TS 29.274 §8.21.7)."""

    plmn: Plmn
    enodeb_id: int

    def __post_init__(self) -> None:
        _check_range("eNodeB ID", self.enodeb_id, 20)

    def encode(self) -> bytes:
        return self.plmn.encode() + self.enodeb_id.to_bytes(3, "big")


Location = (
    CellGlobalId
    | ServiceAreaId
    | RoutingAreaId
    | TrackingAreaId
    | EutranCellGlobalId
    | NrCellGlobalId
    | MacroEnodebId
)

# Location type -> the parts it holds, each as (kind, octet length).
_LAYOUTS: dict[int, tuple[tuple[str, int], ...]] = {
    LocationType.CGI: (("cgi", 7),),
    LocationType.SAI: (("sai", 7),),
    LocationType.RAI: (("rai", 7),),
    LocationType.TAI: (("tai", 5),),
    LocationType.ECGI: (("ecgi", 7),),
    LocationType.TAI_AND_ECGI: (("tai", 5), ("ecgi", 7)),
    LocationType.ENODEB_ID: (("enb", 6),),
    LocationType.TAI_AND_ENODEB_ID: (("tai", 5), ("enb", 6)),
    LocationType.NCGI: (("ncgi", 8),),
    LocationType.TAI_5GS: (("tai5", 6),),
    LocationType.TAI_5GS_AND_NCGI: (("tai5", 6), ("ncgi", 8)),
}


def _decode_part(kind: str, octets: bytes) -> Location:
    plmn = Plmn.decode(octets[:PLMN_LENGTH])
    rest = octets[PLMN_LENGTH:]
    if kind == "cgi":
        return CellGlobalId(plmn, int.from_bytes(rest[:2], "big"), int.from_bytes(rest[2:], "big"))
    if kind == "sai":
        return ServiceAreaId(plmn, int.from_bytes(rest[:2], "big"), int.from_bytes(rest[2:], "big"))
    if kind == "rai":
        return RoutingAreaId(plmn, int.from_bytes(rest[:2], "big"), rest[2])
    if kind == "tai":
        return TrackingAreaId(plmn, int.from_bytes(rest, "big"))
    if kind == "tai5":
        return TrackingAreaId(plmn, int.from_bytes(rest, "big"), five_gs=True)
    value = int.from_bytes(rest, "big")
    # Leading spare bits are ignored on receipt, as spare bits are (TS 29.274 §8.2).
    if kind == "ecgi":
        return EutranCellGlobalId(plmn, value & 0x0FFFFFFF)
    if kind == "ncgi":
        return NrCellGlobalId(plmn, value & 0xFFFFFFFFF)
    return MacroEnodebId(plmn, value & 0xFFFFF)


@dataclass(frozen=True, slots=True)
class UserLocationInfo:
    """A decoded 3GPP-User-Location-Info value.

    `locations` holds the decoded parts in wire order (e.g. TAI then ECGI);
    it is empty for location types this module does not decode, whose
    Geographic Location octets stay in `raw`.
    """

    location_type: LocationType | int
    locations: tuple[Location, ...]
    raw: bytes

    @classmethod
    def decode(cls, value: bytes) -> UserLocationInfo:
        if not value:
            raise RadiusDecodeError("3GPP-User-Location-Info is empty")
        type_octet, field = value[0], value[1:]
        layout = _LAYOUTS.get(type_octet)
        if layout is None:
            return cls(_location_type(type_octet), (), field)
        expected = sum(length for _, length in layout)
        if len(field) != expected:
            raise RadiusDecodeError(
                f"3GPP-User-Location-Info type {type_octet} needs {expected} octets, "
                f"got {len(field)}"
            )
        parts: list[Location] = []
        offset = 0
        for kind, length in layout:
            parts.append(_decode_part(kind, field[offset : offset + length]))
            offset += length
        return cls(LocationType(type_octet), tuple(parts), field)

    @classmethod
    def build(cls, location_type: LocationType, *locations: Location) -> UserLocationInfo:
        """Assemble a value from typed parts, for simulators and tests."""
        field = b"".join(part.encode() for part in locations)
        try:
            decoded = cls.decode(bytes((location_type,)) + field)
        except RadiusDecodeError:
            decoded = None
        if decoded is None or decoded.locations != locations:
            raise RadiusEncodeError(f"parts do not match location type {location_type.name}")
        return decoded

    def encode(self) -> bytes:
        return bytes((self.location_type,)) + self.raw

    def _first(self, kind: type[Location]) -> Location | None:
        return next((p for p in self.locations if isinstance(p, kind)), None)

    @property
    def tai(self) -> TrackingAreaId | None:
        found = self._first(TrackingAreaId)
        return found if isinstance(found, TrackingAreaId) else None

    @property
    def ecgi(self) -> EutranCellGlobalId | None:
        found = self._first(EutranCellGlobalId)
        return found if isinstance(found, EutranCellGlobalId) else None

    @property
    def ncgi(self) -> NrCellGlobalId | None:
        found = self._first(NrCellGlobalId)
        return found if isinstance(found, NrCellGlobalId) else None

    @property
    def plmn(self) -> Plmn | None:
        """The PLMN of the first decoded part (the serving network)."""
        return self.locations[0].plmn if self.locations else None


def _location_type(value: int) -> LocationType | int:
    try:
        return LocationType(value)
    except ValueError:
        return value


# -- the location an access event carries ----------------------------------------------------

# A 3GPP VSA holding 3GPP-User-Location-Info: Vendor-Id 10415 (RFC 2865 §5.26), then
# sub-attribute type 22 (TS 29.061 §16.4.7.2). Its absence, the common case, costs one
# byte search.
_VSA = 26
_VENDOR_3GPP = (10415).to_bytes(4, "big")
_ULI_TYPE = 22
_ULI_MARK = _VENDOR_3GPP + bytes((_ULI_TYPE,))


def may_carry_location(datagram: bytes) -> bool:
    """Whether a RADIUS packet may carry 3GPP-User-Location-Info (a byte search, for the
    hot path; `find_location` then reads it off the hot path)."""
    return _ULI_MARK in datagram


def find_location(datagram: bytes) -> bytes | None:
    """The first 3GPP-User-Location-Info value of a RADIUS packet, walking its attributes
    (RFC 2865 §5) and the 3GPP sub-attributes of its Vendor-Specifics; None if absent or
    the packet is malformed where the walk goes."""
    if len(datagram) < 20:
        return None
    length = min(len(datagram), int.from_bytes(datagram[2:4], "big"))
    offset = 20
    while offset + 2 <= length:
        end = offset + datagram[offset + 1]
        if end < offset + 2 or end > length:
            return None
        if datagram[offset] == _VSA and datagram[offset + 2 : offset + 6] == _VENDOR_3GPP:
            sub = offset + 6
            while sub + 2 <= end:
                sub_end = sub + datagram[sub + 1]
                if sub_end < sub + 2 or sub_end > end:
                    break
                if datagram[sub] == _ULI_TYPE:
                    return datagram[sub + 2 : sub_end]
                sub = sub_end
        offset = end
    return None


def location_summary(value: bytes) -> dict[str, object] | None:
    """What an event says of where the UE was: the serving PLMN as "MCC-MNC" and, where
    the value holds them, the TAC and the E-UTRAN or NR cell identity. None when the
    value does not decode or names no PLMN."""
    try:
        uli = UserLocationInfo.decode(value)
    except (RadiusDecodeError, RadiusEncodeError):
        return None
    plmn = uli.plmn
    if plmn is None:
        return None
    summary: dict[str, object] = {"plmn": f"{plmn.mcc}-{plmn.mnc}"}
    if uli.tai is not None:
        summary["tac"] = uli.tai.tac
    if uli.ecgi is not None:
        summary["eci"] = uli.ecgi.eci
    if uli.ncgi is not None:
        summary["nci"] = uli.ncgi.nci
    return summary
