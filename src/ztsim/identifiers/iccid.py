"""ICCID: the serial number printed on a SIM card or stored in an eUICC profile."""

from dataclasses import dataclass

from ztsim.identifiers._digits import check_digit_string, require_digits, require_length
from ztsim.identifiers.errors import InvalidIdentifier
from ztsim.identifiers.luhn import luhn_check_digit, require_luhn

# ITU-T E.118 §4.1: the major industry identifier 89 marks telecommunication cards.
ICCID_PREFIX = "89"
# ITU-T E.118: at most 19 digits plus the Luhn check digit; 18 + 1 is also in use.
ICCID_LENGTHS = (19, 20)


@dataclass(frozen=True, slots=True)
class Iccid:
    """An Integrated Circuit Card Identifier: `89`, issuer and serial, Luhn digit last."""

    value: str

    def __post_init__(self) -> None:
        text = check_digit_string("ICCID", self.value, ICCID_LENGTHS)
        if not text.startswith(ICCID_PREFIX):
            raise InvalidIdentifier(
                f"ICCID must start with issuer prefix {ICCID_PREFIX}, got {text[:2]}"
            )
        require_luhn("ICCID", text)

    @classmethod
    def with_check_digit(cls, body: str) -> "Iccid":
        """Append the Luhn digit to an 18 or 19 digit `body` and validate the result."""
        if not isinstance(body, str):
            raise InvalidIdentifier(f"ICCID body must be a str, got {type(body).__name__}")
        require_digits("ICCID body", body)
        require_length("ICCID body", body, [n - 1 for n in ICCID_LENGTHS])
        return cls(body + str(luhn_check_digit(body)))

    def __str__(self) -> str:
        return self.value
