"""FQDN rules: chains in segments, the learned sets and their timeouts, held equal to the
policy's reference evaluator (with `Flow.names`) twice: by the segments' own semantics and
by a small interpreter of the nft documents the table is made of. A sample goes through a
real kernel's nft in a namespace (the documents are accepted, timeouts and refreshes
behave as `net.fqdn` says); real packets are `tests/net/serve/test_net_serve_fqdn.py`'s."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.net.fqdn import (
    CAP_SECONDS,
    FLOOR_SECONDS,
    Answered,
    FqdnRule,
    Learned,
    Segmented,
    compile_chain,
    timeout,
)
from ztsim.net.gateway_plan import ChainSpec, GatewayTable
from ztsim.net.nft import Nft
from ztsim.net.nft_names import Command
from ztsim.net.ruleset import MISS, Flattened, flatten
from ztsim.policy.facts import Subject
from ztsim.policy.reference import decide
from ztsim.policy.rules import PolicyRule
from ztsim.policy.targets import Flow

from support.netns_hosts import ip, netns_unusable, new_tag, reap_stale
from tests_clock import NOW

UE = "10.45.0.2"
QNAMES = ("intranet.acme.test", "wiki.acme.test", "acme.test", "x.corp.test", "other.test")
DOMAINS = ("intranet.acme.test", "*.acme.test", ".acme.test", ".corp.test", "nothing.test")
CIDRS = ("192.0.2.0/28", "192.0.2.8/29", "198.51.100.0/24", "2001:db8::/126", "0.0.0.0/0")
ADDRESSES = ("192.0.2.1", "192.0.2.9", "192.0.2.200", "198.51.100.7", "2001:db8::1", "2001:db8::9")
NUMBERS = {"tcp": 6, "udp": 17}


def rule(name: str, action: str, **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec("network", name, action, spec)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- pure ------------------------------------------------------------------------------


def test_timeouts_have_a_floor_and_a_cap() -> None:
    assert timeout(0) == FLOOR_SECONDS
    assert timeout(300) == 300
    assert timeout(10**9) == CAP_SECONDS
    assert timeout(2, floor=1) == 2
    assert timeout(0, floor=0) == 1  # an element with no time left is no element


def test_a_chain_without_domains_is_flattened_as_before() -> None:
    rules = [rule("a", "allow", cidrs=["192.0.2.0/24"], protocol="tcp", ports=["80"])]
    assert compile_chain(rules) == flatten(rules)
    with pytest.raises(InvalidInput, match=r"compiled by net\.fqdn"):
        flatten([rule("d", "allow", domains=["a.test"])])


def test_a_chain_with_domains_is_cut_into_segments_in_rule_order() -> None:
    rules = [
        rule("cidr1", "allow", cidrs=["192.0.2.0/24"]),
        rule("cidr2", "deny", cidrs=["198.51.100.0/24"]),
        rule("web", "allow", domains=["*.acme.test"], protocol="tcp", ports=["80", "8000-8100"]),
        rule("both", "deny", cidrs=["203.0.113.0/24"], domains=[".corp.test"]),
        rule("last", "allow", protocol="icmp"),
    ]
    chain = compile_chain(rules)
    assert isinstance(chain, Segmented)
    kinds = [type(s).__name__ for s in chain.segments]
    assert kinds == ["Flattened", "FqdnRule", "Flattened", "FqdnRule", "Flattened"]
    first, web, both_cidrs, both, last = chain.segments
    assert isinstance(first, Flattened)
    assert first.default == MISS
    assert first.verdict("198.51.100.1", 6, 80) == "drop"  # explicit: kept, not a miss
    assert first.verdict("10.0.0.1", 6, 80) == MISS
    assert web == FqdnRule(0, "web", ("*.acme.test",), "tcp", ((80, 80), (8000, 8100)), "accept")
    assert isinstance(both_cidrs, Flattened)
    assert both_cidrs.verdict("203.0.113.5", 17, 1) == "drop"
    assert isinstance(both, FqdnRule)
    assert (both.k, both.verdict) == (1, "drop")
    assert [r.k for r in chain.fqdn_rules] == [0, 1]
    assert web.matches("a.acme.test")
    assert not web.matches("acme.test")
    assert web.protocol_number(6) == 6
    assert both.protocol_number(4) is None
    assert rule_icmp_number() == (1, 58)
    assert isinstance(last, Flattened)
    assert len(chain) == len(first) + len(both_cidrs) + len(last)


def rule_icmp_number() -> tuple[int | None, int | None]:
    icmp = FqdnRule(0, "p", ("a.test",), "icmp", (), "accept")
    return icmp.protocol_number(4), icmp.protocol_number(6)


def test_learned_expiries_only_grow_and_refreshes_rewrite_the_set() -> None:
    learned = Learned(slack=2.0, max_per_set=3)
    key = ("c", 0, 4)
    first = learned.plan({key: {"192.0.2.1": (130.0, "a.test")}}, now=100.0)
    assert first.add == {key: {"192.0.2.1": 30}}
    assert not first.rewrite
    learned.commit(first)
    # Shorter: nothing to do. Longer: the set is rewritten with every live element.
    assert not learned.plan({key: {"192.0.2.1": (120.0, "a.test")}}, now=101.0)
    second = learned.plan(
        {key: {"192.0.2.1": (400.0, "b.test"), "192.0.2.2": (150.0, "a.test")}}, now=110.0
    )
    assert second.rewrite == {key: {"192.0.2.1": 290, "192.0.2.2": 40}}
    assert not second.add
    learned.commit(second)
    assert learned.names("c", "192.0.2.1", 111.0) == frozenset({"b.test"})
    assert learned.names("c", "192.0.2.1", 500.0) == frozenset()
    # Just expired (within the slack) may still be in the kernel: a rewrite, never a bare add.
    third = learned.plan({key: {"192.0.2.2": (300.0, "a.test")}}, now=151.0)
    assert third.rewrite
    assert not third.add
    # Long gone: a plain add.
    assert learned.plan({key: {"192.0.2.2": (300.0, "a.test")}}, now=160.0).add
    # A full set refuses new addresses, and counts them.
    learned.commit(learned.plan({key: {"192.0.2.3": (300.0, "a.test")}}, now=160.0))
    full = learned.plan({key: {"192.0.2.4": (300.0, "a"), "192.0.2.5": (300.0, "a")}}, 160.0)
    assert full.refused == 1
    learned.forget(["c"])
    assert learned.members(160.0) == {}


def test_the_table_learns_for_the_requesters_chain_and_refills_a_new_table() -> None:
    clock = Clock()
    table = GatewayTable(monotonic=clock, floor=2)
    spec = ChainSpec.of([rule("web", "allow", domains=["intranet.acme.test"], protocol="tcp")])
    plain = ChainSpec.of([rule("cidr", "allow", cidrs=["192.0.2.0/24"])])
    table.commit(table.plan_whole({UE: spec, "10.45.0.3": plain}, ["0.0.0.0/0"]))
    sets = table.fqdn(spec.name)
    assert [(s.k, s.rule, s.domains) for s in sets] == [(0, "web", ("intranet.acme.test",))]
    assert sets[0].sets == {
        4: f"class_{spec.name}_f0_v4",
        6: f"class_{spec.name}_f0_v6",
    }
    assert table.fqdn(plain.name) == ()
    plan = table.plan_learn(
        [
            Answered(UE, "Intranet.ACME.test.", ("192.0.2.7", "2001:db8::7"), 5),
            Answered(UE, "other.test", ("192.0.2.8",), 5),  # no rule names it
            Answered("10.45.0.3", "intranet.acme.test", ("192.0.2.9",), 5),  # no FQDN rules
            Answered("10.45.0.99", "intranet.acme.test", ("192.0.2.9",), 5),  # no session
        ]
    )
    assert (plan.answers, plan.ignored) == (1, 3)
    adds = [c["add"]["element"] for c in plan.commands]
    assert [(a["name"], a["elem"]) for a in adds] == [
        (f"class_{spec.name}_f0_v4", [{"elem": {"val": "192.0.2.7", "timeout": 5}}]),
        (f"class_{spec.name}_f0_v6", [{"elem": {"val": "2001:db8::7", "timeout": 5}}]),
    ]
    table.commit_learn(plan)
    assert table.names(UE, "192.0.2.7") == frozenset({"intranet.acme.test"})
    assert table.names("10.45.0.3", "192.0.2.7") == frozenset()
    clock.now += 1
    whole = table.plan_whole({UE: spec}, ["0.0.0.0/0"])
    refill = [c["add"]["element"] for c in whole.commands if "element" in c.get("add", {})]
    assert {"elem": {"val": "192.0.2.7", "timeout": 4}} in refill[-2]["elem"]
    table.commit(whole)
    assert whole.fqdn == {spec.name: sets}
    # The chain goes with its last subject, and what it learned with it.
    gone = table.plan({UE: None})
    assert any("delete" in c and "set" in c["delete"] for c in gone.commands)
    table.commit(gone)
    assert table.learned.members(clock.now) == {}


def test_chain_names_change_only_for_rules_with_domains() -> None:
    cidr = rule("r", "allow", cidrs=["192.0.2.0/24"])
    named = rule("r", "allow", cidrs=["192.0.2.0/24"], domains=["a.test"])
    content = json.dumps([["r", "allow", ["192.0.2.0/24"], "any", []]], separators=(",", ":"))
    assert ChainSpec.of([cidr]).name == "n_" + hashlib.sha256(content.encode()).hexdigest()[:12]
    assert ChainSpec.of([cidr]).name != ChainSpec.of([named]).name


# -- the documents, interpreted ------------------------------------------------------------


class Interpreter:
    """nft's semantics for the statements our documents use: chain rules in order, vmap
    lookups on interval maps, set matches, l4proto and dport matches, verdicts."""

    def __init__(self, commands: list[Command]) -> None:
        self.rules: dict[str, list[list[dict[str, Any]]]] = {}
        self.elements: dict[str, list[Any]] = {}
        for command in commands:
            ((verb, body),) = command.items()
            ((kind, spec),) = body.items()
            if verb == "add" and kind == "rule":
                self.rules.setdefault(spec["chain"], []).append(spec["expr"])
            elif verb == "add" and kind in ("map", "set", "chain"):
                self.elements.setdefault(spec["name"], [])
            elif verb == "flush" and kind in ("map", "set"):
                self.elements[spec["name"]] = []
            elif verb == "add" and kind == "element":
                self.elements[spec["name"]].extend(spec["elem"])

    def verdict(self, chain: str, address: str, protocol: int, port: int) -> str:
        ip = ipaddress.ip_address(address)
        for expr in self.rules[chain]:
            outcome = self._rule(expr, ip, protocol, port)
            if outcome is not None:
                return outcome
        return "end of chain"

    def _rule(self, expr: list[dict[str, Any]], ip: Any, protocol: int, port: int) -> str | None:
        for statement in expr:
            if "vmap" in statement:
                if _family(statement["vmap"]["key"]["concat"][0]) != ip.version:
                    return None
                data = statement["vmap"]["data"].removeprefix("@")
                for key, verdict in self.elements[data]:
                    a, p, d = key["concat"]
                    if _in(a, ip) and _in_range(p, protocol) and _in_range(d, port):
                        return str(next(iter(verdict)))
                return None
            if "match" in statement:
                if not self._match(statement["match"], ip, protocol, port):
                    return None
            elif "accept" in statement or "drop" in statement:
                return next(iter(statement))
            elif "goto" in statement:
                return "drop"
        return None  # limit and log: no verdict

    def _match(self, match: dict[str, Any], ip: Any, protocol: int, port: int) -> bool:
        left, right = match["left"], match["right"]
        if "payload" in left and left["payload"]["field"] == "daddr":
            if _family(left) != ip.version:
                return False
            values = [e["elem"]["val"] for e in self.elements[right.removeprefix("@")]]
            return str(ip) in values
        if "meta" in left:
            return bool(right == protocol)
        if left["payload"]["field"] == "dport":
            return any(_in_range(v, port) for v in right["set"])
        raise AssertionError(f"a statement the interpreter does not know: {match}")


def _family(payload: dict[str, Any]) -> int:
    return 4 if payload["payload"]["protocol"] == "ip" else 6


def _in(value: Any, ip: Any) -> bool:
    if isinstance(value, str):
        return bool(ipaddress.ip_address(value) == ip)
    if "prefix" in value:
        net = ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}")
        return bool(ip.version == net.version and ip in net)
    low, high = (ipaddress.ip_address(a) for a in value["range"])
    return bool(low.version == ip.version and low <= ip <= high)


def _in_range(value: Any, number: int) -> bool:
    if isinstance(value, int):
        return value == number
    low, high = value["range"]
    return bool(low <= number <= high)


@st.composite
def fqdn_rules(draw: st.DrawFn) -> list[PolicyRule]:
    out = []
    for i in range(draw(st.integers(0, 7))):
        protocol = draw(st.sampled_from(["any", "tcp", "udp", "icmp"]))
        spec: dict[str, Any] = {"protocol": protocol}
        spec["cidrs"] = draw(st.lists(st.sampled_from(CIDRS), max_size=2, unique=True))
        if draw(st.booleans()):
            spec["domains"] = draw(st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=2))
        if protocol in ("tcp", "udp") and draw(st.booleans()):
            spec["ports"] = draw(st.lists(st.sampled_from(["80", "443", "8000-8100"]), max_size=2))
        out.append(rule(f"r{i}", draw(st.sampled_from(["allow", "deny"])), **spec))
    return out


KNOWLEDGE = st.dictionaries(
    st.sampled_from(ADDRESSES), st.frozensets(st.sampled_from(QNAMES), max_size=2), max_size=4
)
PROBES = st.lists(
    st.tuples(
        st.sampled_from(ADDRESSES),
        st.sampled_from(["tcp", "udp", "icmp"]),
        st.sampled_from([80, 443, 8050, 22]),
    ),
    min_size=1,
    max_size=12,
)


def _learned(
    rules: list[PolicyRule], known: Mapping[str, frozenset[str]]
) -> tuple[GatewayTable, ChainSpec, list[Command]]:
    table = GatewayTable(monotonic=Clock())
    spec = ChainSpec.of(rules)
    whole = table.plan_whole({UE: spec}, ["0.0.0.0/0", "::/0"])
    table.commit(whole)
    answers = [Answered(UE, n, (a,), 300) for a, names in known.items() for n in sorted(names)]
    plan = table.plan_learn(answers)
    table.commit_learn(plan)
    return table, spec, [*whole.commands, *plan.commands]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fqdn_rules(), KNOWLEDGE, PROBES)
def test_the_segments_and_the_documents_decide_as_the_reference(
    rules: list[PolicyRule],
    known: dict[str, frozenset[str]],
    probes: list[tuple[str, str, int]],
) -> None:
    table, spec, commands = _learned(rules, known)
    chain = table.flattened[spec.name]
    interpreter = Interpreter(commands)
    members = table.learned.members(table.monotonic())
    subject = Subject("o")
    for address, protocol, port in probes:
        names = known.get(address, frozenset())
        flow = Flow(address, protocol, None if protocol == "icmp" else port, names)
        expected = decide(rules, {}, subject, "network", flow, NOW)
        want = {"allow": "accept", "deny": "drop"}[expected.action]
        version = ipaddress.ip_address(address).version
        number = NUMBERS.get(protocol, 1 if version == 4 else 58)
        wire_port = 0 if protocol == "icmp" else port
        if isinstance(chain, Segmented):
            assert chain.verdict(address, number, wire_port, members) == want, flow
        else:
            assert chain.verdict(address, number, wire_port) == want, flow
        got = interpreter.verdict(f"class_{spec.name}", address, number, wire_port)
        assert got == want, (flow, json.dumps(commands)[:2000])


# -- a real kernel's nft ------------------------------------------------------------------


def _why_skip() -> str:
    reason = netns_unusable()
    if not reason and shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
        reason = "needs nft"
    return reason


_SKIP = _why_skip()


@pytest.fixture
def namespace() -> Iterator[str]:
    reap_stale()
    ns = f"{new_tag()}-fqdn"
    ip("netns", "add", ns)
    try:
        yield ns
    finally:
        ip("netns", "del", ns, check=False)


def _set(ns: str, name: str) -> dict[str, int]:
    listing = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "ztsim", name],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    out: dict[str, int] = {}
    for item in json.loads(listing.stdout)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            out[elem["elem"]["val"]] = elem["elem"]["timeout"]
    return out


@pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")
def test_the_kernel_takes_the_segmented_chain_and_its_refreshes(namespace: str) -> None:
    clock = Clock()
    rules = [
        rule("site", "allow", cidrs=["192.0.2.0/24"], protocol="tcp", ports=["22"]),
        rule("web", "allow", domains=["*.acme.test"], protocol="tcp", ports=["80", "8000-8100"]),
        rule("both", "deny", cidrs=["2001:db8::/64"], domains=[".corp.test"], protocol="icmp"),
        rule("dns", "allow", protocol="udp", ports=["53"]),
    ]
    table = GatewayTable(reject=True, monotonic=clock)
    nft = Nft(prefix=("ip", "netns", "exec", namespace))
    spec = ChainSpec.of(rules)
    whole = table.plan_whole({UE: spec}, ["0.0.0.0/0", "::/0"])
    nft.apply(whole.document())
    table.commit(whole)
    listed = json.dumps(nft.table())
    assert f"class_{spec.name}_m0_v4" in listed
    assert f"class_{spec.name}_f1_v6" in listed
    v4 = f"class_{spec.name}_f0_v4"
    learn = table.plan_learn([Answered(UE, "wiki.acme.test", ("192.0.2.80", "192.0.2.81"), 40)])
    nft.apply(learn.document())
    table.commit_learn(learn)
    assert _set(namespace, v4) == {"192.0.2.80": 40, "192.0.2.81": 40}
    clock.now += 10
    refresh = table.plan_learn([Answered(UE, "wiki.acme.test", ("192.0.2.80",), 300)])
    assert refresh.update.rewrite  # present already: the set is rewritten
    nft.apply(refresh.document())
    table.commit_learn(refresh)
    assert _set(namespace, v4) == {"192.0.2.80": 300, "192.0.2.81": 30}
    # A table made anew keeps what the sets held.
    clock.now += 5
    again = table.plan_whole({UE: spec}, ["0.0.0.0/0", "::/0"])
    nft.apply(again.document())
    table.commit(again)
    assert _set(namespace, v4) == {"192.0.2.80": 295, "192.0.2.81": 25}
    gone = table.plan({UE: None})
    nft.apply(gone.document())
    table.commit(gone)
    assert spec.name not in json.dumps(nft.table())
