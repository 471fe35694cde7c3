"""A compact, shareable map from domain names to 64-bit category masks.

Layout, all in one flat buffer: an open-addressing table (linear probing,
load <= 0.5) of 64-bit slots, each a 62-bit keyed hash of the name, a
"matches subdomains" bit and an occupied bit; a parallel array of indexes into
a small table of (exact mask, subtree mask) pairs, because real stores use few
distinct masks. No name text is kept: about 18 bytes per name. Probes never
wrap around: the table runs on past its modulus far enough that its last slot
is empty, so every probe ends, even in a damaged buffer.

Semantics: `lookup` walks the query name and its parents, most specific first,
one hash probe each. The name itself matches any entry; a parent matches only
if its entry covers subdomains. Masks of covering parents are folded into
each entry at build time, so the first match already carries every category
that applies (the OR over all matching entries).

The hash is the interpreter's own keyed SipHash (`hash` of bytes: `sys.hash_info`),
over the store's random 16-byte key followed by the name. It is a keyed PRF, so a
client cannot craft a name that collides on purpose, and it costs a tenth of a
`hashlib` digest on the per-query path. Its secret is per interpreter: workers
forked from the builder share it, other processes do not, so the buffer records a
probe value and a process with another secret refuses the buffer rather than
answering wrongly. (With PYTHONHASHSEED set to a fixed value the secret is not
secret; ztsim never sets it.) A name not in the store is reported as a match only
if its 62-bit hash equals a stored one: about n / 2**62 per probe.

Building hashes the names in one pass and places them with NumPy: sorted by home
slot, the position of the i-th entry is i plus the running maximum of
(home - rank), which is exactly where linear probing would have put it.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from ztsim.dns.policy.lists import ParsedList
from ztsim.dns.wire.errors import InvalidDomain
from ztsim.dns.wire.names import is_normalized

if TYPE_CHECKING:
    import numpy as np

KEY_SIZE = 16
_MAGIC = b"ZTDS\x02"
# magic, index type, byte order, key, modulus, table length, names, mask pairs, hash probe
_HEADER = struct.Struct("=5scc1x16sQQQQQ")
_BYTE_ORDER = b"<" if sys.byteorder == "little" else b">"
_HEADER_SIZE = 80  # keeps the arrays after it 8-byte aligned
_MAX_MASK = (1 << 64) - 1
_OCCUPIED = 1
_SUBTREE = 2


def _numpy() -> ModuleType:
    # Only building a store needs NumPy (bulk hashing and slot placement); looking names
    # up does not, so importing the gateway's engine or codec stays free of it.
    import numpy

    return numpy


def _align8(size: int) -> int:
    return (size + 7) & ~7


def _index_typecode(count: int) -> str:
    if count <= 0x100:
        return "B"
    if count <= 0x10000:
        return "H"
    return "L" if array("L").itemsize == 4 else "I"


def _probe(key: bytes) -> int:
    """What this interpreter's hash makes of the key alone: equal only under the same secret."""
    return hash(key) & _MAX_MASK


