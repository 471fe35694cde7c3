"""SUCI: parse, format, conceal and deconceal (TS 23.003 2.2B, TS 33.501 6.12, C.3).

Two forms are read and written:

* the string of TS 29.503 (SuciString):
  ``suci-0-<MCC>-<MNC>-<routing indicator>-<scheme>-<HN key id>-<scheme output>``,
  scheme being one hex digit, the key id decimal, and the scheme output hex, or
  for the null scheme the MSIN digits themselves (with key id 0);
* the value part of the 5GS mobile identity IE, type SUCI (TS 24.501 9.11.3.4),
  i.e. the octets after IEI and length: type octet, PLMN (TS 24.008 nibble
  layout), routing indicator (4 BCD digits, F-filled), scheme, key id, output.
  Spare bits of the type octet are ignored on input and written as zero.

Only IMSI-based SUPIs (SUPI format 0) are handled; a NAI-based SUCI is refused
with `SuciError`. The string form accepts key id 0 for a non-null scheme, which
the TS 29.503 pattern does not: the binary form can carry it, and both forms must
describe the same values. Every defect raises `SuciError` and nothing else.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from ztsim.aka import ecies
from ztsim.aka.errors import SuciError

__all__ = ["Suci", "SuciError", "bcd_decode", "bcd_encode", "conceal", "deconceal"]

_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
# TS 24.501 9.11.3.4: type of identity 001 = SUCI; SUPI format 000 = IMSI.
_TYPE_SUCI = 0b001
_SUPI_FORMAT_IMSI = 0b000
# TS 24.501 9.11.3.4: type octet, PLMN (3), routing indicator (2), scheme, key id.
_HEADER_LENGTH = 8
# TS 23.003 2.2: an IMSI has at most 15 digits.
_MAX_IMSI_DIGITS = 15


def _require_digits(name: str, value: str, low: int, high: int) -> None:
    if not low <= len(value) <= high or not set(value) <= _DIGITS:
        raise SuciError(f"{name} must be {low} to {high} ASCII digits")


def bcd_encode(digits: str) -> bytes:
    """TBCD: two digits per octet, first digit in the low nibble, F-filled (or F given)."""
    padded = digits + "F" if len(digits) % 2 else digits
    nibbles = [int(c, 16) for c in padded]
    return bytes(nibbles[i + 1] << 4 | nibbles[i] for i in range(0, len(nibbles), 2))


def bcd_decode(data: bytes, name: str = "MSIN") -> str:
    """Inverse of `bcd_encode`; F is allowed only as the very last nibble."""
    nibbles = []
    for octet in data:
        nibbles.append(octet & 0x0F)
        nibbles.append(octet >> 4)
    if nibbles and nibbles[-1] == 0xF:
        nibbles.pop()
    if not nibbles or any(n > 9 for n in nibbles):
        raise SuciError(f"{name} is not BCD digits")
    return "".join(str(n) for n in nibbles)


@dataclass(frozen=True, slots=True)
class Suci:
    """An IMSI-based SUCI; `scheme_output` is always the binary one (BCD for null)."""

    mcc: str
    mnc: str
    routing_indicator: str
    scheme: int
    key_id: int
    scheme_output: bytes

    def __post_init__(self) -> None:
        for name in ("mcc", "mnc", "routing_indicator"):
            if not isinstance(getattr(self, name), str):
                raise SuciError(f"{name} must be a str")
        _require_digits("MCC", self.mcc, 3, 3)
        _require_digits("MNC", self.mnc, 2, 3)
        _require_digits("routing indicator", self.routing_indicator, 1, 4)
        if type(self.scheme) is not int or not 0 <= self.scheme <= 15:
            raise SuciError("protection scheme must be an int from 0 to 15")
        if type(self.key_id) is not int or not 0 <= self.key_id <= 255:
            raise SuciError("home network public key id must be an int from 0 to 255")
        if type(self.scheme_output) is not bytes or not self.scheme_output:
            raise SuciError("scheme output must be non-empty bytes")
        if self.scheme == ecies.NULL_SCHEME:
            if self.key_id != 0:
                raise SuciError("the null scheme requires home network public key id 0")
            msin = bcd_decode(self.scheme_output)
            if len(self.mcc) + len(self.mnc) + len(msin) > _MAX_IMSI_DIGITS:
                raise SuciError("IMSI would be longer than 15 digits")

    @classmethod
    def parse(cls, value: str | bytes) -> "Suci":
        """Read either form: `str` is the SUCI string, `bytes` the IE value."""
        if isinstance(value, str):
            return cls.from_string(value)
        if isinstance(value, bytes):
            return cls.from_bytes(value)
        raise SuciError(f"SUCI must be str or bytes, got {type(value).__name__}")

    @classmethod
    def from_string(cls, text: str) -> "Suci":
        if not isinstance(text, str):
            raise SuciError("SUCI string must be a str")
        parts = text.split("-", 7)
        if len(parts) != 8 or parts[0] != "suci":
            raise SuciError("SUCI string must be 'suci-<type>-<mcc>-<mnc>-<ri>-<s>-<id>-<out>'")
        _, supi_type, mcc, mnc, routing, scheme_text, key_text, output = parts
        if supi_type != "0":
            raise SuciError("only SUPI type 0 (IMSI) is supported")
        if len(scheme_text) != 1 or scheme_text not in _HEX:
            raise SuciError("protection scheme must be one hex digit")
        _require_digits("home network public key id", key_text, 1, 3)
        if len(key_text) > 1 and key_text[0] == "0":
            raise SuciError("home network public key id must not have leading zeros")
        scheme = int(scheme_text, 16)
        if scheme == ecies.NULL_SCHEME:
            _require_digits("MSIN", output, 1, _MAX_IMSI_DIGITS)
            scheme_output = bcd_encode(output)
        else:
            if not output or len(output) % 2 or not set(output) <= _HEX:
                raise SuciError("scheme output must be an even number of hex digits")
            scheme_output = bytes.fromhex(output)
        return cls(mcc, mnc, routing, scheme, int(key_text), scheme_output)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Suci":
        if not isinstance(data, bytes):
            raise SuciError("SUCI IE value must be bytes")
        if len(data) <= _HEADER_LENGTH:
            raise SuciError(f"SUCI IE value must be longer than {_HEADER_LENGTH} bytes")
        if data[0] & 0x07 != _TYPE_SUCI:
            raise SuciError("5GS mobile identity is not of type SUCI")
        if (data[0] >> 4) & 0x07 != _SUPI_FORMAT_IMSI:
            raise SuciError("only SUPI format IMSI is supported")
        plmn = [data[1] & 0x0F, data[1] >> 4, data[2] & 0x0F, data[2] >> 4]
        plmn += [data[3] & 0x0F, data[3] >> 4]
        mcc_digits, mnc3 = plmn[0:3], plmn[3]
        mnc_digits = plmn[4:6] + ([] if mnc3 == 0xF else [mnc3])
        if any(d > 9 for d in mcc_digits + mnc_digits):
            raise SuciError("PLMN identity is not BCD digits")
        return cls(
            mcc="".join(map(str, mcc_digits)),
            mnc="".join(map(str, mnc_digits)),
            routing_indicator=_routing_from_bcd(data[4:6]),
            scheme=data[6] & 0x0F,
            key_id=data[7],
            scheme_output=data[_HEADER_LENGTH:],
        )

    def to_string(self) -> str:
        if self.scheme == ecies.NULL_SCHEME:
            output = bcd_decode(self.scheme_output)
        else:
            output = self.scheme_output.hex()
        return (
            f"suci-0-{self.mcc}-{self.mnc}-{self.routing_indicator}-"
            f"{self.scheme:x}-{self.key_id}-{output}"
        )

    def to_bytes(self) -> bytes:
        m = self.mcc
        n = self.mnc
        mnc3 = int(n[2]) if len(n) == 3 else 0xF
        plmn = bytes(
            (int(m[1]) << 4 | int(m[0]), mnc3 << 4 | int(m[2]), int(n[1]) << 4 | int(n[0]))
        )
        routing = bcd_encode(self.routing_indicator.ljust(4, "F"))
        header = bytes((_SUPI_FORMAT_IMSI << 4 | _TYPE_SUCI,)) + plmn + routing
        return header + bytes((self.scheme, self.key_id)) + self.scheme_output

    def __str__(self) -> str:
        return self.to_string()


def _routing_from_bcd(data: bytes) -> str:
    nibbles = [data[0] & 0x0F, data[0] >> 4, data[1] & 0x0F, data[1] >> 4]
    while nibbles and nibbles[-1] == 0xF:
        nibbles.pop()
    if not nibbles or any(n > 9 for n in nibbles):
        raise SuciError("routing indicator is not BCD digits")
    return "".join(map(str, nibbles))


def _split_supi(supi: str, mnc_length: int) -> tuple[str, str, str]:
    if not isinstance(supi, str) or not supi.startswith("imsi-"):
        raise SuciError("SUPI must be 'imsi-' followed by the IMSI digits")
    digits = supi[5:]
    _require_digits("IMSI", digits, 6, _MAX_IMSI_DIGITS)
    if mnc_length not in (2, 3):
        raise SuciError("MNC length must be 2 or 3")
    return digits[:3], digits[3 : 3 + mnc_length], digits[3 + mnc_length :]


def conceal(
    supi: str,
    hn_public_key: bytes,
    key_id: int,
    scheme: int,
    ephemeral_private_key: bytes,
    *,
    mnc_length: int = 2,
    routing_indicator: str = "0",
) -> Suci:
    """The SUCI a UE would send for `supi` ('imsi-<digits>'); randomness injected.

    For the null scheme the keys are ignored and `key_id` must be 0.
    """
    mcc, mnc, msin = _split_supi(supi, mnc_length)
    plaintext = bcd_encode(msin)
    if scheme == ecies.NULL_SCHEME:
        output = plaintext
    else:
        output = ecies.encrypt(scheme, hn_public_key, ephemeral_private_key, plaintext)
    return Suci(mcc, mnc, routing_indicator, scheme, key_id, output)


def deconceal(suci: str | bytes | Suci, hn_keys: Mapping[int, bytes]) -> str:
    """The SUPI ('imsi-<digits>') behind a SUCI, using the private key of its key id.

    `hn_keys` maps home network public key identifiers to raw 32-byte private
    keys; several may be live during a key rotation. Unknown key ids, invalid
    points, bad tags and malformed plaintexts raise `SuciError`.
    """
    value = suci if isinstance(suci, Suci) else Suci.parse(suci)
    if value.scheme == ecies.NULL_SCHEME:
        plaintext = value.scheme_output
    else:
        if value.scheme not in (ecies.PROFILE_A, ecies.PROFILE_B):
            raise SuciError(f"protection scheme {value.scheme} is not supported")
        private_key = hn_keys.get(value.key_id)
        if private_key is None:
            raise SuciError(f"no home network private key with id {value.key_id}")
        plaintext = ecies.decrypt(value.scheme, private_key, value.scheme_output)
    msin = bcd_decode(plaintext)
    imsi = value.mcc + value.mnc + msin
    if len(imsi) > _MAX_IMSI_DIGITS:
        raise SuciError("IMSI would be longer than 15 digits")
    return f"imsi-{imsi}"
