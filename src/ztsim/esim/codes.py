"""Matching IDs and confirmation codes: generated from injected randomness, kept as hashes.

A Matching ID is a bearer secret for one profile download: whoever holds it can fetch
the profile. It is 125 random bits written as 25 symbols of Crockford's base32 in five
dash-separated groups: inside SGP.22's alphabet (upper case, digits, '-'), and without
I, L, O and U, so a person typing it from paper cannot confuse 0/O or 1/I/L.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

Random = Callable[[int], bytes]

# Crockford's base32 alphabet (www.crockford.com/base32.html): no I, L, O, U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BITS_PER_SYMBOL = 5
# The issue asks for at least 100 bits; 25 symbols give 125.
MATCHING_ID_SYMBOLS = 25
MATCHING_ID_GROUP = 5
MATCHING_ID_BITS = MATCHING_ID_SYMBOLS * _BITS_PER_SYMBOL
# 8 symbols (40 bits): typed by the employee on the phone when the LPA asks for it. Letters
# as well as digits, so the code never hides among the numbers (ICCIDs, IMSIs) in logs.
CONFIRMATION_SYMBOLS = 8


def _symbols(rand: Random, count: int) -> str:
    bits = count * _BITS_PER_SYMBOL
    raw = rand((bits + 7) // 8)
    if len(raw) * 8 < bits:
        raise ValueError("the random source returned too few bytes")
    value = int.from_bytes(raw, "big") >> (len(raw) * 8 - bits)
    out = []
    for _ in range(count):
        out.append(ALPHABET[value & 0x1F])
        value >>= _BITS_PER_SYMBOL
    return "".join(reversed(out))


def new_matching_id(rand: Random = os.urandom) -> str:
    """`XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`, 125 bits from `rand`."""
    text = _symbols(rand, MATCHING_ID_SYMBOLS)
    groups = [text[i : i + MATCHING_ID_GROUP] for i in range(0, len(text), MATCHING_ID_GROUP)]
    return "-".join(groups)


def new_confirmation_code(rand: Random = os.urandom) -> str:
    return _symbols(rand, CONFIRMATION_SYMBOLS)


def matching_id_hash(matching_id: str) -> bytes:
    """Lookup key for a matching ID. A plain hash suffices: the input has 125 random bits."""
    return hashlib.sha256(b"ztsim-esim-matching-id\x00" + matching_id.encode("ascii")).digest()


def confirmation_hash(code: str) -> bytes:
    """SHA-256 of the code, the `hashCc` that ES2+ passes to the SM-DP+ (SGP.22 §5.3.2).

    Unsalted on purpose, as the SM-DP+ expects exactly this value; 40 bits are not out of
    reach offline, which is acceptable because the code only guards a download that also
    needs the (sealed) matching ID."""
    return hashlib.sha256(code.encode("ascii")).digest()
