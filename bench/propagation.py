"""Change propagation across scaled-out hosts (issue 15): from the API's commit to every
gateway acting on it, observed from outside.

Run (root; PostgreSQL): .venv/bin/python bench/propagation.py [--seconds 60] [--rate 50]
  [--sims 10000] [--cold-sims 100000]
The server is ZTSIM_TEST_DATABASE_URL's (default postgres@127.0.0.1:5432/test); a
database is made for the run and dropped after. Needs ip (iproute2). Traffic stays in
network namespaces the run makes (tests/support/netns_hosts.py) and on loopback.

- Hosts: `ztsim serve radius` x2, `ztsim serve dns --workers 2` x2, `ztsim serve api`,
  each in a namespace of its own, one PostgreSQL database; a packet gateway namespace
  owns the UE addresses, sends RADIUS from its registered address and listens for
  Disconnect-Requests (answered NAK by default, `--coa`: a gateway that does not
  cooperate, so a suspended SIM's session stays up and only ztsim's own refusal stops
  it; and a resumed SIM's address answers again).
- World: `--sims` active SIMs, each bound to its device with a static lease and a live
  session (bulk inserts before the hosts start: they load them), held by one identity
  each (`--sims-per-identity`: more, as an IoT fleet's service identity holds many).
- Load: `--rate` changes a second for `--seconds` through the API process, from a
  thread pool: suspends and resumes (never two open on one SIM), edits of 64 DNS
  override rules (each version answers a different address; never two open on one rule)
  and DoH device tokens issued and revoked.
- Observed (tests/support/netns_watch.py, in a process of its own at a higher priority
  than the hosts: an outside observer): per change and host, the first satisfying
  reply (on a DNS host, of 4 in a row from as many source ports, so both workers count),
  probing every 10 ms at first, slower as time passes, one probe in flight per host and
  change (a host slow to answer is asked less often, never flooded). A suspend is
  applied on a DNS host when its SIM's address gets REFUSED, on a RADIUS host when the
  SIM's Access-Request is rejected; a resume the reverse; a rule edit when the DNS hosts
  answer the new version (or a later one). Device tokens serve DoH only, which a scaled-out
  `ztsim serve dns` does not offer: they load the feed but are not timed
  (`unobserved_changes`).
- Times: from the change's outbox row's `created_at` (stamped by the API inside the
  request, before its commit: the figures are upper bounds); where no outbox row
  matches, from the API's response (`t0_from`). Propagation is the last host's time
  (`revoke_to_refused`: every DNS host refuses; `revoke_to_first_refused`: the first
  one does); `lost_changes` counts changes some host had not applied 30 s after the
  request, and `lost_said` what those hosts still answered (`over_1s_changes`: applied
  everywhere, but later than a second); `dns_converged_s`, how long after the load each
  DNS host took to answer as the database says for the changed SIMs (a sample of 400):
  late changes arrive, lost ones never do.
- The probes share the machine with the hosts: `probe_rtt_*` (a probe's round trip,
  per host) says how loaded it was; on an idle machine they are about a millisecond,
  and the figures above are good to about 10 ms (the probes' pace; a REFUSED may also
  wait up to 0.2 s for the DNS host's one more look at the feed, `dns/serve/late.py`).
  `cpu_seconds`: what each host, PostgreSQL, the relay, the watcher and this process
  (the load's requests) used during the load, against the wall-clock seconds times the
  CPUs there are: past about 100%, the figures measure the machine.
- Cold start: `--cold-sims` SIMs with live sessions in all, then a fresh DNS host and a
  fresh RADIUS host, one after the other (the load's hosts stopped): seconds from the
  process's start to the first correct answer about the newest SIM.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the namespace harness is the tests' own

from ztsim.clock import utc_now  # noqa: E402
from ztsim.db import schema  # noqa: E402
from ztsim.dns.policy.rules import Action, Rule  # noqa: E402
from ztsim.dns.store import repository as dns_repo  # noqa: E402
from ztsim.radius import Code  # noqa: E402
from ztsim.sealing import Sealer, parse_key  # noqa: E402

from support.dns_state import differences, expected_digest, observed_digest  # noqa: E402
from support.netns_clients import (  # noqa: E402
    NOERROR,
    REFUSED,
    CoaReply,
    Disconnect,
    RadiusPeer,
    ask,
)
from support.netns_hosts import netns_unusable  # noqa: E402
from support.netns_watch import Target, Want  # noqa: E402
from support.netns_watch_process import WatchProcess, WatchStats  # noqa: E402
from support.scale_out import (  # noqa: E402
    Cluster,
    HostProcess,
    group_cpu_seconds,
    http_ok,
    pid_cpu_seconds,
    wait_serving,
)
from support.scale_world import (  # noqa: E402
    PROBE_NAME,
    UE_PREFIX,
    ScaleWorld,
    SeededSim,
    add_sessions,
    add_sims,
    rule_answer,
    seed,
)

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-" + secrets.token_hex(16)
# Seconds after its request by which every host must have applied a change, or it counts
# as lost: long, so that late (a loaded machine) and lost (a bug) are told apart.
DEADLINE = 30.0
START_TIMEOUT = 300.0
CONVERGE_SECONDS = 60.0
RULES = 64  # override rules the load edits


@dataclass(eq=False)
class Change:
    index: int
    kind: str  # suspend, resume, rule, token_issue, token_revoke
    topic: str
    key: str
    sim: SeededSim | None = None
    version: int = 0
    rule: tuple[str, str] | None = None  # (id, name) of the rule edited
    sent: float = 0.0
    answered: float | None = None
    targets: list[Target] = field(default_factory=list)
    t0: float | None = None
    t0_from: str = ""
    failed: str = ""
    done_requesting: bool = False
    released: bool = False


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)


class Load:
    """Picks the changes and makes them through the API; watches each on every host."""

    def __init__(
        self,
        world: ScaleWorld,
        api: str,
        watcher: WatchProcess,
        dns: list[HostProcess],
        radius: list[HostProcess],
        observer: SeededSim,
        rules: list[tuple[str, str]],
    ) -> None:
        self.world, self.api, self.watcher = world, api, watcher
        self.dns, self.radius, self.observer = dns, radius, observer
        # Override rules (id, name): each edited by one request at a time, so that its
        # versions commit in order (two PUTs of one rule in flight could commit swapped).
        self.free_rules = list(rules)
        self.changes: list[Change] = []
        self.version = 1
        self.rng = random.Random(15)
        self.active = [s for s in world.sims if s is not observer]
        self.suspended: list[SeededSim] = []
        self.busy: set[int] = set()  # SIMs with a change still open
        self.tokens: list[str] = []
        self.local = threading.local()
        self.lock = threading.Lock()

    def client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(
                base_url=f"{self.api}/api/v1",
                headers={"Authorization": f"Bearer {self.world.admin_token}"},
                timeout=30,
            )
            self.local.client = client
        return client

    def next_change(self) -> Change:
        with self.lock:
            index = len(self.changes)
            roll = self.rng.random()
            ready = [s for s in self.suspended if s.n not in self.busy]
            if roll < 0.3 and ready:
                sim = self.rng.choice(ready)
                self.suspended.remove(sim)
                change = Change(index, "resume", "sim", sim.iccid, sim=sim)
            elif roll < 0.6:
                sim = self.active.pop(self.rng.randrange(len(self.active)))
                change = Change(index, "suspend", "sim", sim.iccid, sim=sim)
            elif roll < 0.8 and self.free_rules:
                self.version += 1
                rule = self.free_rules.pop(self.rng.randrange(len(self.free_rules)))
                change = Change(
                    index, "rule", "dns", self.world.org_id, version=self.version, rule=rule
                )
            elif roll < 0.9 or not self.tokens:
                change = Change(index, "token_issue", "device_token", "")
            else:
                token = self.tokens.pop(self.rng.randrange(len(self.tokens)))
                change = Change(index, "token_revoke", "device_token", token)
            if change.sim is not None:
                self.busy.add(change.sim.n)
            self.changes.append(change)
            return change

    def targets(self, change: Change) -> list[Target]:
        sim, now = change.sim, time.time()
        if change.rule is not None:
            newer = Want("version", change.version)
            return [
                Target(
                    change.index,
                    d.host.name,
                    d.address,
                    newer,
                    self.observer.address,
                    change.rule[1],
                    started=now,
                )
                for d in self.dns
            ]
        if sim is None:
            return []
        suspend = change.kind == "suspend"
        dns_ok = Want("rcode", REFUSED if suspend else NOERROR)
        radius_ok = Want("code", Code.ACCESS_REJECT if suspend else Code.ACCESS_ACCEPT)
        out = [
            Target(
                change.index, d.host.name, d.address, dns_ok, sim.address, PROBE_NAME, started=now
            )
            for d in self.dns
        ]
        out += [
            Target(
                change.index,
                r.host.name,
                r.address,
                radius_ok,
                sim=sim.radius,
                confirm=1,  # one process: its first Access-Reject is the host's
                started=now,
            )
            for r in self.radius
        ]
        return out

    def make(self, change: Change) -> None:
        """On a pool thread: watch, then request; the SIM returns to its set when done."""
        change.targets = self.targets(change)
        for target in change.targets:
            self.watcher.add(target)
        change.sent = time.time()
        try:
            response = self._request(change)
            change.answered = time.time()
            if response.status_code >= 300:
                change.failed = f"HTTP {response.status_code}"
            elif change.kind == "token_issue":
                change.key = response.json()["id"]
                with self.lock:
                    self.tokens.append(change.key)
        except httpx.HTTPError as exc:
            change.failed = type(exc).__name__
        self._maybe_release(change, answered=True)

    def closed(self, target: Target) -> None:
        """The watcher's `on_close`: one more target of a change done."""
        self._maybe_release(self.changes[target.change])

    def _request(self, change: Change) -> httpx.Response:
        client, sim = self.client(), change.sim
        if change.kind in ("suspend", "resume"):
            assert sim is not None
            reason = {"reason": "bench"} if change.kind == "suspend" else {"reason": ""}
            return client.post(f"/sims/{sim.iccid}/{change.kind}", json=reason)
        if change.rule is not None:
            rule_id, name = change.rule
            body = {
                "name": name.removesuffix(".test"),
                "action": "override",
                "domains": [name],
                "answer": [rule_answer(change.version)],
            }
            return client.put(f"/dns/rules/{rule_id}", json=body)
        if change.kind == "token_issue":
            sim = self.rng.choice(self.world.sims)
            return client.post("/dns/device-tokens", json={"device_id": sim.device_id})
        return client.delete(f"/dns/device-tokens/{change.key}")

    def _maybe_release(self, change: Change, answered: bool = False) -> None:
        """The SIM (or rule) goes back to its set once the API has answered and every host
        has applied the change (or been given up on): only then may it change again."""
        sim = change.sim
        with self.lock:
            change.done_requesting |= answered
            if change.released or not change.done_requesting or any(t.open for t in change.targets):
                return
            change.released = True
            if change.rule is not None:
                self.free_rules.append(change.rule)
            if sim is None:
                return
            self.busy.discard(sim.n)
            if change.failed:
                (self.suspended if change.kind == "resume" else self.active).append(sim)
            elif change.kind == "suspend":
                self.suspended.append(sim)
            else:
                self.active.append(sim)


