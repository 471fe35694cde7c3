"""The running gateway, asked by kdig over UDP and TCP, forwarding to a real dnsmasq."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import IdentitySnapshot, NetworkDefault, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import (
    Action,
    BlockAnswer,
    Category,
    OrgPolicy,
    OrgSettings,
    PolicyData,
    Rule,
)
from ztsim.dns.policy.snapshot import PolicySnapshot

from support.dns_gateway_harness import (
    DNSMASQ,
    KDIG,
    STORE_KEY,
    RunningGateway,
    dnsmasq,
    kdig,
    records,
)

pytestmark = pytest.mark.skipif(
    DNSMASQ is None or KDIG is None, reason="needs dnsmasq (dnsmasq-base) and kdig"
)

ALICE = Requester("org-a", "id-alice", frozenset({"g-staff"}), sim_kind="physical")
BOB = Requester("org-a", "id-bob", frozenset({"g-kids"}), sim_kind="esim")
CAROL = Requester("org-b", "id-carol")
MANY = [f"192.0.2.{i}" for i in range(1, 61)]
HOSTS = "\n".join(
    [
        "192.0.2.1 www.example.test",
        "192.0.2.7 social.example.test",
        "192.0.2.8 ads.tracker.test",
        "216.239.38.120 forcesafesearch.google.com",
        *(f"{address} big.example.test" for address in MANY),
    ]
)


def _policy() -> PolicySnapshot:
    ads = parse_list("||tracker.test^\n||ads.example.test^\n", ListFormat.ADBLOCK)
    org_a = OrgPolicy(
        "org-a",
        (
            Rule("pin", Action.OVERRIDE, domains=("pinned.example.test",), answer=("192.0.2.55",)),
            Rule("alias", Action.OVERRIDE, domains=("alias.test",), answer=("www.example.test",)),
            Rule("safe", Action.SAFE_SEARCH, groups=("g-kids",)),
            Rule("ads", Action.BLOCK, lists=("ads",)),
            Rule("security", Action.BLOCK, categories=tuple(Category)),
            Rule("no-social", Action.BLOCK, domains=(".social.example.test",), groups=("g-staff",)),
        ),
    )
    org_b = OrgPolicy(
        "org-b",
        (Rule("ads-b", Action.BLOCK, lists=("ads",)),),
        OrgSettings(block_answer=BlockAnswer.NXDOMAIN),
    )
    data = PolicyData({"org-a": org_a, "org-b": org_b}, {"ads": ads}, sample_feeds())
    return PolicySnapshot(data, STORE_KEY)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    hosts = tmp_path_factory.mktemp("dnsmasq") / "hosts"
    hosts.write_text(HOSTS + "\n")
    with dnsmasq(hosts) as port:
        yield port


@pytest.fixture(scope="module")
def gw(upstream: int) -> Iterator[RunningGateway]:
    identities = IdentitySnapshot.build(
        [("127.0.0.1", ALICE), ("127.0.0.2", BOB), ("127.0.0.3", CAROL)],
        defaults=[NetworkDefault("org-b", "127.0.1.0/24")],
    )
    with RunningGateway(_policy(), identities, [("127.0.0.1", upstream)]) as running:
        yield running


def test_allowed_name_forwarded_over_udp_and_tcp(gw: RunningGateway) -> None:
    for transport in ("+notcp", "+tcp"):
        out = kdig(gw.port, "www.example.test", "A", transport)
        assert "status: NOERROR" in out, out
        assert _no_ttl(records(out))[0] == ["www.example.test.", "IN", "A", "192.0.2.1"]


def test_block_from_list_has_ede_naming_the_rule(gw: RunningGateway) -> None:
    out = kdig(gw.port, "cdn.tracker.test", "A", "+edns")
    assert "status: NOERROR" in out, out
    assert "EDE: 15 (Blocked): 'blocked by rule ads'" in out
    assert _no_ttl(records(out)) == [["cdn.tracker.test.", "IN", "A", "0.0.0.0"]]  # noqa: S104
    out = kdig(gw.port, "cdn.tracker.test", "AAAA", "+tcp", "+edns")
    assert _no_ttl(records(out)) == [["cdn.tracker.test.", "IN", "AAAA", "::"]]
    assert "EDE: 15 (Blocked)" in out
    out = kdig(gw.port, "cdn.tracker.test", "MX", "+edns")
    assert "status: REFUSED" in out
    assert "EDE: 15 (Blocked): 'blocked by rule ads'" in out


def test_security_category_is_filtered(gw: RunningGateway) -> None:
    out = kdig(gw.port, "x.c2.botnet.example", "A", "+edns")
    assert "EDE: 17 (Filtered): 'blocked by rule security'" in out, out


def test_other_org_gets_nxdomain_block(gw: RunningGateway) -> None:
    out = kdig(gw.port, "ads.example.test", "A", "+edns", source="127.0.0.3")
    assert "status: NXDOMAIN" in out, out
    assert "EDE: 15 (Blocked): 'blocked by rule ads-b'" in out


def test_two_sims_get_different_answers(gw: RunningGateway) -> None:
    staff = kdig(gw.port, "social.example.test", "A", "+edns", source="127.0.0.1")
    kid = kdig(gw.port, "social.example.test", "A", source="127.0.0.2")
    assert _no_ttl(records(staff)) == [["social.example.test.", "IN", "A", "0.0.0.0"]]  # noqa: S104
    assert "blocked by rule no-social" in staff
    assert _no_ttl(records(kid)) == [["social.example.test.", "IN", "A", "192.0.2.7"]]


def test_override_with_address_and_cname(gw: RunningGateway) -> None:
    out = kdig(gw.port, "pinned.example.test", "A")
    assert _no_ttl(records(out)) == [["pinned.example.test.", "IN", "A", "192.0.2.55"]]
    assert "EDE" not in out
    out = kdig(gw.port, "alias.test", "A")
    assert _no_ttl(records(out)) == [
        ["alias.test.", "IN", "CNAME", "www.example.test."],
        ["www.example.test.", "IN", "A", "192.0.2.1"],
    ]


def test_safe_search_for_one_group_only(gw: RunningGateway) -> None:
    kid = kdig(gw.port, "www.google.com", "A", source="127.0.0.2")
    assert _no_ttl(records(kid)) == [
        ["www.google.com.", "IN", "CNAME", "forcesafesearch.google.com."],
        ["forcesafesearch.google.com.", "IN", "A", "216.239.38.120"],
    ]


def test_unknown_source_refused_and_network_default_served(gw: RunningGateway) -> None:
    out = kdig(gw.port, "www.example.test", "A", "+edns", source="127.0.0.9")
    assert "status: REFUSED" in out, out
    assert "EDE: 18 (Prohibited)" in out
    assert records(out) == []
    out = kdig(gw.port, "ads.example.test", "A", source="127.0.1.7")
    assert "status: NXDOMAIN" in out, out  # org-b's default policy for 127.0.1.0/24


def test_truncation_without_edns_then_tcp(gw: RunningGateway) -> None:
    out = kdig(gw.port, "big.example.test", "A", "+noedns", "+notcp", "+ignore")
    assert " tc " in _flags(out), out
    assert records(out) == []
    out = kdig(gw.port, "big.example.test", "A", "+noedns")  # kdig retries over TCP
    assert sorted(r[-1] for r in records(out)) == sorted(MANY)
    out = kdig(gw.port, "big.example.test", "A", "+bufsize=1232", "+notcp")
    assert " tc " not in _flags(out)
    assert " aa " not in _flags(out)  # a forwarder's answers are not authoritative
    assert len(records(out)) == len(MANY)


def test_tcp_pipelining(gw: RunningGateway) -> None:
    out = kdig(
        gw.port,
        "+tcp",
        "+keepopen",
        "www.example.test",
        "A",
        "cdn.tracker.test",
        "A",
        "social.example.test",
        "A",
    )
    assert out.count("status: NOERROR") == 3, out


def _flags(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(";; Flags:"))
    return line.split(";")[2] + " "


def _no_ttl(rows: list[list[str]]) -> list[list[str]]:
    return [[r[0], *r[2:]] for r in rows]
