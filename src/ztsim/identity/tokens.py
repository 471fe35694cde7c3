"""API tokens: 256 random bits, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

TOKEN_PREFIX = "ztsim_"  # noqa: S105 - a public marker, not a secret
_TOKEN_BYTES = 32
DISPLAY_PREFIX_LEN = len(TOKEN_PREFIX) + 6


def generate_token(random: Callable[[int], bytes] = os.urandom) -> str:
    body = base64.urlsafe_b64encode(random(_TOKEN_BYTES)).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + body


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_LEN]


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_PREFIX) and len(text) == len(TOKEN_PREFIX) + 43