def extra_rules(engine: Any, world: ScaleWorld, count: int) -> list[tuple[str, str]]:
    """More override rules like the world's (probe-N.test), so edits need not queue."""
    made = []
    with engine.begin() as conn:
        for k in range(1, count + 1):
            name = f"probe-{k}.test"
            rule = Rule(f"probe-{k}", Action.OVERRIDE, domains=(name,), answer=(rule_answer(1),))
            made.append((dns_repo.create_rule(conn, world.org_id, rule, None, utc_now()).id, name))
    return made


def run_load(load: Load, seconds: float, rate: float) -> None:
    """Changes at `rate` a second for `seconds` (the pool is large enough that a slow
    answer does not hold up the next request)."""
    started = time.monotonic()
    total = int(seconds * rate)
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pool.submit(load.make, load.next_change())
            if i and i % max(1, int(rate * 10)) == 0:
                print(f"  {i} changes made, {time.monotonic() - started:.0f} s", flush=True)


def stamp_t0(engine: Any, changes: list[Change], since: float) -> None:
    """Each change's outbox row (same topic and key, stamped within its request)."""
    t = schema.change_outbox
    rows: dict[tuple[str, str], list[float]] = {}
    with engine.connect() as conn:
        query = select(t.c.topic, t.c.key, t.c.created_at).order_by(t.c.seq)
        for topic, key, created in conn.execute(query):
            if created.timestamp() >= since - 1:
                rows.setdefault((topic, key), []).append(created.timestamp())
    for change in changes:
        if change.answered is None:
            continue
        # Stamped inside the request: after it was sent, before its answer. Edits of
        # other rules share the key (the org): the earliest in the window is taken, which
        # is this change's own or earlier (the figure errs long, never short).
        stamps = [
            s
            for s in rows.get((change.topic, change.key), [])
            if change.sent - 0.005 <= s <= change.answered + 0.005
        ]
        if stamps:
            change.t0, change.t0_from = stamps[0], "outbox"
        else:
            change.t0, change.t0_from = change.answered, "response"


