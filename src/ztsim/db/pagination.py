"""Opaque cursors for keyset pagination (no OFFSET: page N costs what page 1 costs)."""

from __future__ import annotations

import base64
import binascii
import json

from ztsim.errors import InvalidInput

MAX_LIMIT = 1000


def encode_cursor(key: str | int) -> str:
    raw = json.dumps([key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, expected: type[str] | type[int]) -> str | int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput("cursor is not one this API issued") from None
    if (
        not isinstance(value, list)
        or len(value) != 1
        or type(value[0]) is not expected  # bool is an int subclass: be exact
    ):
        raise InvalidInput("cursor is not one this API issued")
    key: str | int = value[0]
    return key


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return limit
