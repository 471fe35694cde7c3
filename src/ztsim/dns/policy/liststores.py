"""One domain store per block list, one for the security feeds: a list that did not change
is never rebuilt.

A 1M-name list takes seconds to parse and hash, so the gateway compiles each list into a
store of its own and keeps it across policy rebuilds while the list is unchanged; a rule
edit in one org then recompiles that org's rules only (`PolicySnapshot.with_orgs`).
In a list's store blocked names carry `BLOCK` and `@@` exceptions `ALLOW`; a lookup that
finds `ALLOW` is exempt, whatever else covers the name. The feeds share one store with a
bit per category (`CompiledFeeds.bits`).

`key` names what a store was built from (a list and its version). The gateway's worker
processes load each store once by its key (`ztsim.dns.serve.share`); a store without a
key travels with its bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ztsim.dns.policy.domainstore import DomainStore, DomainStoreBuilder
from ztsim.dns.policy.lists import ParsedList
from ztsim.dns.policy.rules import Category

BLOCK = 1
ALLOW = 2


@dataclass(frozen=True, slots=True, eq=False)
class CompiledList:
    store: DomainStore
    key: str = ""

    def blocks(self, qname: str) -> bool:
        """Whether the list blocks `qname` (normalised, not empty), exceptions applied."""
        found = self.store.lookup(qname)
        return found is not None and found[1] & (BLOCK | ALLOW) == BLOCK

    def __reduce__(self) -> tuple[object, tuple[bytes, str]]:
        return _restore, (self.store.to_bytes(), self.key)


def _restore(buffer: bytes, key: str) -> CompiledList:
    return CompiledList(DomainStore.from_buffer(buffer), key)


def compile_list(parsed: ParsedList, store_key: bytes, key: str = "") -> CompiledList:
    builder = DomainStoreBuilder()
    builder.add_list(parsed, BLOCK, allow_mask=ALLOW if parsed.allowed_subtree else None)
    return CompiledList(builder.build(store_key), key)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledFeeds:
    compiled: CompiledList | None = None  # None: no feed configured
    bits: Mapping[str, int] = field(default_factory=dict)  # category value -> bit

    def mask(self, qname: str) -> int:
        """The bits of every category `qname` is on (0: none)."""
        if self.compiled is None:
            return 0
        found = self.compiled.store.lookup(qname)
        return 0 if found is None else found[1]


def compile_feeds(
    feeds: Mapping[Category, ParsedList], store_key: bytes, key: str = ""
) -> CompiledFeeds:
    if not feeds:
        return CompiledFeeds()
    builder = DomainStoreBuilder()
    bits: dict[str, int] = {}
    for category, parsed in sorted(feeds.items()):
        bits[category.value] = 1 << len(bits)
        builder.add_list(parsed, bits[category.value])
    return CompiledFeeds(CompiledList(builder.build(store_key), key), bits)


FEED_BITS = 16  # list bits of a compiled org start above every category's bit
