"""Network enforcement (issue 20): forwarding through ztsim's nftables table against plain
Linux forwarding, the time to load 100,000 identities, and revocation latency.

Run (root; nft, conntrack, iperf3): .venv/bin/python bench/net.py [--quick]
  [--identities 100000] [--classes 10] [--rules 1000] [--rounds 15] [--seconds 2]
  [--new-trials 200] [--open-trials 100] [--batch 10000] [--seed S]

Namespaces made for the run and deleted after it, also on failure (bench/net_topology.py):
a UE, a gateway with ztsim's table, a gateway with no ruleset, a site. Traffic stays in
them.

- Table: `--classes` policy classes of `--rules` `network` rules each
  (`PolicyRule.from_spec`, flattened by `ztsim.net.ruleset`), a mix of TCP and UDP
  services on /24s and host ranges, ICMP and everything to some networks, SSH and RDP
  denied to /16s ahead of later allows, IPv6 /48s and /64s; `--identities` subject
  addresses spread over the classes (the UE's own address among them, in the class that
  opens the site's services first). Denials reject (a TCP reset, else ICMP).
- load_100k_s: the classes go in first, in one batch (`whole_table`, not timed: they are
  the policy, not the identities); then the subject elements in batches of `--batch`
  addresses, one `nft -j -f -` each (`set_subjects`), as a role applies sessions it reads
  in chunks. Timed from the first batch's document being built to the last one's commit.
  For comparison, the whole table with every subject in one batch (a role's start-up).
- Forwarding: `--rounds` rounds, each measures both gateways, the order alternating
  (ABBA) so that drift on a shared machine falls on both: iperf3 TCP for `--seconds`
  (receiver's bits/s), then iperf3 UDP with 64-octet payloads, unlimited rate (packets
  the gateway sent towards the site, per second). Medians; the ratios are ztsim / plain;
  forwarding_ratio is the smaller of the two.
- Revocation, new flow: from the start of the batch that removes a UE address until a
  new TCP connect from it is refused (`--new-trials`). The trials take turns among 32
  addresses of the UE, all in the site's class: TCP is refused with a reset, which is not
  rate-limited, but the trials were first written for ICMP refusals, which the kernel
  limits per destination (net.ipv4.icmp_ratelimit: a burst of 6, then one a second).
  Open flow: a TCP stream (8 KiB a
  millisecond) from the UE to the site; from the start of the same batch, followed by
  `Nft.cut_flows`, until the site's receiver reads its last byte (no more for 0.5 s; at
  most 3 s, past which the trial counts as not stopped) (`--open-trials`). p99 by nearest
  rank. The address goes back into its class between trials.

Targets: forwarding_ratio >= 0.95, load_100k_s < 5, revoke_new_flow_p99_ms < 100,
revoke_open_flow_p99_ms < 1000. `--quick`: 10,000 identities and a few trials of each,
for a smoke run. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the topology beside this file

from net_topology import (
    CONNECT_PORT,
    IPERF_PORT,
    POOL,
    SITE_NET,
    STREAM_PORT,
    UE_STRANGER,
    UE_TRIALS,
    UE_ZTSIM,
    Listener,
    Stream,
    Topology,
    connect,
    hang_up,
    refused_after,
    why_not,
)

from ztsim.net import nft_documents as docs
from ztsim.net.nft import Nft, elements_of
from ztsim.net.nft_names import SUBJECTS
from ztsim.net.ruleset import Flattened, flatten
from ztsim.policy.rules import PolicyRule

SITE_CLASS = "c00"
# Common services (IANA port numbers): SSH, DNS, HTTP, NTP, SNMP, HTTPS, IKE, syslog,
# SIP, RDP, PostgreSQL, MySQL, Redis, web apps; some ranges, as rules name them.
TCP_PORTS = ("22", "80", "443", "1521", "3306", "3389", "5432", "6379", "8000-8100", "8443")
UDP_PORTS = ("53", "123", "161-162", "500", "514", "4500", "5060-5061", "10000-20000")
NEW_LIMIT, OPEN_LIMIT, QUIET = 2.0, 3.0, 0.5  # seconds; see the docstring


def _v4(rng: random.Random, prefix: int) -> str:
    """A random private IPv4 network outside 172.31.0.0/16, where the bench's sites are."""
    first = rng.choice(("10", "10", "10", "192.168", "172"))
    if first == "172":
        address = f"172.{rng.randint(16, 30)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    elif first == "192.168":
        address = f"192.168.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    else:
        address = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    return f"{address}/{prefix}"


