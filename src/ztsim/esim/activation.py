"""eSIM Activation Codes (GSMA SGP.22 §4.1): what a QR code hands to the LPA.

Form: `1$<SM-DP+ address>$<Matching ID>[$<SM-DP+ OID>][$<Confirmation Code Required Flag>]`,
prefixed with `LPA:` inside a QR code. An OID-less code that needs a confirmation
code is written with an empty OID field: `1$<address>$<id>$$1`.

The Matching ID works like a one-time bearer token for the profile download, so
error messages and `repr()` never show it.
"""

import re
from dataclasses import dataclass, field

from ztsim.errors import InvalidInput

# SGP.22 §4.1: the scheme prefix used when the code is carried in a QR code.
QR_PREFIX = "LPA:"
# SGP.22 §4.1: AC_Format, the only defined value.
AC_FORMAT = "1"
# SGP.22 §4.1: the field delimiter.
DELIMITER = "$"
# SGP.22 §4.1: "1" is the only defined value of the Confirmation Code Required Flag.
CONFIRMATION_FLAG = "1"
# SGP.22 §4.1 gives the alphabet but no limit we could find; 255 is a local choice.
MATCHING_ID_MAX_LENGTH = 255
# RFC 1035 §2.3.4: 255 octets on the wire is at most 253 characters in text form.
FQDN_MAX_LENGTH = 253
# RFC 1035 §2.3.4: a label is 1 to 63 octets.
LABEL_MAX_LENGTH = 63
# SGP.22 §4.1: AC_Format, address and Matching ID, then up to two optional fields.
MIN_FIELDS = 3
MAX_FIELDS = 5

# RFC 1123 §2.1 host-name label: letters, digits, hyphens, no hyphen at either end.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_LABEL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
# SGP.22 §4.1: the Matching ID uses upper-case letters, digits and '-' only.
_MATCHING_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
# ITU-T X.660: each arc is a non-negative integer; leading zeros would make two spellings.
_ARC = re.compile(r"0|[1-9][0-9]*")
# ITU-T X.660 §A.2 / X.690 §8.19.4: under roots 0 and 1 the second arc is at most 39.
_SMALL_ROOT_MAX_SECOND_ARC = 39


class InvalidActivationCode(InvalidInput):
    """Text or fields that do not form an SGP.22 Activation Code."""


def _check_smdp_address(address: str) -> None:
    if not address:
        raise InvalidActivationCode("SM-DP+ address is empty")
    for position, char in enumerate(address):
        if char != "." and char not in _LABEL_CHARS:
            raise InvalidActivationCode(
                f"SM-DP+ address contains {char!r} at position {position}; "
                "only letters, digits, '-' and '.' are allowed"
            )
    if len(address) > FQDN_MAX_LENGTH:
        raise InvalidActivationCode(
            f"SM-DP+ address is {len(address)} characters long, at most {FQDN_MAX_LENGTH} allowed"
        )
    labels = address.split(".")
    if len(labels) < 2:
        raise InvalidActivationCode("SM-DP+ address must be an FQDN with at least two labels")
    for number, label in enumerate(labels, start=1):
        if not label:
            raise InvalidActivationCode(f"SM-DP+ address label {number} is empty")
        if len(label) > LABEL_MAX_LENGTH:
            raise InvalidActivationCode(
                f"SM-DP+ address label {number} is {len(label)} characters long, "
                f"at most {LABEL_MAX_LENGTH} allowed"
            )
        if not _LABEL.fullmatch(label):
            raise InvalidActivationCode(
                f"SM-DP+ address label {number} must not start or end with '-'"
            )
    # RFC 3696 §2: a top-level domain is never all-numeric, which is what rules out IPv4.
    if labels[-1].isdigit():
        raise InvalidActivationCode(
            "SM-DP+ address must be an FQDN, not an IP address (last label is all digits)"
        )


def _check_matching_id(matching_id: str) -> None:
    if not matching_id:
        raise InvalidActivationCode("Matching ID is empty")
    if len(matching_id) > MATCHING_ID_MAX_LENGTH:
        raise InvalidActivationCode(
            f"Matching ID is {len(matching_id)} characters long, "
            f"at most {MATCHING_ID_MAX_LENGTH} allowed"
        )
    for position, char in enumerate(matching_id):
        if char not in _MATCHING_ID_CHARS:
            raise InvalidActivationCode(
                f"Matching ID has a character other than 0-9, A-Z or '-' at position {position}"
            )


