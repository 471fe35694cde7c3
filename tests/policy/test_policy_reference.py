"""The plain evaluator, which is the semantics: rule order, defaults, fail-closed requirements,
the reasons a person reads; and the targets it asks about (`ztsim.policy.targets`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import IdentityKind, Posture, SimKind, SimSignals, Subject
from ztsim.policy.reference import Decision, decide
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.policy.targets import (
    AttachRequest,
    DnsQuery,
    Flow,
    Query,
    domain_matches,
    matches,
    no_lists,
    parse_target,
)

from tests_clock import NOW

CHECKS = {
    "managed": PostureCheck("managed", "device.managed", timedelta(hours=4)),
    "jailbroken": PostureCheck("jailbroken", "device.jailbroken"),
}
FRESH = Posture({"managed": True, "jailbroken": False}, NOW - timedelta(hours=1))
ALICE = Subject(
    "o",
    "alice",
    IdentityKind.USER,
    frozenset({"staff"}),
    frozenset(),
    SimKind.ESIM,
    posture=FRESH,
)
WEB = Flow("10.1.2.3", "tcp", 443)


def rule(plane: str, name: str, action: str, **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec(plane, name, action, spec)


def network(*rules: PolicyRule, who: Subject = ALICE, target: Query = WEB) -> Decision:
    return decide(rules, CHECKS, who, Plane.NETWORK, target, NOW)


def test_defaults_per_plane_say_so() -> None:
    assert decide([], CHECKS, ALICE, "dns", DnsQuery("a.test"), NOW) == Decision(
        "allow", None, ("default:allow",)
    )
    assert network() == Decision("deny", None, ("default:deny",))
    assert decide([], CHECKS, ALICE, "attach", AttachRequest("internet"), NOW) == Decision(
        "allow", None, ("default:allow",)
    )


def test_the_first_rule_that_applies_and_matches_decides_within_its_plane() -> None:
    rules = [
        rule("dns", "dns-first", "block"),  # another plane: never looked at
        rule("network", "other-net", "deny", cidrs=["192.0.2.0/24"]),
        rule("network", "bob-only", "deny", identities=["bob"]),
        rule("network", "staff", "allow", groups=["staff"], cidrs=["10.0.0.0/8"]),
        rule("network", "everyone", "deny"),
    ]
    assert network(*rules) == Decision("allow", "staff", ("rule:staff",))
    assert network(*rules, who=Subject("o", "carol")) == Decision(
        "deny", "everyone", ("rule:everyone",)
    )


def test_a_posture_fact_past_its_age_fails_closed() -> None:
    allow = rule("network", "managed-only", "allow", posture=["managed"])
    assert network(allow).action == "allow"
    old = Subject("o", "alice", posture=Posture({"managed": True}, NOW - timedelta(hours=5)))
    assert network(allow, who=old) == Decision(
        "deny", None, ("default:deny", "posture:managed:stale")
    )
    bare = Subject("o", "alice")
    assert network(allow, who=bare).reasons == ("default:deny", "posture:managed:missing")


def test_a_check_that_does_not_exist_never_holds_either_way() -> None:
    for written in ("gone", "!gone"):
        r = rule("network", "r", "allow", posture=[written])
        assert network(r) == Decision("deny", None, ("default:deny", "posture:gone:missing"))


def test_reasons_name_the_check_that_denied_and_the_negated_check_that_held() -> None:
    rules = [
        rule(
            "network",
            "managed-web",
            "allow",
            posture=["managed", "!jailbroken"],
            cidrs=["10.0.0.0/8"],
        ),
        rule("network", "jailbroken-out", "deny", posture=["jailbroken"]),
        rule("network", "other-target", "allow", posture=["jailbroken"], cidrs=["192.0.2.0/24"]),
    ]
    # The deciding rule held because the device is not jailbroken: that is worth saying.
    assert network(*rules) == Decision(
        "allow", "managed-web", ("rule:managed-web", "posture:jailbroken:failed")
    )
    unmanaged = Subject("o", "alice", posture=Posture({"managed": False}, NOW))
    # Neither rule applied; only rules whose target matched say why not, in order.
    assert network(*rules, who=unmanaged) == Decision(
        "deny", None, ("default:deny", "posture:managed:failed", "posture:jailbroken:failed")
    )


def test_skipped_rules_before_the_decider_are_reported_after_it_without_repeats() -> None:
    rules = [
        rule("network", "needs-managed", "allow", posture=["managed"]),
        rule("network", "needs-managed-too", "allow", posture=["managed"], groups=["staff"]),
        rule("network", "bob", "allow", identities=["bob"], posture=["jailbroken"]),
        rule("network", "fallback", "deny"),
        rule("network", "after", "allow", posture=["jailbroken"]),
    ]
    who = Subject(
        "o", "alice", group_ids=frozenset({"staff"}), posture=Posture({"managed": False}, NOW)
    )
    assert network(*rules, who=who) == Decision(
        "deny", "fallback", ("rule:fallback", "posture:managed:failed")
    )


def test_a_sim_reissued_an_hour_ago_matches_a_recent_swap_rule() -> None:
    swapped = Subject("o", "alice", signals=SimSignals(swapped_at=NOW - timedelta(hours=1)))
    r = rule("attach", "recent-swap", "deny", sim=["sim.swap_age < 24h"])
    internet = AttachRequest("internet")
    assert decide([r], CHECKS, swapped, "attach", internet, NOW) == Decision(
        "deny", "recent-swap", ("rule:recent-swap", "sim:swap-recent")
    )
    a_day_later = NOW + timedelta(hours=23)
    assert decide([r], CHECKS, swapped, "attach", internet, a_day_later).action == "allow"


def test_finance_only_when_not_in_a_swaps_cooling_off() -> None:
    ends = NOW + timedelta(hours=48)
    cooling = Subject("o", "alice", signals=SimSignals(swapped_at=NOW, swap_recent_until=ends))
    r = rule("network", "finance", "allow", sim=["not sim.swap_recent"], cidrs=["10.1.0.0/16"])
    ledger = Flow("10.1.2.3", "tcp", 443)
    assert decide([r], CHECKS, cooling, "network", ledger, NOW) == Decision(
        "deny", None, ("default:deny", "sim:swap-recent")
    )
    # Allowed, naming the signal that held (it is no longer recent).
    assert decide([r], CHECKS, cooling, "network", ledger, ends) == Decision(
        "allow", "finance", ("rule:finance", "sim:swap-recent")
    )
    never = Subject("o", "alice", signals=SimSignals(swapped_at=NOW - timedelta(days=9)))
    assert decide([r], CHECKS, never, "network", ledger, NOW).action == "allow"


def test_a_failing_sim_condition_gives_its_codes() -> None:
    r = rule(
        "network", "clean-sims", "allow", sim=["not sim.clone_suspected", 'sim.kind == "esim"']
    )
    cloned = Subject("o", "alice", sim_kind=SimKind.ESIM, signals=SimSignals(clone_suspected=True))
    assert network(r, who=cloned) == Decision("deny", None, ("default:deny", "sim:clone-suspected"))
    assert network(r) == Decision(
        "allow", "clean-sims", ("rule:clean-sims", "sim:clone-suspected", "sim:kind")
    )


def test_safe_search_decides_like_any_action() -> None:
    r = rule("dns", "safe", "safe_search", domains=[".search.test"])
    assert decide([r], CHECKS, ALICE, "dns", DnsQuery("www.search.test"), NOW).rule == "safe"


# -- targets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "name", "expected"),
    [
        ("a.test", "a.test", True),
        ("a.test", "x.a.test", False),
        (".a.test", "a.test", True),
        (".a.test", "x.y.a.test", True),
        (".a.test", "xa.test", False),
        ("*.a.test", "a.test", False),
        ("*.a.test", "x.a.test", True),
        ("*.a.test", "xa.test", False),
        ("a.test.", "a.test", True),
    ],
)
def test_domain_entries(entry: str, name: str, expected: bool) -> None:
    assert domain_matches(entry, name) is expected


def test_dns_targets_names_lists_categories_and_qtypes() -> None:
    def lists(source: str, qname: str) -> bool:
        return (source, qname) in {("list:ads", "ads.test"), ("category:malware", "bad.test")}

    everything = rule("dns", "all", "block")
    by_name = rule("dns", "n", "block", domains=["a.test"], lists=["ads"], categories=["malware"])
    aaaa = rule("dns", "q", "block", qtypes=[28])
    for name, expected in [
        ("a.test", True),
        ("ads.test", True),
        ("bad.test", True),
        ("c.test", False),
    ]:
        assert matches(by_name, DnsQuery(name), lists) is expected, name
    assert not matches(by_name, DnsQuery("ads.test"))  # no lists known: no list hits
    assert matches(everything, DnsQuery("anything.test"))
    assert matches(aaaa, DnsQuery("a.test", 28))
    assert not matches(aaaa, DnsQuery("a.test", 1))
    assert not matches(everything, WEB)  # a target of another plane never matches


def test_network_targets() -> None:
    web = rule(
        "network", "w", "allow", cidrs=["10.0.0.0/8"], protocol="tcp", ports=["443", "8000-8100"]
    )
    icmp = rule("network", "i", "allow", protocol="icmp")
    anywhere = rule("network", "a", "allow", cidrs=["2001:db8::/32", "192.0.2.0/24"])
    assert matches(web, WEB)
    assert matches(web, Flow("10.9.9.9", "tcp", 8050))
    assert not matches(web, Flow("10.9.9.9", "tcp", 22))
    assert not matches(web, Flow("10.9.9.9", "udp", 443))
    assert not matches(web, Flow("11.0.0.1", "tcp", 443))
    assert not matches(web, Flow("10.9.9.9", "tcp"))  # any port is not some ports
    assert matches(icmp, Flow("203.0.113.9", "icmp"))
    assert not matches(icmp, WEB)
    assert matches(anywhere, Flow("2001:db8::1", "udp", 53))
    assert matches(anywhere, Flow("192.0.2.7", "tcp"))
    assert not matches(anywhere, WEB)
    assert not matches(web, AttachRequest("internet"))


def test_network_domains_match_the_names_an_address_is_known_under() -> None:
    intranet = rule("network", "i", "allow", domains=["intranet.acme.test"], protocol="tcp")
    below = rule("network", "b", "allow", domains=["*.acme.test"])
    both = rule("network", "c", "deny", cidrs=["10.9.0.0/16"], domains=[".corp.test"])
    known = Flow("192.0.2.7", "tcp", 80, frozenset({"Intranet.ACME.test."}))
    assert known.names == frozenset({"intranet.acme.test"})
    assert matches(intranet, known)
    assert matches(below, known)
    assert not matches(intranet, Flow("192.0.2.7", "tcp", 80))  # no answer named it
    assert not matches(intranet, Flow("192.0.2.7", "udp", 53, known.names))  # tcp only
    assert not matches(below, Flow("192.0.2.7", "tcp", 80, frozenset({"acme.test"})))
    assert matches(both, Flow("10.9.1.1", "udp", 53))  # in the cidrs
    assert matches(both, Flow("192.0.2.7", "udp", 53, frozenset({"corp.test"})))  # named
    assert matches(both, Flow("192.0.2.7", "udp", 53, frozenset({"x.corp.test", "z.test"})))
    assert not matches(both, Flow("192.0.2.7", "udp", 53, frozenset({"z.test"})))
    with pytest.raises(InvalidInput, match="not a domain name"):
        Flow("192.0.2.7", names=frozenset({"a..test"}))
    with pytest.raises(InvalidInput, match="a set of domain names"):
        Flow("192.0.2.7", names="a.test")  # type: ignore[arg-type]


def test_attach_targets() -> None:
    some = rule("attach", "s", "deny", apns=["internet"])
    assert matches(some, AttachRequest("Internet."))
    assert not matches(some, AttachRequest("iot.corp"))
    assert matches(rule("attach", "all", "deny"), AttachRequest("iot.corp"))


@pytest.mark.parametrize(
    ("plane", "text", "target"),
    [
        ("dns", "Example.COM.", DnsQuery("example.com", 1)),
        ("dns", "example.com/AAAA", DnsQuery("example.com", 28)),
        ("dns", "example.com/https", DnsQuery("example.com", 65)),
        ("dns", "example.com/99", DnsQuery("example.com", 99)),
        ("network", "10.1.2.3:443/tcp", Flow("10.1.2.3", "tcp", 443)),
        ("network", "10.1.2.3:53/UDP", Flow("10.1.2.3", "udp", 53)),
        ("network", "10.1.2.3:443", Flow("10.1.2.3", "tcp", 443)),
        ("network", "10.1.2.3/icmp", Flow("10.1.2.3", "icmp", None)),
        ("network", "10.1.2.3", Flow("10.1.2.3", "tcp", None)),
        ("network", "2001:DB8::1", Flow("2001:db8::1", "tcp", None)),
        ("network", "2001:db8::1/udp", Flow("2001:db8::1", "udp", None)),
        ("network", "[2001:db8::1]:443/tcp", Flow("2001:db8::1", "tcp", 443)),
        ("network", "[2001:db8::1]", Flow("2001:db8::1", "tcp", None)),
        (
            "network",
            "10.1.2.3:80/tcp as intranet.acme.test, Wiki.Acme.Test",
            Flow("10.1.2.3", "tcp", 80, frozenset({"intranet.acme.test", "wiki.acme.test"})),
        ),
        ("attach", " Internet ", AttachRequest("internet")),
    ],
)
def test_parse_target(plane: str, text: str, target: Query) -> None:
    assert parse_target(plane, text) == target


@pytest.mark.parametrize(
    ("plane", "text", "message"),
    [
        ("email", "x", "plane is one of"),
        ("dns", "", "1 to 300 characters"),
        ("dns", "x" * 301, "1 to 300 characters"),
        ("dns", "bad name", "not a domain name"),
        ("dns", "a..test", "not a domain name"),
        ("dns", "a.test/BOGUS", "query type 'BOGUS': a number or one of"),
        ("dns", "a.test/0", "1 to 65535"),
        ("dns", "a.test/70000", "1 to 65535"),
        ("network", "10.1.2.3/24", "protocol is one of tcp, udp, icmp"),
        ("network", "10.1.2.3:https/tcp", "the port is a number"),
        ("network", "10.1.2.3:0/tcp", "1 to 65535"),
        ("network", "10.1.2.3:70000", "1 to 65535"),
        ("network", "10.1.2.3:7/icmp", "icmp has no ports"),
        ("network", "10.1.2/tcp", "not an IPv4 or IPv6 address"),
        ("network", "example.com:443", "not an IPv4 or IPv6 address"),
        ("network", "[2001:db8::1:443/tcp", "expected an address"),
        ("network", "[2001:db8::1]443", "expected an address"),
        ("network", "10.1.2.3 as ", "`as` needs at least one name"),
        ("network", "10.1.2.3 as a..test", "not a domain name"),
        ("attach", "no spaces", "not an APN"),
        ("attach", "-x", "not an APN"),
    ],
)
def test_parse_target_errors(plane: str, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_target(plane, text)


def test_target_values_check_themselves() -> None:
    with pytest.raises(InvalidInput, match="a number"):
        DnsQuery("a.test", True)
    with pytest.raises(InvalidInput, match="one of tcp, udp, icmp"):
        Flow("10.0.0.1", "sctp")
    with pytest.raises(InvalidInput, match="1 to 65535"):
        Flow("10.0.0.1", "udp", 0)
    assert Flow("10.0.0.1", "udp", 53) == Flow("10.0.0.1", "udp", 53)
    assert hash(DnsQuery("A.test.")) == hash(DnsQuery("a.test"))
    assert not no_lists("list:x", "a.test")


def test_a_decision_checks_itself() -> None:
    with pytest.raises(InvalidInput, match="no plane's action"):
        Decision("maybe", None, ("default:allow",))
    with pytest.raises(InvalidInput, match="at least one reason"):
        Decision("allow", None, ())
