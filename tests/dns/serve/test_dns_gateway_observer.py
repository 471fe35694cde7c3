"""The gateway's answer observer: told what each A/AAAA answer to a requester known by
its address resolved, over UDP and TCP, from an upstream, the cache or an override; not
told of blocks, refusals or other types; an observer that fails never fails an answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.rules import Action, OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot

from support.dns_gateway_harness import DNSMASQ, KDIG, STORE_KEY, RunningGateway, dnsmasq, kdig

pytestmark = pytest.mark.skipif(
    DNSMASQ is None or KDIG is None, reason="needs dnsmasq (dnsmasq-base) and kdig"
)
Seen = tuple[str, str, tuple[str, ...], int]


def _policy() -> PolicySnapshot:
    org = OrgPolicy(
        "org-a",
        (
            Rule("pin", Action.OVERRIDE, domains=("pinned.acme.test",), answer=("192.0.2.55",)),
            Rule("no", Action.BLOCK, domains=("blocked.acme.test",)),
        ),
    )
    return PolicySnapshot(PolicyData({"org-a": org}, {}, sample_feeds()), STORE_KEY)


@pytest.fixture
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, list[Seen]]]:
    hosts = tmp_path_factory.mktemp("dnsmasq") / "hosts"
    hosts.write_text("192.0.2.7 intranet.acme.test\n2001:db8::7 intranet.acme.test\n")
    identities = IdentitySnapshot.build([("127.0.0.1", Requester("org-a", "id-alice"))])
    seen: list[Seen] = []
    with dnsmasq(hosts) as port, RunningGateway(_policy(), identities, [("127.0.0.1", port)]) as g:
        g.gateway.on_answer = lambda *answer: seen.append(answer)
        yield g, seen


def test_answers_to_a_known_address_are_observed(gw: tuple[RunningGateway, list[Seen]]) -> None:
    g, seen = gw
    assert "192.0.2.7" in kdig(g.port, "Intranet.ACME.test", "A")  # upstream
    assert "192.0.2.7" in kdig(g.port, "intranet.acme.test", "A", "+tcp")  # cache, over TCP
    assert "2001:db8::7" in kdig(g.port, "intranet.acme.test", "AAAA")
    assert "192.0.2.55" in kdig(g.port, "pinned.acme.test", "A")  # an override
    assert [(s[0], s[1], s[2]) for s in seen] == [
        ("127.0.0.1", "intranet.acme.test", ("192.0.2.7",)),
        ("127.0.0.1", "intranet.acme.test", ("192.0.2.7",)),
        ("127.0.0.1", "intranet.acme.test", ("2001:db8::7",)),
        ("127.0.0.1", "pinned.acme.test", ("192.0.2.55",)),
    ]
    assert 0 < seen[0][3] <= 300  # dnsmasq's --local-ttl


def test_blocks_refusals_and_other_types_are_not(gw: tuple[RunningGateway, list[Seen]]) -> None:
    g, seen = gw
    assert "0.0.0.0" in kdig(g.port, "blocked.acme.test", "A")  # noqa: S104 (the block)
    assert "REFUSED" in kdig(g.port, "intranet.acme.test", "A", source="127.0.0.9")
    kdig(g.port, "intranet.acme.test", "MX")
    kdig(g.port, "nothing.acme.test", "A")
    assert seen == []


def test_a_failing_observer_fails_no_answer(gw: tuple[RunningGateway, list[Seen]]) -> None:
    g, _ = gw

    def broken(*answer: object) -> None:
        raise RuntimeError("observer down")

    g.gateway.on_answer = broken
    assert "192.0.2.7" in kdig(g.port, "intranet.acme.test", "A")
    assert "192.0.2.7" in kdig(g.port, "intranet.acme.test", "A", "+tcp")
    assert g.gateway.observer_failures == 2
