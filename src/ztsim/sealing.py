"""Sealing of secrets at rest: AES-256-GCM under a key-encryption key (KEK).

The KEK lives outside the database (an environment variable or a 0600 key file).
Every sealed value carries the id of the KEK that sealed it, so that during a
rotation both the old and the new KEK can be loaded and each value is opened by
the key that sealed it. The associated data binds a ciphertext to its row (for a
SIM, the ICCID): a sealed K copied onto another SIM does not open.

A running node follows a key file (`ztsim.keys`): a value sealed under a key id it
does not hold makes it read the key source again (rate-limited per key id), and it
re-checks its sealing key every few seconds, so `ztsim keys rotate` needs no restart.

Envelope: version (1) || kek id (4) || nonce (12) || ciphertext || tag (16).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ztsim.errors import InvalidInput, SealingError, ZtsimError

log = logging.getLogger("ztsim.sealing")

KEY_BYTES = 32
_VERSION = 1
_KID_BYTES = 4
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces
_HEADER = 1 + _KID_BYTES + _NONCE_BYTES
# How long an unknown key id waits before the key source is read again for it, and how
# often the sealing key is re-checked: `rotate_key_file` waits longer than this before
# its final sweep, so that no running node still seals under the retired key.
RELOAD_SECONDS = 2.0
# Unknown key ids remembered at once: a flood of forged ids costs at most this many
# reads of the key source per RELOAD_SECONDS.
_MAX_TRIED = 64


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


class KeyRing(NamedTuple):
    """What a key source holds: the key to seal with and the others that still open."""

    current: bytes
    others: tuple[bytes, ...] = ()


# Reads the keys where they live (a key file); raises ZtsimError or OSError if it cannot.
KeySource = Callable[[], KeyRing]


class _Sealing(NamedTuple):
    kid: bytes
    aead: AESGCM


class Sealer:
    """Seals with the current KEK; opens with whichever loaded KEK sealed a value.

    With a `source` it follows where the keys live: keys are only ever added (a value a
    lagging node sealed under a retired key still opens here), and the current one is
    the source's current one. Thread-safe: the roles of `ztsim up` share one Sealer."""

    __slots__ = (
        "_checked",
        "_clock",
        "_every",
        "_keys",
        "_lock",
        "_random",
        "_sealing",
        "_source",
        "_tried",
    )

    def __init__(
        self,
        current: bytes,
        others: Iterable[bytes] = (),
        random: Callable[[int], bytes] = os.urandom,
        *,
        source: KeySource | None = None,
        clock: Callable[[], float] = time.monotonic,
        reload_every: float = RELOAD_SECONDS,
    ) -> None:
        others = tuple(others)
        if len(current) != KEY_BYTES or any(len(k) != KEY_BYTES for k in others):
            raise InvalidInput("a key-encryption key must be 32 bytes")
        self._random = random
        self._sealing = _Sealing(key_id(current), AESGCM(current))
        # Replaced whole, never changed in place: readers take no lock.
        self._keys = {key_id(k): AESGCM(k) for k in others}
        self._keys[self._sealing.kid] = self._sealing.aead
        self._source = source
        self._clock = clock
        self._every = reload_every
        self._lock = threading.Lock()
        self._checked = clock()
        self._tried: dict[bytes, float] = {}

    def __repr__(self) -> str:
        return f"Sealer(current_kid={self._sealing.kid.hex()})"

    @property
    def current_key_id(self) -> bytes:
        return self._sealing.kid

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        kid, aead = self._sealing if self._source is None else self._fresh_sealing()
        nonce = self._random(_NONCE_BYTES)
        return bytes((_VERSION,)) + kid + nonce + aead.encrypt(nonce, plaintext, associated_data)

    def open(self, envelope: bytes, associated_data: bytes) -> bytes:
        if len(envelope) < _HEADER + 16 or envelope[0] != _VERSION:
            raise SealingError("sealed value is malformed")
        kid = envelope[1 : 1 + _KID_BYTES]
        aead = self._keys.get(kid)
        if aead is None and (aead := self._load_for(kid)) is None:
            raise SealingError("sealed value was sealed by a key-encryption key that is not loaded")
        nonce = envelope[1 + _KID_BYTES : _HEADER]
        try:
            return aead.decrypt(nonce, envelope[_HEADER:], associated_data)
        except InvalidTag:
            raise SealingError("sealed value does not open: wrong key or tampered data") from None

    def sealed_with_current(self, envelope: bytes) -> bool:
        return envelope[1 : 1 + _KID_BYTES] == self._sealing.kid

    def reseal(self, envelope: bytes, associated_data: bytes) -> bytes:
        return self.seal(self.open(envelope, associated_data), associated_data)

    def _fresh_sealing(self) -> _Sealing:
        if self._clock() - self._checked >= self._every:
            self._refresh()
        return self._sealing

    def _refresh(self) -> None:
        # Another thread refreshing means the answer is seconds fresh either way.
        if self._lock.acquire(blocking=False):
            try:
                if self._clock() - self._checked >= self._every:
                    self._reload()
            finally:
                self._lock.release()

    def _load_for(self, kid: bytes) -> AESGCM | None:
        if self._source is None:
            return None
        with self._lock:
            if (aead := self._keys.get(kid)) is not None:
                return aead  # another thread loaded it meanwhile
            now = self._clock()
            tried = self._tried.get(kid)
            if tried is not None and now - tried < self._every:
                return None
            if tried is None and len(self._tried) >= _MAX_TRIED:
                self._tried = {k: t for k, t in self._tried.items() if now - t < self._every}
                if len(self._tried) >= _MAX_TRIED:
                    return None
            self._tried[kid] = now
            self._reload()
            return self._keys.get(kid)

    def _reload(self) -> None:
        """Called with the lock held."""
        assert self._source is not None
        self._checked = self._clock()
        try:
            ring = self._source()
        except (ZtsimError, OSError) as exc:
            # The message names a file, never a key; the keys loaded so far stay.
            log.warning("key-encryption keys not reloaded: %s", exc)
            return
        keys = dict(self._keys)
        for key in (ring.current, *ring.others):
            kid = key_id(key)
            if kid not in keys:
                keys[kid] = AESGCM(key)
                self._tried.pop(kid, None)
                log.info("loaded key-encryption key %s", kid.hex())
        self._keys = keys
        current = key_id(ring.current)
        if current != self._sealing.kid:
            self._sealing = _Sealing(current, keys[current])
            log.info("sealing under key-encryption key %s from now on", current.hex())
