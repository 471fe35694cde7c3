"""EID: the identifier of an eUICC (the chip that holds eSIM profiles)."""

from dataclasses import dataclass

from ztsim.identifiers._digits import check_digit_string, require_digits, require_length
from ztsim.identifiers.errors import InvalidIdentifier

# GSMA SGP.29 §2: an EID is 32 decimal digits, the last two being check digits.
EID_LENGTH = 32
# GSMA SGP.29 §2: the EID starts with the major industry identifier 89 like an ICCID.
EID_PREFIX = "89"
# GSMA SGP.29 §2 (ISO/IEC 7064 MOD 97-10): the whole number mod 97 must equal 1.
_MODULUS = 97


def _check_digits(body30: str) -> str:
    # Appending "00" and taking 98 - remainder makes the 32 digit number = 1 (mod 97).
    return f"{98 - int(body30 + '00') % _MODULUS:02d}"


@dataclass(frozen=True, slots=True)
class Eid:
    """An eUICC Identifier: 30 digits followed by two MOD 97-10 check digits."""

    value: str

    def __post_init__(self) -> None:
        text = check_digit_string("EID", self.value, (EID_LENGTH,))
        if not text.startswith(EID_PREFIX):
            raise InvalidIdentifier(f"EID must start with {EID_PREFIX}, got {text[:2]}")
        if int(text) % _MODULUS != 1:
            expected = _check_digits(text[:-2])
            raise InvalidIdentifier(f"EID check digits are {text[-2:]}, expected {expected}")

    @classmethod
    def with_check_digits(cls, body30: str) -> "Eid":
        """Append the two check digits to a 30 digit `body30` and validate the result."""
        if not isinstance(body30, str):
            raise InvalidIdentifier(f"EID body must be a str, got {type(body30).__name__}")
        require_digits("EID body", body30)
        require_length("EID body", body30, (EID_LENGTH - 2,))
        return cls(body30 + _check_digits(body30))

    def __str__(self) -> str:
        return self.value
