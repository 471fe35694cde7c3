"""The Luhn mod-10 check digit (ISO/IEC 7812-1 Annex B).

Used by the ICCID (ITU-T E.118) and the IMEI (3GPP TS 23.003 §6.2.1 and Annex B).
"""

from ztsim.identifiers._digits import require_digits
from ztsim.identifiers.errors import InvalidIdentifier


def luhn_check_digit(body: str) -> int:
    """Return the digit that, appended to `body`, makes a valid Luhn number.

    `body` must be a non-empty string of ASCII digits; anything else raises
    `InvalidIdentifier`.
    """
    if not isinstance(body, str):
        raise InvalidIdentifier(f"Luhn body must be a str, got {type(body).__name__}")
    if not body:
        raise InvalidIdentifier("Luhn body must not be empty")
    require_digits("Luhn body", body)
    total = 0
    # The rightmost body digit sits next to the check digit, so it is the first doubled.
    for index, char in enumerate(reversed(body)):
        digit = ord(char) - ord("0")
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def require_luhn(kind: str, value: str) -> None:
    """Raise unless the last digit of `value` is the Luhn digit of the rest."""
    expected = luhn_check_digit(value[:-1])
    found = int(value[-1])
    if found != expected:
        raise InvalidIdentifier(f"{kind} check digit is {found}, expected {expected}")