def class_rules(index: int, count: int, rng: random.Random) -> list[PolicyRule]:
    """`count` network rules of class `index`; class c00 opens the site's services first."""
    specs: list[tuple[str, dict[str, Any]]] = []
    if index == 0:
        ports = [str(IPERF_PORT), str(CONNECT_PORT), str(STREAM_PORT)]
        specs.append(("allow", {"cidrs": [SITE_NET], "protocol": "tcp", "ports": ports}))
        specs.append(("allow", {"cidrs": [SITE_NET], "protocol": "udp", "ports": ports[:1]}))
    while len(specs) < count:
        kind = rng.random()
        if kind < 0.35:  # a TCP service on a /24
            ports = rng.sample(TCP_PORTS, rng.randint(1, 3))
            specs.append(("allow", {"cidrs": [_v4(rng, 24)], "protocol": "tcp", "ports": ports}))
        elif kind < 0.50:  # a UDP service on a /24 or a /28
            ports = rng.sample(UDP_PORTS, rng.randint(1, 2))
            cidr = _v4(rng, rng.choice((24, 28)))
            specs.append(("allow", {"cidrs": [cidr], "protocol": "udp", "ports": ports}))
        elif kind < 0.60:  # no SSH or RDP into a /16, whatever later rules open there
            spec = {"cidrs": [_v4(rng, 16)], "protocol": "tcp", "ports": ["22", "3389"]}
            specs.append(("deny", spec))
        elif kind < 0.70:  # everything to a few hosts
            cidrs = [_v4(rng, rng.choice((28, 32))) for _ in range(rng.randint(1, 3))]
            specs.append(("allow", {"cidrs": cidrs, "protocol": "any"}))
        elif kind < 0.80:  # ping a /16
            specs.append(("allow", {"cidrs": [_v4(rng, 16)], "protocol": "icmp"}))
        elif kind < 0.90:  # IPv6 services
            net = (
                f"fd{rng.randint(0, 255):02x}:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}"
            )
            cidr = rng.choice((f"{net}::/48", f"{net}:{rng.randint(0, 0xFFFF):x}::/64"))
            ports = rng.sample(TCP_PORTS, rng.randint(1, 2))
            specs.append(("allow", {"cidrs": [cidr], "protocol": "tcp", "ports": ports}))
        else:  # several networks, one web port
            cidrs = [_v4(rng, 24) for _ in range(rng.randint(2, 4))]
            port = rng.choice(("443", "8443"))
            specs.append(("allow", {"cidrs": cidrs, "protocol": "tcp", "ports": [port]}))
    return [
        PolicyRule.from_spec("network", f"c{index:02d}-r{i}", action, spec)
        for i, (action, spec) in enumerate(specs)
    ]


def subjects(count: int, classes: list[str]) -> dict[str, str]:
    """`count` addresses of the pool, round robin over the classes: the UE's own first (in
    the site's class), the others from the pool's second /24 on (the first is the UE's)."""
    pool = ipaddress.IPv4Network(POOL)
    out = dict.fromkeys((UE_ZTSIM, *UE_TRIALS), SITE_CLASS)
    if not len(out) <= count <= len(out) + pool.num_addresses - 256:
        raise SystemExit(f"--identities: {len(out)} to {len(out) + pool.num_addresses - 256:,}")
    base = int(pool.network_address) + 256
    for i in range(count - len(out)):
        out[str(ipaddress.IPv4Address(base + i))] = classes[i % len(classes)]
    return out