def disconnect_times(disconnects: list[Disconnect], changes: list[Change]) -> dict[int, float]:
    out = {}
    for change in changes:
        if change.kind != "suspend" or change.sim is None or change.t0 is None:
            continue
        sim = change.sim
        times = [
            d.at
            for d in disconnects
            if (d.user_name == sim.imsi or d.address == sim.address) and d.at >= change.sent - 0.01
        ]
        if times:
            out[change.index] = min(times) - change.t0
    return out


def _role_ms(change: Change, hosts: set[str]) -> float | None:
    """The last of these hosts' times for a change, in ms (None: one never applied it)."""
    times = [t.applied_at for t in change.targets if t.host in hosts]
    if not times or change.t0 is None or any(t is None for t in times):
        return None
    return (max(t for t in times if t is not None) - change.t0) * 1000


def summarize(load: Load, stats: WatchStats) -> dict[str, Any]:
    observed = [c for c in load.changes if c.targets and not c.failed and c.t0 is not None]
    everyone = {t.host for c in observed for t in c.targets}
    roles = {"dns": {d.host.name for d in load.dns}, "radius": {r.host.name for r in load.radius}}
    latency = {c.index: _role_ms(c, everyone) for c in observed}
    applied = [v for v in latency.values() if v is not None]
    refused = [
        v for c in observed if c.kind == "suspend" and (v := _role_ms(c, roles["dns"])) is not None
    ]
    # The first REFUSED any DNS host gave for a suspended SIM's address.
    first_refused: list[float] = []
    for c in observed:
        times = [t.applied_at for t in c.targets if t.host in roles["dns"]]
        done = [t for t in times if t is not None]
        if c.kind == "suspend" and c.t0 is not None and done:
            first_refused.append((min(done) - c.t0) * 1000)
    disconnect = disconnect_times(stats.disconnects, observed)
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in ("suspend", "resume", "rule"):
        mine = [c for c in observed if c.kind == kind]
        values = [v for c in mine if (v := latency[c.index]) is not None]
        entry: dict[str, Any] = {
            "n": len(mine),
            "lost": len(mine) - len(values),
            "p50_ms": pct(values, 0.5),
            "p99_ms": pct(values, 0.99),
        }
        for role, hosts in roles.items():
            if any(t.host in hosts for c in mine for t in c.targets):
                times = [_role_ms(c, hosts) for c in mine]
                done = [v for v in times if v is not None]
                entry[f"{role}_p50_ms"] = pct(done, 0.5)
                entry[f"{role}_p99_ms"] = pct(done, 0.99)
                entry[f"{role}_lost"] = len(times) - len(done)
        by_kind[kind] = entry
    # What the hosts still said when given up: no reply at all, or the old state.
    still: Counter[str] = Counter()
    for c in observed:
        for t in c.targets:
            if t.applied_at is None:
                said = "no reply" if t.replies == 0 else str(t.last)
                if t.broken:  # both ways: one of the host's workers had, another not
                    said = f"both ways, last {said}"
                still[f"{c.kind} {t.host}: {said}"] += 1
    api = [(c.answered - c.sent) * 1000 for c in load.changes if c.answered is not None]
    ends = [c.answered for c in load.changes if c.answered is not None]
    span = max(ends) - min(c.sent for c in load.changes) if ends else 0.0
    return {
        "propagation_p50_ms": pct(applied, 0.5),
        "propagation_p99_ms": pct(applied, 0.99),
        "revoke_to_refused_p99_ms": pct(refused, 0.99),
        "revoke_to_disconnect_p99_ms": pct([v * 1000 for v in disconnect.values()], 0.99),
        "lost_changes": len(latency) - len(applied),
        "over_1s_changes": sum(v > 1000 for v in applied),
        "revoke_to_first_refused_p99_ms": pct(first_refused, 0.99),
        "changes": len(load.changes),
        "failed_requests": sum(bool(c.failed) for c in load.changes),
        "unobserved_changes": sum(not c.targets for c in load.changes if not c.failed),
        "by_kind": by_kind,
        "disconnects_missing": sum(
            c.index not in disconnect for c in observed if c.kind == "suspend"
        ),
        "t0_from": {src: sum(c.t0_from == src for c in observed) for src in ("outbox", "response")},
        "api_p50_ms": pct(api, 0.5),
        "api_p99_ms": pct(api, 0.99),
        "probes": stats.probes,
        "lost_said": dict(still.most_common(12)),
        # The probes' own round trips, per host: a slow or silent host shows here.
        "probe_rtt_p50_ms": {
            h: pct([v * 1000 for v in r], 0.5) for h, r in sorted(stats.round_trips.items())
        },
        "probe_rtt_p99_ms": {
            h: pct([v * 1000 for v in r], 0.99) for h, r in sorted(stats.round_trips.items())
        },
        "probe_timeouts": dict(sorted(stats.timeouts.items())),
        # Changes the API completed per second, first request to last answer.
        "rate_achieved": round(len(ends) / span, 1) if span > 0 else None,
    }


