"""Measure the domain store: build time, memory and lookups per second for N names.

Run: .venv/bin/python tests/dns/bench_domainstore.py [N]  (not collected by pytest)
"""

import os
import random
import sys
import time
import tracemalloc

from ztsim.dns.policy.domainstore import DomainStore, DomainStoreBuilder


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _rss_kb() -> int:
    return _status_kb("VmRSS:")


def _peak_rss_kb() -> int:
    return _status_kb("VmHWM:")


def main(count: int) -> None:
    rng = random.Random(1)
    tlds = ["com", "net", "org", "io", "de", "co.uk"]
    names = [
        f"{rng.getrandbits(40):x}.{rng.choice(['ads', 'cdn', 't', 'x'])}{i}.{rng.choice(tlds)}"
        for i in range(count)
    ]
    builder = DomainStoreBuilder()
    start = time.perf_counter()
    for i, name in enumerate(names):
        builder.add(name, 1 << (i % 8), subtree=i % 2 == 0)
    added = time.perf_counter()
    rss_before = _rss_kb()
    store = builder.build(os.urandom(16))
    built = time.perf_counter()
    peak = (_peak_rss_kb() - rss_before) * 1e3
    buffer = store.to_bytes()
    del builder
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    shared = DomainStore.from_buffer(buffer)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"names: {count}")
    print(f"builder.add: {added - start:.2f} s; build: {built - added:.2f} s")
    print(f"buffer: {len(buffer) / 1e6:.1f} MB ({len(buffer) / count:.1f} B/name)")
    print(f"build peak RSS growth (on top of the builder): {peak / 1e6:.1f} MB")
    print(f"from_buffer extra memory: {(after - before) / 1e3:.1f} kB")
    queries_hit = [f"www.{name}" for name in rng.sample(names, 20000)]
    queries_miss = [f"www.a{rng.getrandbits(30):x}.example{i}.com" for i in range(20000)]
    for label, queries in (("hits (subdomain of entry)", queries_hit), ("misses", queries_miss)):
        encoded = [q.encode() for q in queries]
        start = time.perf_counter()
        found = sum(1 for q in encoded if shared.lookup(q) is not None)
        elapsed = time.perf_counter() - start
        print(f"lookup {label}: {len(encoded) / elapsed:,.0f}/s ({found} matched)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