def p99(samples: list[float]) -> float:
    """The 99th percentile by nearest rank."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def load(
    nft: Nft, classes: dict[str, Flattened], table: dict[str, str], batch: int
) -> tuple[float, float]:
    """Seconds for the whole table with every subject in one batch, then for the classes
    alone followed by the subjects in batches of `batch` (the figure)."""
    started = time.perf_counter()
    nft.apply(docs.batch(docs.whole_table(classes, table, reject=True)))
    whole = time.perf_counter() - started
    nft.apply(docs.batch(docs.whole_table(classes, {}, reject=True)))
    items = list(table.items())
    started = time.perf_counter()
    for at in range(0, len(items), batch):
        nft.apply(docs.batch(docs.set_subjects(dict(items[at : at + batch]))))
    return whole, time.perf_counter() - started


def forwarding(t: Topology, rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    """Median TCP bits/s and UDP packets/s of each gateway over `rounds` ABBA rounds, and
    the median of the rounds' own ratios (each pair a few seconds apart: the machine's
    other load, which moves both, cancels better than in the ratio of the medians)."""
    runs: dict[str, dict[str, list[float]]] = {
        "tcp": {"ztsim": [], "plain": []},
        "pps": {"ztsim": [], "plain": []},
    }
    for round_ in range(rounds):
        order = (t.ztsim, t.plain) if round_ % 2 == 0 else (t.plain, t.ztsim)
        for route in order:
            report = t.iperf(route, seconds)
            runs["tcp"][route.name].append(report["end"]["sum_received"]["bits_per_second"])
        for route in order:
            before = t.tx_packets(route)
            report = t.iperf(route, seconds, "-u", "-l", "64", "-b", "0")
            sent = t.tx_packets(route) - before
            runs["pps"][route.name].append(sent / report["end"]["sum_sent"]["seconds"])
        tcp, pps = runs["tcp"], runs["pps"]
        print(
            f"net: round {round_ + 1}/{rounds}: TCP ztsim {tcp['ztsim'][-1] / 1e9:.2f} / plain "
            f"{tcp['plain'][-1] / 1e9:.2f} Gbit/s; UDP 64 B ztsim {pps['ztsim'][-1]:,.0f} / "
            f"plain {pps['plain'][-1]:,.0f} packets/s",
            flush=True,
        )
    out: dict[str, dict[str, float]] = {}
    for kind, by_path in runs.items():
        pairs = zip(by_path["ztsim"], by_path["plain"], strict=True)
        out[kind] = {name: statistics.median(v) for name, v in by_path.items()}
        out[kind]["paired_ratio"] = statistics.median(z / p for z, p in pairs)
    return out


def _remove(address: str) -> dict[str, Any]:
    return docs.batch(docs.set_subjects(remove=[address]))


def _restore(address: str) -> dict[str, Any]:
    return docs.batch(docs.set_subjects({address: SITE_CLASS}))


def new_flow(t: Topology, nft: Nft, trials: int) -> tuple[list[float], list[float]]:
    """Per trial: ms from the removing batch's start to a refused connect, and the batch's
    own ms. Each trial revokes the next of UE_TRIALS, which connects first (its class
    open), and is put back in its class after."""
    latencies: list[float] = []
    applies: list[float] = []
    listener = Listener(t, CONNECT_PORT, hang_up)
    try:
        for trial in range(trials):
            address = UE_TRIALS[trial % len(UE_TRIALS)]
            connect(t, address, CONNECT_PORT, 1.0).close()  # OSError: the class is not open
            started = time.perf_counter()
            nft.apply(_remove(address))
            applies.append(1000 * (time.perf_counter() - started))
            refused = refused_after(t, address, started, NEW_LIMIT)
            latencies.append(1000 * (NEW_LIMIT if refused is None else refused))
            nft.apply(_restore(address))
    finally:
        listener.close()
    return latencies, applies


def open_flow(t: Topology, nft: Nft, trials: int) -> tuple[list[float], list[float], int]:
    """Per trial: ms from the removing batch's start to the stream's last byte, and the
    batch plus cut_flows' own ms; and how many trials did not stop within OPEN_LIMIT."""
    latencies: list[float] = []
    applies: list[float] = []
    unstopped = 0
    for trial in range(trials):
        if trial:
            nft.apply(_restore(UE_ZTSIM))
        stream = Stream(t, UE_ZTSIM)
        try:
            deadline = time.perf_counter() + 2.0
            while stream.read < 64 * stream.chunk and time.perf_counter() < deadline:
                time.sleep(0.01)  # streaming for a while: an established, busy flow
            if not stream.flowing(0.1):
                raise RuntimeError("the stream carried nothing before the revocation")
            started = time.perf_counter()
            nft.apply(_remove(UE_ZTSIM))
            nft.cut_flows(UE_ZTSIM)
            applies.append(1000 * (time.perf_counter() - started))
            while time.perf_counter() - started < OPEN_LIMIT and stream.flowing(QUIET):
                time.sleep(0.01)
            if stream.flowing(QUIET):
                unstopped += 1
                latencies.append(1000 * OPEN_LIMIT)
            else:
                latencies.append(1000 * max(0.0, stream.last_read - started))
        finally:
            stream.close()
    nft.apply(_restore(UE_ZTSIM))
    return latencies, applies, unstopped


def _enforced(t: Topology) -> None:
    """The table is live on the ztsim path: the UE's address connects, a stranger's does not."""
    listener = Listener(t, CONNECT_PORT, hang_up)
    try:
        connect(t, UE_ZTSIM, CONNECT_PORT, 1.0).close()
        if refused_after(t, UE_STRANGER, time.perf_counter(), 1.0) is None:
            raise RuntimeError("an address in no class was let through the ztsim gateway")
    finally:
        listener.close()