class DomainStoreBuilder:
    """Collects (name, mask, scope) entries; masks for the same name and scope are ORed."""

    def __init__(self) -> None:
        self._exact: dict[str, int] = {}
        self._subtree: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._exact.keys() | self._subtree.keys())

    def add(self, name: str, mask: int, *, subtree: bool) -> None:
        """Add a normalised name (see `names.normalize_name`) with a non-zero mask."""
        self.add_names((name,), mask, subtree=subtree)

    def add_names(self, names: Iterable[str], mask: int, *, subtree: bool) -> None:
        """Add normalised names under one mask; one bad name refuses the whole call."""
        batch = list(names)
        if not all(map(is_normalized, batch)):
            raise InvalidDomain("store names must be normalised first")
        self._merge(batch, mask, subtree)

    def add_list(self, parsed: ParsedList, mask: int, *, allow_mask: int | None = None) -> None:
        """A parsed list's blocks under `mask`, and its exceptions under `allow_mask` if given.

        The list parsers only ever keep normalised names, so they are not checked again:
        that check would cost more than the rest of the build.
        """
        self._merge(parsed.blocked, mask, subtree=False)
        self._merge(parsed.blocked_subtree, mask, subtree=True)
        if allow_mask is not None:
            self._merge(parsed.allowed_subtree, allow_mask, subtree=True)

    def _merge(self, names: Iterable[str], mask: int, subtree: bool) -> None:
        if not isinstance(mask, int) or not 0 < mask <= _MAX_MASK:
            raise InvalidDomain(f"mask {mask!r} must be a non-zero 64-bit integer")
        table = self._subtree if subtree else self._exact
        if not table:
            table.update(dict.fromkeys(names, mask))
            return
        batch = names if isinstance(names, (set, frozenset)) else set(names)
        earlier = {name: table[name] | mask for name in table.keys() & batch}
        table.update(dict.fromkeys(batch, mask))
        table.update(earlier)

    def build(self, key: bytes) -> DomainStore:
        """Freeze into a `DomainStore`; `key` is 16 secret random bytes (e.g. os.urandom)."""
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise InvalidDomain(f"store key must be {KEY_SIZE} bytes")
        np = _numpy()
        names, pair_ids, subtree_flags, pairs = self._entries()
        count = len(names)
        modulus = 2 * count + 1
        hashes = np.fromiter(
            map(hash, map(key.__add__, map(str.encode, names))), dtype=np.int64, count=count
        )
        tags = hashes.view(np.uint64) >> np.uint64(2)
        homes = (tags % np.uint64(modulus)).astype(np.int64)
        order = np.argsort(homes, kind="stable")
        ranks = np.arange(count, dtype=np.int64)
        positions = np.maximum.accumulate(homes[order] - ranks) + ranks if count else ranks
        length = max(modulus, int(positions[-1]) + 1 if count else 0) + 1  # last slot empty
        slots = np.zeros(length, dtype=np.uint64)
        flags = np.uint64(_OCCUPIED) | (subtree_flags[order] * np.uint64(_SUBTREE))
        slots[positions] = (tags[order] << np.uint64(2)) | flags
        typecode = _index_typecode(len(pairs))
        values = np.zeros(length, dtype=np.dtype(typecode))
        values[positions] = pair_ids[order]
        header = _HEADER.pack(
            _MAGIC,
            typecode.encode(),
            _BYTE_ORDER,
            key,
            modulus,
            length,
            count,
            len(pairs),
            _probe(key),
        ).ljust(_HEADER_SIZE, b"\0")
        value_bytes = values.tobytes()
        value_bytes += bytes(_align8(len(value_bytes)) - len(value_bytes))
        exact = array("Q", (pair[0] for pair in pairs)).tobytes()
        below = array("Q", (pair[1] for pair in pairs)).tobytes()
        return DomainStore(b"".join((header, slots.tobytes(), value_bytes, exact, below)))

    def _entries(
        self,
    ) -> tuple[list[str], np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Names, each one's index into the (exact, subtree) mask pairs, its subtree flag."""
        np = _numpy()
        exact, subtree = self._exact, self._subtree
        if not subtree:  # lists of exact names: no parent walk, no per-name Python work
            pair_of = {mask: index for index, mask in enumerate(dict.fromkeys(exact.values()))}
            names = list(exact)
            pair_ids = np.fromiter(
                map(pair_of.__getitem__, exact.values()), dtype=np.int64, count=len(names)
            )
            flags = np.zeros(len(names), dtype=np.uint64)
            return names, pair_ids, flags, [(mask, 0) for mask in pair_of]
        names = list(exact.keys() | subtree.keys())
        pair_index: dict[tuple[int, int], int] = {}
        ids = array("q", bytes(8 * len(names)))
        flag_bytes = bytearray(len(names))
        for position, name in enumerate(names):
            own_subtree = subtree.get(name, 0)
            inherited = 0
            dot = name.find(".")
            while dot >= 0:
                inherited |= subtree.get(name[dot + 1 :], 0)
                dot = name.find(".", dot + 1)
            below = own_subtree | inherited
            pair = (exact.get(name, 0) | below, below)
            ids[position] = pair_index.setdefault(pair, len(pair_index))
            flag_bytes[position] = 1 if own_subtree else 0
        pairs = sorted(pair_index, key=pair_index.__getitem__)
        flags = np.frombuffer(bytes(flag_bytes), dtype=np.uint8).astype(np.uint64)
        return names, np.frombuffer(ids, dtype=np.int64), flags, pairs


class DomainStore:
    """Read-only name -> mask store over one buffer (bytes, mmap), shareable across forks.

    The buffer uses this machine's byte order and this interpreter's hash secret: it
    is for sharing between a process and the workers it forks, not for storage or
    exchange. Only the header, the lengths and the final empty slot are checked:
    load buffers this process built.
    """

    __slots__ = (
        "_below",
        "_buffer",
        "_count",
        "_exact",
        "_modulus",
        "_prefix",
        "_slots",
        "_values",
    )

    def __init__(self, buffer: bytes | memoryview) -> None:
        """Wrap a buffer from `to_bytes` without copying it; malformed: `InvalidDomain`."""
        view = memoryview(buffer).cast("B")
        if len(view) < _HEADER_SIZE:
            raise InvalidDomain("domain store buffer shorter than its header")
        magic, typecode_raw, order, key, modulus, length, count, pair_count, probe = (
            _HEADER.unpack_from(view)
        )
        typecode = typecode_raw.decode("latin-1")
        if magic != _MAGIC or typecode not in ("B", "H", "I", "L"):
            raise InvalidDomain("not a domain store buffer (or another version)")
        if order != _BYTE_ORDER:
            raise InvalidDomain("domain store buffer was built with the other byte order")
        if probe != _probe(bytes(key)):
            raise InvalidDomain("domain store buffer was built by a process with another hash key")
        itemsize = array(typecode).itemsize
        slots_end = _HEADER_SIZE + 8 * length
        values_end = slots_end + _align8(itemsize * length)
        exact_end = values_end + 8 * pair_count
        below_end = exact_end + 8 * pair_count
        if not 0 < modulus < length or count >= modulus or len(view) != below_end:
            raise InvalidDomain("domain store buffer has the wrong length")
        self._slots = view[_HEADER_SIZE:slots_end].cast("Q")
        if self._slots[length - 1]:
            raise InvalidDomain("domain store table does not end with an empty slot")
        self._buffer = buffer
        self._prefix = bytes(key)
        self._modulus: int = modulus
        self._count: int = count
        self._values = view[slots_end : slots_end + itemsize * length].cast(typecode)
        self._exact = view[values_end:exact_end].cast("Q")
        self._below = view[exact_end:below_end].cast("Q")

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
        slots, modulus, prefix = self._slots, self._modulus, self._prefix
        start = 0
        while True:
            suffix = name[start:] if start else name
            tag = (hash(prefix + suffix) & _MAX_MASK) >> 2
            slot = tag % modulus
            entry = slots[slot]
            while entry:
                if entry >> 2 == tag:
                    if not start:
                        return suffix.decode("ascii"), self._exact[self._values[slot]]
                    if entry & _SUBTREE:
                        return suffix.decode("ascii"), self._below[self._values[slot]]
                    break
                slot += 1
                entry = slots[slot]
            dot = name.find(b".", start)
            if dot < 0:
                return None
            start = dot + 1
