"""A compact, shareable map from domain names to 64-bit category masks.

Layout, all in one flat buffer: a one-hash bit prefilter (CRC-32, at least 16
bits per name) that turns most absent suffixes away cheaply; an open-addressing
table (linear probing, load <= 0.5) of 64-bit slots, each a 62-bit keyed
BLAKE2b hash of the name, a "matches subdomains" bit and an occupied bit; a
parallel array of indexes into a small table of (exact mask, subtree mask)
pairs, because real stores use few distinct masks. No name text is kept:
about 20 bytes per name.

Semantics: `lookup` walks the query name and its parents, most specific first,
one hash probe each. The name itself matches any entry; a parent matches only
if its entry covers subdomains. Masks of covering parents are folded into
each entry at build time, so the first match already carries every category
that applies (the OR over all matching entries).

Hash collisions: a name not in the store is reported as a match if its
62-bit hash equals a stored one: about n / 2**62 per probe, ~2e-13 for
n = 1e6, ~1e-12 per 4-label lookup. The hash is keyed with a secret chosen at
build time, so a client cannot craft a name that collides on purpose, and the
key (unlike Python's `hash`) lets forked workers share one buffer.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable
from hashlib import blake2b
from zlib import crc32

from ztsim.dns.errors import InvalidDomain
from ztsim.dns.lists import ParsedList
from ztsim.dns.names import is_normalized

KEY_SIZE = 16
_MAGIC = b"ZTDS\x01"
# magic, index type, byte order, key, slots, names, mask pairs, prefilter bits
_HEADER = struct.Struct("=5scc1x16sQQQQ")
_BYTE_ORDER = b"<" if sys.byteorder == "little" else b">"
_HEADER_SIZE = 64  # keeps the arrays after it 8-byte aligned
_MAX_MASK = (1 << 64) - 1
_OCCUPIED = 1
_SUBTREE = 2
_PREFILTER_BITS_PER_NAME = 16  # at least; ~6% of absent suffixes get past it to the hash


def _align8(size: int) -> int:
    return (size + 7) & ~7


def _index_typecode(count: int) -> str:
    if count <= 0x100:
        return "B"
    if count <= 0x10000:
        return "H"
    return "L" if array("L").itemsize == 4 else "I"


class DomainStoreBuilder:
    """Collects (name, mask, scope) entries; masks for the same name and scope are ORed."""

    def __init__(self) -> None:
        self._exact: dict[str, int] = {}
        self._subtree: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._exact.keys() | self._subtree.keys())

    def add(self, name: str, mask: int, *, subtree: bool) -> None:
        """Add a normalised name (see `names.normalize_name`) with a non-zero mask."""
        if not is_normalized(name):
            raise InvalidDomain("store names must be normalised first")
        if not isinstance(mask, int) or not 0 < mask <= _MAX_MASK:
            raise InvalidDomain(f"mask {mask!r} must be a non-zero 64-bit integer")
        table = self._subtree if subtree else self._exact
        table[name] = table.get(name, 0) | mask

    def add_names(self, names: Iterable[str], mask: int, *, subtree: bool) -> None:
        for name in names:
            self.add(name, mask, subtree=subtree)

    def add_list(self, parsed: ParsedList, mask: int, *, allow_mask: int | None = None) -> None:
        """A parsed list's blocks under `mask`, and its exceptions under `allow_mask` if given."""
        self.add_names(parsed.blocked, mask, subtree=False)
        self.add_names(parsed.blocked_subtree, mask, subtree=True)
        if allow_mask is not None:
            self.add_names(parsed.allowed_subtree, allow_mask, subtree=True)

    def build(self, key: bytes) -> DomainStore:
        """Freeze into a `DomainStore`; `key` is 16 secret random bytes (e.g. os.urandom)."""
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise InvalidDomain(f"store key must be {KEY_SIZE} bytes")
        exact, subtree = self._exact, self._subtree
        names = exact.keys() | subtree.keys()
        size = 2 * len(names) + 1
        slots = array("Q", bytes(8 * size))
        pair_index: dict[tuple[int, int], int] = {}
        indexes = array("L", bytes(array("L").itemsize * size))
        bits = 64
        while bits < _PREFILTER_BITS_PER_NAME * len(names):
            bits <<= 1
        prefilter = bytearray(bits // 8)
        for name in names:
            own_subtree = subtree.get(name, 0)
            inherited = 0
            dot = name.find(".") if subtree else -1  # lists of exact names skip the walk
            while dot >= 0:
                inherited |= subtree.get(name[dot + 1 :], 0)
                dot = name.find(".", dot + 1)
            below = own_subtree | inherited
            pair = (exact.get(name, 0) | below, below)
            index = pair_index.setdefault(pair, len(pair_index))
            encoded = name.encode("ascii")
            check = crc32(encoded) & (bits - 1)
            prefilter[check >> 3] |= 1 << (check & 7)
            digest = blake2b(key + encoded, digest_size=8).digest()
            tag = int.from_bytes(digest, "little") >> 2
            slot = tag % size
            while slots[slot]:
                slot = slot + 1 if slot + 1 < size else 0
            slots[slot] = (tag << 2) | (_SUBTREE if own_subtree else 0) | _OCCUPIED
            indexes[slot] = index
        pairs = sorted(pair_index, key=pair_index.__getitem__)
        typecode = _index_typecode(len(pairs))
        values = array(typecode, indexes) if typecode != indexes.typecode else indexes
        buffer = _serialise(key, slots, values, pairs, len(names), prefilter)
        return DomainStore.from_buffer(buffer)


def _serialise(
    key: bytes,
    slots: array[int],
    values: array[int],
    pairs: list[tuple[int, int]],
    count: int,
    prefilter: bytearray,
) -> bytes:
    header = _HEADER.pack(
        _MAGIC,
        values.typecode.encode(),
        _BYTE_ORDER,
        key,
        len(slots),
        count,
        len(pairs),
        len(prefilter) * 8,
    ).ljust(_HEADER_SIZE, b"\0")
    value_bytes = values.tobytes()
    value_bytes += bytes(_align8(len(value_bytes)) - len(value_bytes))
    exact = array("Q", (pair[0] for pair in pairs)).tobytes()
    below = array("Q", (pair[1] for pair in pairs)).tobytes()
    return b"".join((header, slots.tobytes(), value_bytes, exact, below, prefilter))


class DomainStore:
    """Read-only name -> mask store over one buffer (bytes, mmap), shareable across forks.

    The buffer uses this machine's byte order; it is for sharing between
    workers on one host, not for exchange between machines. Only the header
    and lengths are checked: load buffers this host built, since a forged
    table with no empty slot would make a lookup probe forever.
    """

    __slots__ = (
        "_below",
        "_bits",
        "_buffer",
        "_count",
        "_exact",
        "_prefilter",
        "_prefix",
        "_size",
        "_slots",
        "_values",
    )

    def __init__(self, buffer: bytes | memoryview) -> None:
        """Wrap a buffer from `to_bytes` without copying it; malformed: `InvalidDomain`."""
        view = memoryview(buffer).cast("B")
        if len(view) < _HEADER_SIZE:
            raise InvalidDomain("domain store buffer shorter than its header")
        magic, typecode_raw, order, key, size, count, pair_count, bits = _HEADER.unpack_from(view)
        typecode = typecode_raw.decode("latin-1")
        if magic != _MAGIC or typecode not in ("B", "H", "I", "L"):
            raise InvalidDomain("not a domain store buffer (or another version)")
        if order != _BYTE_ORDER:
            raise InvalidDomain("domain store buffer was built with the other byte order")
        itemsize = array(typecode).itemsize
        slots_end = _HEADER_SIZE + 8 * size
        values_end = slots_end + _align8(itemsize * size)
        exact_end = values_end + 8 * pair_count
        below_end = exact_end + 8 * pair_count
        if size < 1 or count >= size or len(view) != below_end + bits // 8:
            raise InvalidDomain("domain store buffer has the wrong length")
        if bits < 64 or bits & (bits - 1):
            raise InvalidDomain("domain store prefilter size is not a power of two")
        self._buffer = buffer
        self._prefix = bytes(key)
        self._size: int = size
        self._count: int = count
        self._slots = view[_HEADER_SIZE:slots_end].cast("Q")
        self._values = view[slots_end : slots_end + itemsize * size].cast(typecode)
        self._exact = view[values_end:exact_end].cast("Q")
        self._below = view[exact_end:below_end].cast("Q")
        self._prefilter = view[below_end:]
        self._bits: int = bits - 1

    @classmethod
    def from_buffer(cls, buffer: bytes | memoryview) -> DomainStore:
        return cls(buffer)

    def to_bytes(self) -> bytes:
        return bytes(self._buffer)

    def __len__(self) -> int:
        return int(self._count)

    def lookup(self, qname: str | bytes) -> tuple[str, int] | None:
        """(matching name, mask) for a normalised query name, or None if nothing matches."""
        name = qname.encode("ascii") if isinstance(qname, str) else qname
        slots, size, prefix = self._slots, self._size, self._prefix
        prefilter, bits = self._prefilter, self._bits
        start = 0
        while True:
            suffix = name[start:] if start else name
            check = crc32(suffix) & bits
            if not prefilter[check >> 3] >> (check & 7) & 1:
                dot = name.find(b".", start)
                if dot < 0:
                    return None
                start = dot + 1
                continue
            tag = int.from_bytes(blake2b(prefix + suffix, digest_size=8).digest(), "little") >> 2
            slot = tag % size
            entry = slots[slot]
            while entry:
                if entry >> 2 == tag:
                    if not start:
                        return suffix.decode("ascii"), self._exact[self._values[slot]]
                    if entry & _SUBTREE:
                        return suffix.decode("ascii"), self._below[self._values[slot]]
                    break
                slot = slot + 1 if slot + 1 < size else 0
                entry = slots[slot]
            dot = name.find(b".", start)
            if dot < 0:
                return None
            start = dot + 1