def cpu_use(cluster: Cluster, watcher: WatchProcess) -> dict[str, float]:
    """CPU seconds used so far: each host (with its workers), PostgreSQL (every backend,
    this run's and any other's), the relay, the watcher (probes) and this process (the
    load's requests)."""
    out = {name: p.cpu_seconds() for name, p in cluster.processes.items()}
    out["postgres"] = group_cpu_seconds(0, name="postgres")
    out["relay"] = cluster.relay_cpu()
    out["watcher"] = 0.0 if watcher.pid is None else pid_cpu_seconds(watcher.pid)
    times = os.times()
    out["bench"] = times.user + times.system
    return out


def converged(
    engine: Any, world: ScaleWorld, load: Load, ns: str, dns: list[HostProcess]
) -> dict[str, float | str]:
    """Per DNS host, seconds after the load (and the watch) until its answers for the
    changed SIMs equal the database's (late changes arrive; lost ones never do), or how
    many still differ after CONVERGE_SECONDS."""
    addresses = sorted({c.sim.address for c in load.changes if c.sim is not None})
    addresses = random.Random(1).sample(addresses, min(len(addresses), 400))
    started, out = time.monotonic(), {}
    for host in dns:
        diff: list[str] = []
        while True:
            want = expected_digest(engine, world.org_id, world.rule_id, addresses)
            got = observed_digest(ns, host.address, addresses, PROBE_NAME, ports_per_address=3)
            diff = differences(want, got)
            if not diff or time.monotonic() - started > CONVERGE_SECONDS:
                break
            time.sleep(0.5)
        took = round(time.monotonic() - started, 1)
        out[host.host.name] = took if not diff else f"{len(diff)} differ, e.g. {diff[0]}"
    return out