def _check_oid(oid: str) -> None:
    if not oid:
        raise InvalidActivationCode("SM-DP+ OID is empty")
    arcs = oid.split(".")
    if len(arcs) < 2:
        raise InvalidActivationCode("SM-DP+ OID must have at least two arcs")
    for number, arc in enumerate(arcs, start=1):
        if not _ARC.fullmatch(arc):
            raise InvalidActivationCode(
                f"SM-DP+ OID arc {number} must be a decimal integer without leading zeros"
            )
    root, second = int(arcs[0]), int(arcs[1])
    if root > 2:
        raise InvalidActivationCode(f"SM-DP+ OID first arc must be 0, 1 or 2, got {root}")
    if root < 2 and second > _SMALL_ROOT_MAX_SECOND_ARC:
        raise InvalidActivationCode(
            f"SM-DP+ OID second arc must be at most {_SMALL_ROOT_MAX_SECOND_ARC} "
            f"under root {root}, got {second}"
        )


def _require_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidActivationCode(f"{name} must be a str, got {type(value).__name__}")
    if DELIMITER in value:
        raise InvalidActivationCode(f"{name} must not contain '{DELIMITER}' (the field delimiter)")
    return value


@dataclass(frozen=True, slots=True)
class ActivationCode:
    """A checked Activation Code; construct it directly or with `parse`."""

    smdp_address: str
    matching_id: str = field(repr=False)
    oid: str | None = None
    confirmation_code_required: bool = False

    def __post_init__(self) -> None:
        _check_smdp_address(_require_str("SM-DP+ address", self.smdp_address))
        _check_matching_id(_require_str("Matching ID", self.matching_id))
        if self.oid is not None:
            _check_oid(_require_str("SM-DP+ OID", self.oid))
        # Exact type: 1 or "1" here would be a caller confusing text and meaning.
        if type(self.confirmation_code_required) is not bool:
            raise InvalidActivationCode(
                "confirmation_code_required must be a bool, "
                f"got {type(self.confirmation_code_required).__name__}"
            )

    @classmethod
    def parse(cls, text: str) -> "ActivationCode":
        """Read a code such as `LPA:1$SMDP.EXAMPLE.COM$ABC-123`; the `LPA:` prefix is optional."""
        if not isinstance(text, str):
            raise InvalidActivationCode(f"Activation Code must be a str, got {type(text).__name__}")
        fields = text.removeprefix(QR_PREFIX).split(DELIMITER)
        if len(fields) < MIN_FIELDS:
            raise InvalidActivationCode(
                f"Activation Code needs at least {MIN_FIELDS} '$'-separated fields, "
                f"got {len(fields)}"
            )
        if len(fields) > MAX_FIELDS:
            raise InvalidActivationCode(
                f"Activation Code has {len(fields)} '$'-separated fields, at most {MAX_FIELDS} allowed"
            )
        if fields[0] != AC_FORMAT:
            raise InvalidActivationCode(f"Activation Code format indicator must be {AC_FORMAT}")
        oid: str | None = None
        confirmation_code_required = False
        if len(fields) == MAX_FIELDS:
            if fields[4] != CONFIRMATION_FLAG:
                raise InvalidActivationCode(
                    f"Confirmation Code Required Flag must be {CONFIRMATION_FLAG} when present"
                )
            confirmation_code_required = True
            # SGP.22 §4.1: the OID field may be left empty only to reach the flag.
            oid = fields[3] or None
        elif len(fields) == MAX_FIELDS - 1:
            oid = fields[3]
        return cls(fields[1], fields[2], oid, confirmation_code_required)

    def to_qr_text(self) -> str:
        """The text to put into a QR code: `LPA:1$...`."""
        return QR_PREFIX + str(self)

    def __str__(self) -> str:
        fields = [AC_FORMAT, self.smdp_address, self.matching_id]
        if self.confirmation_code_required:
            fields += [self.oid or "", CONFIRMATION_FLAG]
        elif self.oid is not None:
            fields.append(self.oid)
        return DELIMITER.join(fields)
