"""Policy at load: the RADIUS AAA classifying every SIM for the attach plane, and the DNS
gateway tagging every requester, read from a SQLite file.

Run: .venv/bin/python bench/policy_load.py [--quick] [--sims N] [--others N] [--seed S]

A synthetic org, generated deterministically from the seed and written straight into the
tables (what is measured is the load, not how rows get there): N active SIMs, each held by
its own identity (in one or two of N/50 groups, some in a fleet) and bound to its own
device, most of which have a posture report (some stale or expired); a few SIMs were
swapped recently or are suspected clones; every SIM has a live session with an address.
The org has 50 attach rules (a third with posture or SIM requirements), 5 posture checks
and 5 DNS rules with SIM conditions. `--others` adds SIMs of an org without rules (the
loads must not pay for them). Figures (targets for 1,000,000 SIMs on a 2-core machine):

- attach_load_us_per_sim: `load_attach`, what the AAA's snapshot load calls, per SIM;
- dns_tags_load_us_per_entry: `load_entries`, the DNS identity view's full load with
  its tags, per live session.

Default N is 200,000; `--quick` is 5,000 (a few seconds). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine

from ztsim.db import schema
from ztsim.db.bulk import insert_rows
from ztsim.db.engine import make_engine, upgrade
from ztsim.dns.store.identity_view import load_entries
from ztsim.policy.rules import PolicyRule
from ztsim.radius.store.attach_policy import load_attach

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORG, OTHER = "org-bench", "org-bystander"
CHECKS = {
    "managed": "device.managed",
    "modern": 'device.managed and device.os_version >= "17.0"',
    "encrypted": "device.disk_encrypted and not device.jailbroken",
    "patched": 'device.os_version >= "16.4" or device.os == "android"',
    "compliant": 'device.compliant and device.os in ["ios", "android"]',
}
SIM_CONDITIONS = (
    "sim.swap_age < 24h",
    "not sim.clone_suspected",
    "sim.imei_mismatch",
    'sim.kind == "esim" and identity.kind == "user"',
    "sim.swap_age > 7d and not sim.imei_mismatch",
)
APNS = ("internet", "iot.corp", "mms", "ims", "private.lab")
ATTACH_RULES = 50
MAX_SIMS = 2_000_000  # bounded: the seeding holds every row in memory


def _time(value: datetime) -> str:
    """A time as SQLite stores it (naive UTC text), for rows handed to the driver."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _attach_rules(rng: random.Random, groups: int, fleets: int) -> list[PolicyRule]:
    out = []
    for i in range(ATTACH_RULES):
        spec: dict[str, object] = {"apns": sorted(rng.sample(APNS, rng.randint(1, 2)))}
        pick = rng.random()
        if pick < 0.5:
            spec["groups"] = [f"g{rng.randrange(groups)}" for _ in range(rng.randint(1, 20))]
        elif pick < 0.7:
            spec["fleets"] = [f"f{rng.randrange(fleets)}"]
        elif pick < 0.8:
            spec["identity_kinds"] = ["service"]
        if i % 3 == 0:
            names = rng.sample(sorted(CHECKS), rng.randint(1, 2))
            spec["posture"] = [("!" if rng.random() < 0.2 else "") + c for c in names]
            if rng.random() < 0.5:
                spec["sim"] = [rng.choice(SIM_CONDITIONS)]
        action = "allow" if i < ATTACH_RULES - 1 else "deny"  # the last one: everyone else
        if action == "deny":
            spec = {"apns": list(APNS)}
        out.append(PolicyRule.from_spec("attach", f"a{i}", action, spec))
    return out


def _dns_rules() -> list[PolicyRule]:
    return [
        PolicyRule.from_spec("dns", f"d{i}", "block", {"domains": [f"d{i}.test"], "sim": [c]})
        for i, c in enumerate(SIM_CONDITIONS)
    ]


