"""Policy engine: compiling an org's rules and sorting its subjects into policy classes.

Run: .venv/bin/python bench/policy.py [--quick] [--seed S]

A synthetic org, generated deterministically from the seed: N identities in groups and
fleets, most with a posture report (some stale, some expired), a few with a recent SIM
swap, a suspected clone or an IMEI mismatch; R rules over the dns, network and attach
planes naming groups, identities, fleets, kinds or everyone, about a fifth of them with
posture or SIM requirements. Figures (targets for a 2-core machine in brackets):

- compile_10k_500_s: build the CompiledPolicy and classify every subject (< 1 s);
- compile_100k_5k_s: the same at 100,000 identities and 5,000 rules (< 10 s);
- class_change_p99_ms: one subject's posture or SIM signals change and it is classified
  again, against the larger policy, 1,000 samples (< 5 ms).

The issue names no peer to compare with. `--quick` runs small sizes in a few seconds
(for the test suite). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import IdentityKind, Posture, SimKind, SimSignals, Subject
from ztsim.policy.rules import PolicyRule
from ztsim.policy.targets import DnsQuery, Flow

ORG = "org-bench"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CHECKS = {
    "managed": "device.managed",
    "modern": 'device.managed and device.os_version >= "17.0"',
    "encrypted": "device.disk_encrypted",
    "jailbroken": "device.jailbroken",
    "compliant": "device.compliant and not device.jailbroken",
    "ios": 'device.os == "ios"',
    "patched": 'device.os_version >= "16.4"',
    "supervised": 'device.supervised or device.os == "android"',
}
SIM_CONDITIONS = (
    "sim.swap_age < 24h",
    "not sim.clone_suspected",
    "sim.imei_mismatch",
    'sim.kind == "esim"',
    "sim.swap_age > 7d and not sim.imei_mismatch",
)
APNS = ("internet", "iot.corp", "mms", "ims", "private.lab")
SAMPLES = 1_000


def _posture(rng: random.Random) -> Posture | None:
    if rng.random() < 0.1:
        return None
    observed = NOW - timedelta(seconds=rng.randrange(0, 36 * 3600))
    expires = observed + timedelta(hours=rng.choice((12, 24, 48))) if rng.random() < 0.5 else None
    attributes = {
        "managed": rng.random() < 0.8,
        "compliant": rng.random() < 0.7,
        "disk_encrypted": rng.random() < 0.9,
        "jailbroken": rng.random() < 0.03,
        "supervised": rng.random() < 0.5,
        "os": rng.choice(("ios", "android")),
        "os_version": f"{rng.randrange(14, 19)}.{rng.randrange(0, 6)}",
    }
    return Posture(attributes, observed, expires, "generic")


def _signals(rng: random.Random) -> SimSignals:
    swapped = NOW - timedelta(hours=rng.randrange(0, 24 * 30)) if rng.random() < 0.05 else None
    return SimSignals(rng.random() < 0.01, rng.random() < 0.01, swapped)


def subjects(rng: random.Random, n: int) -> dict[str, Subject]:
    """N identities: ~50 per group, 1-3 groups each, ~200 per fleet, most in one."""
    groups = max(1, n // 50)
    fleets = max(1, n // 200)
    out = {}
    for i in range(n):
        ident = f"id-{i:06d}"
        out[ident] = Subject(
            ORG,
            ident,
            IdentityKind.USER if rng.random() < 0.7 else IdentityKind.SERVICE,
            frozenset(f"g{rng.randrange(groups)}" for _ in range(rng.randint(1, 3))),
            frozenset({f"f{rng.randrange(fleets)}"}) if rng.random() < 0.6 else frozenset(),
            SimKind.ESIM if rng.random() < 0.4 else SimKind.PHYSICAL,
            _signals(rng),
            _posture(rng),
        )
    return out


def _target(rng: random.Random, plane: str, i: int) -> dict[str, object]:
    if plane == "dns":
        return {"domains": [rng.choice(("", ".", "*.")) + f"d{i}.example"]}
    if plane == "network":
        spec: dict[str, object] = {"cidrs": [f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24"]}
        if rng.random() < 0.5:
            spec |= {"protocol": "tcp", "ports": [rng.choice(("443", "22", "8000-8100"))]}
        return spec
    return {"apns": [rng.choice(APNS)]}


def rules(rng: random.Random, count: int, n: int) -> list[PolicyRule]:
    """R rules: half dns, a third network, the rest attach; selectors of every kind."""
    groups, fleets = max(1, n // 50), max(1, n // 200)
    out = []
    for i in range(count):
        plane = rng.choices(("dns", "network", "attach"), (50, 35, 15))[0]
        action = rng.choice(("block", "allow") if plane == "dns" else ("deny", "allow"))
        spec = _target(rng, plane, i)
        pick = rng.random()
        if pick < 0.4:
            spec["groups"] = [f"g{rng.randrange(groups)}" for _ in range(rng.randint(1, 3))]
        elif pick < 0.6:
            spec["identities"] = [f"id-{rng.randrange(n):06d}" for _ in range(rng.randint(1, 5))]
        elif pick < 0.75:
            spec["fleets"] = [f"f{rng.randrange(fleets)}"]
        elif pick < 0.8:
            spec["sim_kinds"] = ["esim"] if rng.random() < 0.5 else []
            spec["identity_kinds"] = ["service"]
        if rng.random() < 0.2:
            names = rng.sample(sorted(CHECKS), rng.randint(0, 2))
            spec["posture"] = [("!" if rng.random() < 0.2 else "") + c for c in names]
            if not names or rng.random() < 0.3:
                spec["sim"] = [rng.choice(SIM_CONDITIONS)]
        out.append(PolicyRule.from_spec(plane, f"r{i}", action, spec))
    return out


def checks() -> dict[str, PostureCheck]:
    return {name: PostureCheck(name, text) for name, text in CHECKS.items()}


def compile_figure(
    n: int, count: int, seed: int
) -> tuple[float, CompiledPolicy, dict[str, Subject]]:
    rng = random.Random(seed)
    people = subjects(rng, n)
    written = rules(rng, count, n)
    start = time.perf_counter()
    policy = CompiledPolicy(ORG, written, checks())
    classes = policy.classify_many(people, NOW)
    elapsed = time.perf_counter() - start
    assert len(classes) == n
    # The classes answer: a few decisions, so a broken compile cannot bench well.
    some = list(classes.values())[:10]
    for class_id in some:
        policy.decide(class_id, "dns", DnsQuery("d1.example"))
        policy.decide(class_id, "network", Flow("10.0.0.1", "tcp", 443))
    return elapsed, policy, people


def change_p99_ms(policy: CompiledPolicy, people: dict[str, Subject], seed: int) -> float:
    """Milliseconds to classify one subject again after its posture or signals changed."""
    rng = random.Random(seed + 1)
    keys = sorted(people)
    times = []
    for i in range(SAMPLES):
        old = people[keys[rng.randrange(len(keys))]]
        if i % 2:
            changed = replace(old, posture=_posture(rng))
        else:
            changed = replace(old, signals=_signals(rng))
        start = time.perf_counter()
        policy.classify(changed, NOW)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[int(len(times) * 0.99) - 1] * 1000


def decide_us(policy: CompiledPolicy, people: dict[str, Subject], seed: int) -> tuple[float, float]:
    """Median microseconds of a class's first decision on a target, and of a cached one."""
    rng = random.Random(seed + 2)
    keys = sorted(people)
    first: list[float] = []
    cached: list[float] = []
    for i in range(SAMPLES):
        class_id = policy.classify(people[keys[rng.randrange(len(keys))]], NOW).class_id
        target = DnsQuery(f"d{rng.randrange(1000)}.example") if i % 2 else Flow("10.0.0.1")
        plane = "dns" if i % 2 else "network"
        for times in (first, cached):
            start = time.perf_counter()
            policy.decide(class_id, plane, target)
            times.append(time.perf_counter() - start)
    return sorted(first)[len(first) // 2] * 1e6, sorted(cached)[len(cached) // 2] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    small, large = ((1_000, 50), (5_000, 500)) if args.quick else ((10_000, 500), (100_000, 5_000))
    small_s, small_policy, _ = compile_figure(*small, args.seed)
    print(
        f"policy: {small[0]:,} identities x {small[1]:,} rules compiled and classified "
        f"in {small_s:.3f} s, {small_policy.class_count:,} classes"
    )
    large_s, large_policy, people = compile_figure(*large, args.seed)
    large_classes = large_policy.class_count  # before the change samples add their own
    print(
        f"policy: {large[0]:,} identities x {large[1]:,} rules compiled and classified "
        f"in {large_s:.3f} s, {large_policy.class_count:,} classes"
    )
    change = change_p99_ms(large_policy, people, args.seed)
    print(f"policy: one subject re-classified after a change, p99 {change:.3f} ms")
    uncached, cached = decide_us(large_policy, people, args.seed)
    print(
        f"policy: a decision, median {uncached:.1f} us first time for a class, {cached:.1f} us cached"
    )
    print(
        json.dumps(
            {
                "compile_10k_500_s": round(small_s, 3),
                "compile_100k_5k_s": round(large_s, 3),
                "class_change_p99_ms": round(change, 3),
                "classes_10k": small_policy.class_count,
                "classes_100k": large_classes,
                # --quick: the two compile figures are of the small sizes, not 10k/100k.
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
