"""Sealing of secrets at rest: AES-256-GCM under a key-encryption key (KEK).

The KEK lives outside the database (an environment variable or a 0600 key file).
Every sealed value carries the id of the KEK that sealed it, so that during a
rotation both the old and the new KEK can be loaded and each value is opened by
the key that sealed it. The associated data binds a ciphertext to its row (for a
SIM, the ICCID): a sealed K copied onto another SIM does not open.

Envelope: version (1) || kek id (4) || nonce (12) || ciphertext || tag (16).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ztsim.errors import InvalidInput, SealingError

KEY_BYTES = 32
_VERSION = 1
_KID_BYTES = 4
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces
_HEADER = 1 + _KID_BYTES + _NONCE_BYTES


def key_id(key: bytes) -> bytes:
    """A short public fingerprint of a KEK (not reversible to the key)."""
    return hashlib.sha256(b"ztsim-kek-id\x00" + key).digest()[:_KID_BYTES]


def parse_key(text: str) -> bytes:
    """Accept a 32-byte key written as hex (64 chars) or URL-safe base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 2 * KEY_BYTES else base64.urlsafe_b64decode(text)
    except (ValueError, binascii.Error):
        raise InvalidInput("master key must be 32 bytes written as hex or base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidInput("master key must be 32 bytes written as hex or base64")
    return key


def format_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


class Sealer:
    """Seals with the current KEK; opens with whichever loaded KEK sealed a value."""

    __slots__ = ("_current", "_current_kid", "_keys", "_random")

    def __init__(
        self,
        current: bytes,
        others: Iterable[bytes] = (),
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if len(current) != KEY_BYTES or any(len(k) != KEY_BYTES for k in others):
            raise InvalidInput("a key-encryption key must be 32 bytes")
        self._random = random
        self._current_kid = key_id(current)
        self._current = AESGCM(current)
        self._keys = {key_id(k): AESGCM(k) for k in others}
        self._keys[self._current_kid] = self._current

    def __repr__(self) -> str:
        return f"Sealer(current_kid={self._current_kid.hex()})"

    @property
    def current_key_id(self) -> bytes:
        return self._current_kid

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = self._random(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext, associated_data)
        return bytes((_VERSION,)) + self._current_kid + nonce + sealed

    def open(self, envelope: bytes, associated_data: bytes) -> bytes:
        if len(envelope) < _HEADER + 16 or envelope[0] != _VERSION:
            raise SealingError("sealed value is malformed")
        aead = self._keys.get(envelope[1 : 1 + _KID_BYTES])
        if aead is None:
            raise SealingError("sealed value was sealed by a key-encryption key that is not loaded")
        nonce = envelope[1 + _KID_BYTES : _HEADER]
        try:
            return aead.decrypt(nonce, envelope[_HEADER:], associated_data)
        except InvalidTag:
            raise SealingError("sealed value does not open: wrong key or tampered data") from None

    def sealed_with_current(self, envelope: bytes) -> bool:
        return envelope[1 : 1 + _KID_BYTES] == self._current_kid

    def reseal(self, envelope: bytes, associated_data: bytes) -> bytes:
        return self.seal(self.open(envelope, associated_data), associated_data)
