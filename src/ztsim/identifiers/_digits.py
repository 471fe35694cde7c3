"""Shared checks for identifiers written as strings of decimal digits."""

from collections.abc import Collection

from ztsim.identifiers.errors import InvalidIdentifier

_ASCII_DIGITS = frozenset("0123456789")


def require_str(kind: str, value: object) -> str:
    """Return `value` if it is a `str`; otherwise raise naming its type."""
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind} must be a str, got {type(value).__name__}")
    return value


def require_digits(kind: str, value: str) -> None:
    """Refuse anything but ASCII 0-9: `str.isdigit` would let through '٣' or '²'."""
    if value.isascii() and value.isdigit():
        return  # the common case, without a Python-level loop
    for position, char in enumerate(value):
        if char not in _ASCII_DIGITS:
            raise InvalidIdentifier(
                f"{kind} must contain only ASCII digits 0-9, found {char!r} at position {position}"
            )


def require_length(kind: str, value: str, allowed: Collection[int]) -> None:
    """Raise unless `len(value)` is one of `allowed` (listed in the message)."""
    if len(value) not in allowed:
        options = sorted(allowed)
        if len(options) == 1:
            expected = str(options[0])
        else:
            expected = ", ".join(str(n) for n in options[:-1]) + f" or {options[-1]}"
        raise InvalidIdentifier(f"{kind} must be {expected} digits long, got {len(value)}")


def check_digit_string(kind: str, value: object, allowed: Collection[int]) -> str:
    """Run the type, alphabet and length checks in that order; return the text."""
    text = require_str(kind, value)
    require_digits(kind, text)
    require_length(kind, text, allowed)
    return text