def _terminated(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally that deletes the namespaces


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--identities", type=int, default=None)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rules", type=int, default=1000, help="per class")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="per iperf3 run")
    parser.add_argument("--new-trials", type=int, default=None)
    parser.add_argument("--open-trials", type=int, default=None)
    parser.add_argument("--batch", type=int, default=10_000, help="subjects per nft batch")
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    quick = args.quick
    identities = args.identities or (10_000 if quick else 100_000)
    rounds = args.rounds or (2 if quick else 15)
    seconds = args.seconds or (1.0 if quick else 2.0)
    new_trials = args.new_trials or (10 if quick else 200)
    open_trials = args.open_trials or (5 if quick else 100)
    reason = why_not()
    if reason:
        raise SystemExit(f"bench/net.py: {reason}")
    signal.signal(signal.SIGTERM, _terminated)
    begun, load_before = time.perf_counter(), os.getloadavg()[0]

    rng = random.Random(args.seed)
    started = time.perf_counter()
    rules = {f"c{k:02d}": class_rules(k, args.rules, rng) for k in range(args.classes)}
    classes = {name: flatten(r) for name, r in rules.items()}
    elements = sum(len(f) for f in classes.values())
    print(
        f"net: {args.classes} classes x {args.rules:,} rules flattened to {elements:,} "
        f"elements in {time.perf_counter() - started:.2f} s",
        flush=True,
    )
    table = subjects(identities, list(classes))

    with Topology() as t:
        nft = Nft(prefix=("ip", "netns", "exec", t.ztsim.gateway), timeout=120)
        whole, loaded = load(nft, classes, table, args.batch)
        print(
            f"net: {identities:,} identities loaded in {loaded:.2f} s ({args.batch:,} a batch, "
            f"classes already in); the whole table in one batch: {whole:.2f} s",
            flush=True,
        )
        if len(elements_of(nft.table(), SUBJECTS[4])) != len(table):
            raise RuntimeError("the subjects map does not hold every identity")
        _enforced(t)
        t.start_iperf_server()
        fwd = forwarding(t, rounds, seconds)
        tcp, pps = fwd["tcp"], fwd["pps"]
        tcp_ratio, pps_ratio = tcp["ztsim"] / tcp["plain"], pps["ztsim"] / pps["plain"]
        print(
            f"net: medians of {rounds}: TCP ztsim {tcp['ztsim'] / 1e9:.2f} Gbit/s, plain "
            f"{tcp['plain'] / 1e9:.2f} (ratio {tcp_ratio:.3f}, of each round's "
            f"{tcp['paired_ratio']:.3f}); UDP 64 B ztsim {pps['ztsim']:,.0f} packets/s, plain "
            f"{pps['plain']:,.0f} (ratio {pps_ratio:.3f}, of each round's "
            f"{pps['paired_ratio']:.3f})",
            flush=True,
        )
        new_ms, new_apply = new_flow(t, nft, new_trials)
        print(
            f"net: new flow refused after revocation, {new_trials} trials: p50 "
            f"{statistics.median(new_ms):.1f} ms, p99 {p99(new_ms):.1f} ms, max "
            f"{max(new_ms):.1f} ms (the batch alone: p50 {statistics.median(new_apply):.1f} ms)",
            flush=True,
        )
        open_ms, open_apply, unstopped = open_flow(t, nft, open_trials)
        print(
            f"net: open flow stopped after revocation, {open_trials} trials: p50 "
            f"{statistics.median(open_ms):.1f} ms, p99 {p99(open_ms):.1f} ms, max "
            f"{max(open_ms):.1f} ms, {unstopped} not stopped within {OPEN_LIMIT:g} s (batch "
            f"and conntrack -D: p50 {statistics.median(open_apply):.1f} ms)",
            flush=True,
        )
    print(f"net: {time.perf_counter() - begun:.0f} s in all", flush=True)
    print(
        json.dumps(
            {
                "forwarding_ratio": round(min(tcp_ratio, pps_ratio), 3),
                "load_100k_s": round(loaded, 3),
                "revoke_new_flow_p99_ms": round(p99(new_ms), 1),
                "revoke_open_flow_p99_ms": round(p99(open_ms), 1),
                "throughput_ratio": round(tcp_ratio, 3),
                "pps_ratio": round(pps_ratio, 3),
                "throughput_paired_ratio": round(tcp["paired_ratio"], 3),
                "pps_paired_ratio": round(pps["paired_ratio"], 3),
                "tcp_gbps": {k: round(tcp[k] / 1e9, 2) for k in ("ztsim", "plain")},
                "udp64_pps": {k: round(pps[k]) for k in ("ztsim", "plain")},
                # The machine's load average (1 min) before and after: others' work shares it.
                "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "whole_table_s": round(whole, 3),
                "open_flows_not_stopped": unstopped,
                "identities": identities,
                "elements": elements,
                # --quick: load_100k_s is of the smaller number of identities.
                "quick": quick,
            }
        )
    )


if __name__ == "__main__":
    main()