def _org_rows(conn: Connection, org: str, rng: random.Random, n: int, start: int) -> None:
    """N SIMs of `org`, numbered from `start`, with identities, devices, posture, sessions."""
    now = _time(NOW)
    groups, fleets = max(1, n // 50), max(1, n // 200)
    insert_rows(
        conn,
        schema.groups,
        ("id", "org_id", "name", "created_at"),
        [(f"{org}-g{g}", org, f"g{g}", now) for g in range(groups)],
    )
    insert_rows(
        conn,
        schema.fleets,
        ("id", "org_id", "name", "created_at"),
        [(f"{org}-f{f}", org, f"f{f}", now) for f in range(fleets)],
    )
    people, members, fleet_members, devices, posture, sims, sessions = [], [], [], [], [], [], []
    for i in range(start, start + n):
        who, device = f"id{i:08d}", f"dev{i:08d}"
        people.append((who, org, "user" if rng.random() < 0.7 else "service", who, True, now))
        for g in {rng.randrange(groups) for _ in range(rng.randint(1, 2))}:
            members.append((f"{org}-g{g}", who))
        if rng.random() < 0.6:
            fleet_members.append((f"{org}-f{rng.randrange(fleets)}", who))
        devices.append((device, org, f"35{i:013d}", "", now))
        if rng.random() < 0.9:
            observed = NOW - timedelta(seconds=rng.randrange(0, 36 * 3600))
            expires = (
                observed + timedelta(hours=rng.choice((12, 48))) if rng.random() < 0.5 else None
            )
            attributes = {
                "managed": rng.random() < 0.8,
                "compliant": rng.random() < 0.7,
                "disk_encrypted": rng.random() < 0.9,
                "jailbroken": rng.random() < 0.03,
                "os": rng.choice(("ios", "android")),
                "os_version": f"{rng.randrange(14, 19)}.{rng.randrange(0, 6)}",
                "model": f"m{rng.randrange(40)}",
            }
            posture.append(
                (
                    device,
                    org,
                    "generic",
                    json.dumps(attributes),
                    _time(observed),
                    None if expires is None else _time(expires),
                    now,
                )
            )
        swapped = NOW - timedelta(hours=rng.randrange(0, 24 * 30)) if rng.random() < 0.05 else None
        clone = now if rng.random() < 0.01 else None
        iccid, imsi = f"8944{i:015d}", f"00101{i:010d}"
        kind = "esim" if rng.random() < 0.4 else "physical"
        sims.append(
            (
                org,
                iccid,
                imsi,
                kind,
                "active",
                who,
                device,
                b"k",
                b"o",
                None if swapped is None else _time(swapped),
                clone,
                now,
                now,
            )
        )
        sessions.append(
            (
                org,
                "gw",
                f"s{i}",
                "127.0.0.1",
                imsi,
                iccid,
                who,
                device,
                f"35{i:013d}01",
                f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                now,
                now,
            )
        )
    insert_rows(
        conn, schema.identities, ("id", "org_id", "kind", "name", "enabled", "created_at"), people
    )
    insert_rows(conn, schema.group_members, ("group_id", "identity_id"), members)
    insert_rows(conn, schema.fleet_members, ("fleet_id", "identity_id"), fleet_members)
    insert_rows(conn, schema.devices, ("id", "org_id", "imei", "name", "created_at"), devices)
    insert_rows(
        conn,
        schema.device_posture,
        ("device_id", "org_id", "source", "attributes", "observed_at", "expires_at", "received_at"),
        posture,
    )
    insert_rows(
        conn,
        schema.sims,
        (
            "org_id",
            "iccid",
            "imsi",
            "kind",
            "state",
            "identity_id",
            "device_id",
            "k_sealed",
            "opc_sealed",
            "swapped_at",
            "clone_suspected_at",
            "created_at",
            "updated_at",
        ),
        sims,
    )
    insert_rows(
        conn,
        schema.radius_sessions,
        (
            "org_id",
            "gateway_id",
            "acct_session_id",
            "nas_address",
            "imsi",
            "iccid",
            "identity_id",
            "device_id",
            "imei",
            "ue_address",
            "started_at",
            "updated_at",
        ),
        sessions,
    )


def seed(engine: Engine, sims: int, others: int, seed_value: int) -> None:
    """The org with rules (and `others` SIMs of an org without any)."""
    rng = random.Random(seed_value)
    now = _time(NOW)
    with engine.begin() as conn:
        insert_rows(
            conn,
            schema.orgs,
            ("id", "name", "slug", "tofu_binding", "created_at"),
            [(ORG, "Bench", "bench", False, now), (OTHER, "Other", "other", False, now)],
        )
        _org_rows(conn, ORG, rng, sims, 0)
        if others:
            _org_rows(conn, OTHER, rng, others, sims)
        rules = _attach_rules(rng, max(1, sims // 50), max(1, sims // 200)) + _dns_rules()
        insert_rows(
            conn,
            schema.policy_rules,
            (
                "id",
                "org_id",
                "plane",
                "name",
                "position",
                "action",
                "spec",
                "created_at",
                "updated_at",
            ),
            [
                (
                    f"r{i}",
                    ORG,
                    r.plane.value,
                    r.name,
                    i,
                    r.action,
                    json.dumps(r.to_spec()),
                    now,
                    now,
                )
                for i, r in enumerate(rules)
            ],
        )
        insert_rows(
            conn,
            schema.posture_checks,
            ("id", "org_id", "name", "expression", "max_age_s", "created_at", "updated_at"),
            [(f"c-{name}", ORG, name, text, 24 * 3600, now, now) for name, text in CHECKS.items()],
        )


def attach_figure(engine: Engine, sims: int) -> tuple[float, int]:
    """Seconds of one full attach load, and how many classes the SIMs fall into."""
    with engine.connect() as conn:
        start = time.perf_counter()
        state = load_attach(conn, NOW)
        elapsed = time.perf_counter() - start
    # A load that skipped SIMs cannot bench well: every SIM of the org is classified.
    assert len(state.classes) == sims, (len(state.classes), sims)
    return elapsed, state.policies[ORG].class_count


def dns_figure(engine: Engine, entries: int) -> tuple[float, int]:
    """Seconds of one full load of the DNS identity view, and its distinct tag sets."""
    with engine.connect() as conn:
        start = time.perf_counter()
        loaded = load_entries(conn, NOW)
        elapsed = time.perf_counter() - start
    assert len(loaded) == entries, (len(loaded), entries)
    tagged = [e.who.tags for e in loaded.values() if e.who.org_id == ORG]
    assert all(tagged), "every requester of the org with checks carries tags"
    return elapsed, len(set(tagged))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 SIMs, a few seconds")
    parser.add_argument("--sims", type=int, default=200_000, help="SIMs of the org with rules")
    parser.add_argument("--others", type=int, default=0, help="SIMs of an org without rules")
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    sims = 5_000 if args.quick else args.sims
    if sims < 1 or args.others < 0 or sims + args.others > MAX_SIMS:
        parser.error(f"1 to {MAX_SIMS:,} SIMs in all")
    with tempfile.TemporaryDirectory(prefix="ztsim-policy-load-") as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'ztsim.db'}")
        try:
            upgrade(engine)
            started = time.perf_counter()
            seed(engine, sims, args.others, args.seed)
            print(
                f"policy load: seeded {sims:,} SIMs (+{args.others:,} without rules) "
                f"in {time.perf_counter() - started:.1f} s"
            )
            attach_s, classes = attach_figure(engine, sims)
            print(
                f"policy load: attach classes of {sims:,} SIMs in {attach_s:.2f} s "
                f"({attach_s / sims * 1e6:.1f} us per SIM, {classes:,} classes)"
            )
            entries = sims + args.others
            dns_s, tag_sets = dns_figure(engine, entries)
            print(
                f"policy load: DNS identity view of {entries:,} sessions in {dns_s:.2f} s "
                f"({dns_s / entries * 1e6:.1f} us per entry, {tag_sets:,} tag sets)"
            )
        finally:
            engine.dispose()
    print(
        json.dumps(
            {
                "attach_load_us_per_sim": round(attach_s / sims * 1e6, 2),
                "dns_tags_load_us_per_entry": round(dns_s / entries * 1e6, 2),
                "sims": sims,
            }
        )
    )


if __name__ == "__main__":
    main()
