"""The compact domain store against a plain dict model."""

import mmap
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.policy.domainstore import DomainStore, DomainStoreBuilder
from ztsim.dns.policy.lists import parse_adblock
from ztsim.dns.wire.errors import InvalidDomain
from ztsim.dns.wire.names import name_suffixes

KEY = bytes(range(16))


def _model(exact: dict[str, int], subtree: dict[str, int], qname: str) -> tuple[str, int] | None:
    """The OR of every entry that covers `qname`, and the most specific such entry."""
    matched, mask = None, 0
    for index, suffix in enumerate(name_suffixes(qname)):
        here = subtree.get(suffix, 0) | (exact.get(suffix, 0) if index == 0 else 0)
        if here and matched is None:
            matched = suffix
        mask |= here
    return None if matched is None else (matched, mask)


_label = st.sampled_from(["a", "b", "ads", "x-y", "_t", "com", "net"])
_names = st.lists(_label, min_size=1, max_size=4).map(".".join)
_masks = st.integers(min_value=1, max_value=(1 << 64) - 1) | st.sampled_from([1, 2, 4, 1 << 63])


@given(
    st.lists(st.tuples(_names, _masks, st.booleans()), max_size=30),
    st.lists(_names, max_size=30),
)
@settings(max_examples=300)
def test_agrees_with_model(entries: list[tuple[str, int, bool]], queries: list[str]) -> None:
    builder = DomainStoreBuilder()
    exact: dict[str, int] = {}
    subtree: dict[str, int] = {}
    for name, mask, covers in entries:
        builder.add(name, mask, subtree=covers)
        table = subtree if covers else exact
        table[name] = table.get(name, 0) | mask
    store = builder.build(KEY)
    assert len(store) == len(exact.keys() | subtree.keys())
    shared = DomainStore.from_buffer(store.to_bytes())
    for qname in queries + [name for name, _, _ in entries]:
        expected = _model(exact, subtree, qname)
        assert store.lookup(qname) == expected
        assert shared.lookup(qname.encode()) == expected


def test_exact_and_subtree_semantics() -> None:
    builder = DomainStoreBuilder()
    builder.add("example.com", 1, subtree=True)
    builder.add("b.example.com", 2, subtree=False)
    builder.add("ads.b.example.com", 4, subtree=True)
    store = builder.build(KEY)
    assert store.lookup("example.com") == ("example.com", 1)
    assert store.lookup("x.example.com") == ("example.com", 1)
    assert store.lookup("b.example.com") == ("b.example.com", 3)
    assert store.lookup("a.b.example.com") == ("example.com", 1)  # exact entry skipped
    assert store.lookup("t.ads.b.example.com") == ("ads.b.example.com", 5)
    assert store.lookup("example.net") is None
    assert store.lookup("com") is None
    assert store.lookup("") is None


def test_many_distinct_masks_use_wider_indexes() -> None:
    builder = DomainStoreBuilder()
    for index in range(70000):
        builder.add(f"n{index}.example", index + 1, subtree=False)
    store = builder.build(KEY)
    assert store.lookup("n69999.example") == ("n69999.example", 70000)
    assert store.lookup("n0.example") == ("n0.example", 1)


def test_from_lists() -> None:
    builder = DomainStoreBuilder()
    builder.add_list(parse_adblock("||ads.example^\n@@||ok.ads.example^\n"), 1, allow_mask=1 << 40)
    store = builder.build(KEY)
    assert store.lookup("x.ads.example") == ("ads.example", 1)
    assert store.lookup("ok.ads.example") == ("ok.ads.example", 1 | 1 << 40)


def test_shared_through_mmap() -> None:
    builder = DomainStoreBuilder()
    builder.add("example.com", 8, subtree=True)
    data = builder.build(KEY).to_bytes()
    with mmap.mmap(-1, len(data)) as region:
        region[:] = data
        store = DomainStore.from_buffer(memoryview(region))
        assert store.lookup("www.example.com") == ("example.com", 8)
        del store


def test_keys_change_the_layout_not_the_answers() -> None:
    def build(key: bytes) -> DomainStore:
        builder = DomainStoreBuilder()
        for index in range(50):
            builder.add(f"n{index}.example", 1, subtree=True)
        return builder.build(key)

    one, two = build(KEY), build(bytes(16))
    assert one.to_bytes() != two.to_bytes()
    assert one.lookup("a.n7.example") == two.lookup("a.n7.example") == ("n7.example", 1)


@pytest.mark.parametrize(
    ("name", "mask"), [("Example.com", 1), ("a..b", 1), ("ok.com", 0), ("ok.com", 1 << 64)]
)
def test_builder_refuses(name: str, mask: int) -> None:
    with pytest.raises(InvalidDomain):
        DomainStoreBuilder().add(name, mask, subtree=False)


def test_build_key_is_checked() -> None:
    with pytest.raises(InvalidDomain):
        DomainStoreBuilder().build(b"short")


@given(st.binary(max_size=200))
def test_garbage_buffers_refused(data: bytes) -> None:
    try:
        DomainStore.from_buffer(data)
    except InvalidDomain:
        return
    pytest.fail("garbage accepted as a domain store")


@given(st.data())
def test_damaged_header_refused_or_still_consistent(data: st.DataObject) -> None:
    builder = DomainStoreBuilder()
    builder.add("example.com", 1, subtree=True)
    buffer = bytearray(builder.build(KEY).to_bytes())
    index = data.draw(st.integers(min_value=0, max_value=79))
    buffer[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        store = DomainStore.from_buffer(bytes(buffer))
    except InvalidDomain:
        return
    store.lookup("www.example.com")  # the key or padding changed: answers may differ, no crash


def test_buffer_from_another_interpreter_refused() -> None:
    """Another process has another hash secret: its buffer would answer wrongly, so it is refused."""
    code = (
        "import sys; from ztsim.dns.policy.domainstore import DomainStoreBuilder as B; b = B(); "
        "b.add('example.com', 1, subtree=True); sys.stdout.buffer.write(b.build(bytes(16)).to_bytes())"
    )
    foreign = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert foreign.startswith(b"ZTDS")
    with pytest.raises(InvalidDomain, match="another hash key"):
        DomainStore.from_buffer(foreign)


def test_table_must_end_with_an_empty_slot() -> None:
    """Probes never wrap: a table whose last slot is taken could be probed past its end."""
    builder = DomainStoreBuilder()
    builder.add("example.com", 1, subtree=False)
    buffer = bytearray(builder.build(KEY).to_bytes())
    length = int.from_bytes(buffer[32:40], sys.byteorder)  # after magic, codes and key
    last = 80 + 8 * (length - 1)
    buffer[last] = 1
    with pytest.raises(InvalidDomain, match="empty slot"):
        DomainStore.from_buffer(bytes(buffer))


def test_placement_matches_linear_probing_with_crowded_homes() -> None:
    """Thousands of names in a small table: every one is found, none that is absent."""
    builder = DomainStoreBuilder()
    names = [f"n{index}.crowd.example" for index in range(5000)]
    builder.add_names(names, 4, subtree=False)
    builder.add_names(names[::2], 8, subtree=False)
    store = builder.build(KEY)
    assert all(
        store.lookup(name) == (name, 4 | (8 if i % 2 == 0 else 0)) for i, name in enumerate(names)
    )
    assert store.lookup("n5000.crowd.example") is None
