"""Type and length checks shared by the modules of this package."""

from ztsim.aka.errors import AkaInputError


def fixed(name: str, value: object, length: int) -> bytes:
    """Return `value` if it is `bytes` of exactly `length` octets.

    The message names the field and lengths only: the value may be a key.
    """
    if type(value) is not bytes:
        raise AkaInputError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise AkaInputError(f"{name} must be {length} bytes, got {len(value)}")
    return value


def ranged(name: str, value: object, low: int, high: int) -> bytes:
    """Return `value` if it is `bytes` whose length lies in [low, high]."""
    if type(value) is not bytes:
        raise AkaInputError(f"{name} must be bytes, got {type(value).__name__}")
    if not low <= len(value) <= high:
        raise AkaInputError(f"{name} must be {low} to {high} bytes, got {len(value)}")
    return value


def text(name: str, value: object) -> bytes:
    """Return the UTF-8 encoding of a non-empty `str` that fits a 16-bit KDF length."""
    if not isinstance(value, str):
        raise AkaInputError(f"{name} must be a str, got {type(value).__name__}")
    encoded = value.encode("utf-8")
    if not 0 < len(encoded) <= 0xFFFF:
        raise AkaInputError(f"{name} must be 1 to 65535 UTF-8 bytes, got {len(encoded)}")
    return encoded