def cold_start(
    cluster: Cluster, peer: RadiusPeer, newest: SeededSim, answer: str
) -> tuple[float, float]:
    """Seconds from process start to the first correct answer about the newest SIM (its
    session's address answered with the rule's current answer; Access-Accept): a DNS
    host, then a RADIUS host."""
    gateway = cluster.fabric.hosts["pgw"]
    want = (NOERROR, (answer,))
    dns = cluster.add_role("dns", "dns-cold", 23, args=["--workers", "2"]).start()

    seen: list[object] = []

    def dns_right() -> bool:
        reply = ask(gateway.ns, newest.address, dns.address, PROBE_NAME, timeout=0.2)
        seen[:] = [reply]
        return (reply.rcode, reply.addresses) == want

    try:
        dns_s = wait_serving(dns, dns_right, START_TIMEOUT)
    except TimeoutError:
        print(f"cold start: the DNS host's last answer {seen}, wanted {want}", flush=True)
        raise
    print(f"cold start: DNS host answers the newest session after {dns_s:.2f} s", flush=True)
    dns.stop()
    radius = cluster.add_role("radius", "radius-cold", 13).start()

    def radius_right() -> bool:
        return peer.access(radius.address, newest.radius, timeout=0.2, tries=1).accepted

    radius_s = wait_serving(radius, radius_right, START_TIMEOUT)
    print(f"cold start: RADIUS host accepts the newest SIM after {radius_s:.2f} s", flush=True)
    radius.stop()
    return dns_s, radius_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=50.0, help="changes a second")
    parser.add_argument("--sims", type=int, default=10_000, help="SIMs with live sessions")
    parser.add_argument("--cold-sims", type=int, default=100_000, help="0: no cold start")
    parser.add_argument("--workers", type=int, default=2, help="processes per DNS host")
    parser.add_argument("--coa", choices=[r.value for r in CoaReply], default="nak")
    parser.add_argument(
        "--sims-per-identity",
        type=int,
        default=1,
        help="SIMs each holder has (1: people with a phone each; large: an IoT fleet)",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.rate <= 0 or args.sims < 10 or args.sims_per_identity < 1:
        parser.error("--seconds, --rate and --sims-per-identity positive, --sims at least 10")
    if args.cold_sims and args.cold_sims < args.sims:
        parser.error("--cold-sims must be 0 or at least --sims")
    if why := netns_unusable():
        sys.exit(f"bench/propagation.py {why}")
    url = os.environ.get("ZTSIM_TEST_DATABASE_URL") or DEFAULT_DB
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, Cluster(url, Path(tmp)) as cluster:
        gateway = cluster.add_packet_gateway("pgw", 40, UE_PREFIX)
        workers = ["--workers", str(args.workers)]
        dns = [cluster.add_role("dns", f"dns{i}", 20 + i, args=workers) for i in (1, 2)]
        primary = {"ZTSIM_RADIUS_DNS_PRIMARY": dns[0].address}
        radius = [cluster.add_role("radius", f"radius{i}", 10 + i, env=primary) for i in (1, 2)]
        api = cluster.add_role("api", "api", 30)
        engine = cluster.engine()
        sealer = Sealer(parse_key(cluster.master_key))
        started = time.monotonic()
        world = seed(engine, sealer, gateway_address=gateway.address, secret=SECRET)
        per = args.sims_per_identity
        world.sims += add_sims(engine, sealer, world, 0, args.sims, per_identity=per)
        add_sessions(engine, world, world.sims, "bench")
        # Before the hosts start (they load them): written here, they are on no feed.
        rules = [(world.rule_id, PROBE_NAME), *extra_rules(engine, world, RULES - 1)]
        print(f"seeded {args.sims} SIMs with live sessions in {time.monotonic() - started:.1f} s")
        peer = RadiusPeer(gateway.ns, gateway.address, SECRET)
        observer = world.sims[0]

        def serving(process: HostProcess) -> bool:
            """Right about the observer SIM (the API: up)."""
            if process.role == "dns":
                reply = ask(gateway.ns, observer.address, process.address, PROBE_NAME, timeout=0.3)
                return reply.rcode == NOERROR
            if process.role == "radius":
                return peer.access(process.address, observer.radius, timeout=0.3, tries=1).accepted
            return http_ok(f"http://{process.address}:8080/openapi.json")

        for process in (*dns, *radius, api):
            process.start()
        for process in (*dns, *radius, api):
            took = wait_serving(process, partial(serving, process), START_TIMEOUT)
            print(f"{process.host.name} serving after {took:.1f} s", flush=True)
        # Forked before this process starts any thread of its own.
        watcher = WatchProcess(
            gateway.ns, gateway.address, SECRET, deadline=DEADLINE, coa=CoaReply(args.coa)
        ).start()
        load = Load(world, f"http://{api.address}:8080", watcher, dns, radius, observer, rules)
        watcher.on_close = load.closed
        try:
            since = time.time()
            cpu_before = cpu_use(cluster, watcher)
            print(f"load: {args.rate:g} changes/s for {args.seconds:g} s", flush=True)
            run_load(load, args.seconds, args.rate)
            cpu_after = cpu_use(cluster, watcher)
            cpu = {k: round(v - cpu_before[k], 1) for k, v in cpu_after.items()}
            watcher.wait(DEADLINE + 2)
            time.sleep(1.0)  # the last Disconnect-Requests
        finally:
            stats = watcher.stop()
        stamp_t0(engine, load.changes, since)
        results = summarize(load, stats)
        results["cpu_seconds"] = cpu | {"wall": args.seconds, "cpus": os.cpu_count()}
        results["dns_converged_s"] = converged(engine, world, load, gateway.ns, dns)
        print(json.dumps(results, indent=None)[:2000], flush=True)
        for process in (*dns, *radius, api):
            process.stop()
        dns_s = radius_s = None
        if args.cold_sims:
            started = time.monotonic()
            extra = add_sims(
                engine, sealer, world, args.sims, args.cold_sims - args.sims, per_identity=per
            )
            add_sessions(engine, world, extra, "cold")
            print(
                f"seeded {len(extra)} more SIMs with sessions ({args.cold_sims} in all) "
                f"in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            with engine.connect() as conn:
                answer = dns_repo.get_rule(conn, world.org_id, world.rule_id).rule.answer[0]
            try:
                dns_s, radius_s = cold_start(cluster, peer, extra[-1], answer)
            except (TimeoutError, RuntimeError) as exc:
                # The load's figures still stand: reported with the reason.
                print(f"cold start failed: {exc}", flush=True)
                results["cold_start_error"] = str(exc).splitlines()[0]
        engine.dispose()
    results.update(
        {
            "cold_start_100k_s": None if dns_s is None else round(max(dns_s, radius_s or 0), 2),
            "cold_start_dns_s": None if dns_s is None else round(dns_s, 2),
            "cold_start_radius_s": None if radius_s is None else round(radius_s, 2),
            "cold_sims": args.cold_sims,
            "sims": args.sims,
            "seconds": args.seconds,
            "rate": args.rate,
            "coa": args.coa,
            "sims_per_identity": args.sims_per_identity,
        }
    )
    keys = [
        "propagation_p50_ms",
        "propagation_p99_ms",
        "revoke_to_refused_p99_ms",
        "revoke_to_disconnect_p99_ms",
        "cold_start_100k_s",
        "lost_changes",
    ]
    ordered = {k: results.get(k) for k in keys} | {
        k: v for k, v in results.items() if k not in keys
    }
    print(json.dumps(ordered))


if __name__ == "__main__":
    main()
