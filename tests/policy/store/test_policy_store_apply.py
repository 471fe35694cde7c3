"""Policy as code in the database: export reads the org's policy as a document; apply makes a
document the policy, all or nothing, as one use case (one event, DNS and POLICY published
once), keeps the ids of rules that stay, and does nothing for the policy in force."""

from __future__ import annotations

from sqlalchemy import Engine

from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store import repository as dns_repo
from ztsim.dns.store import service as dns
from ztsim.errors import Conflict, InvalidInput
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.policy import document
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import apply, rules

from support.traces import refused, run
from tests_clock import NOW

POLICY = """\
version: 1
checks:
  - {name: managed, expression: device.managed, max_age: 4h}
rules:
  dns:
    - {name: ads, action: block, domains: [.ads.test]}
    - {name: social, action: block, domains: [.social.test], posture: ["!managed"]}
  network:
    - {name: fin, action: allow, cidrs: [10.1.0.0/16], posture: [managed]}
  attach:
    - {name: corp, action: allow, apns: [corp]}
"""


def _org(engine: Engine) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, "A", "a", NOW).id


def _apply(engine: Engine, org: str, doc: document.Document, **kw: object) -> apply.Applied:
    done, _ = run(engine, lambda c: apply.apply(c, org, doc, actor="t", now=NOW, **kw))  # type: ignore[arg-type]
    assert isinstance(done, apply.Applied)
    return done


def test_apply_replaces_everything_once_and_export_reads_it_back(engine: Engine) -> None:
    org = _org(engine)
    with engine.begin() as conn:
        old = dns.create_rule(
            conn, org, Rule("ads", Action.BLOCK, domains=(".old.test",)), None, actor="t", now=NOW
        )
        dns.create_rule(conn, org, Rule("gone", Action.ALLOW), None, actor="t", now=NOW)
    doc = document.load(POLICY)
    done, left = run(engine, lambda c: apply.apply(c, org, doc, actor="cli:me", now=NOW))
    assert done.changed
    assert done.revision == doc.revision
    assert done.counts == {"checks": 1, "dns": 2, "network": 1, "attach": 1}
    assert left.kinds == ["policy.applied"]
    assert left.actors == ["cli:me"]
    assert sorted(left.topics) == sorted([(Topic.DNS, org), (Topic.POLICY, org)])
    with engine.connect() as conn:
        assert apply.export(conn, org) == doc
        # The DNS plane reads its rows as it always did; a kept name keeps its id.
        dns_rules = dns_repo.list_rules(conn, org)
    assert [(r.name, r.position) for r in dns_rules] == [("ads", 0), ("social", 1)]
    assert dns_rules[0].id == old.id
    assert dns_rules[0].rule.domains == (".ads.test",)

    again, left = run(
        engine, lambda c: apply.apply(c, org, document.load(POLICY), actor="t", now=NOW)
    )
    assert not again.changed
    assert left.empty


def test_export_then_apply_is_a_no_op(engine: Engine) -> None:
    org = _org(engine)
    _apply(engine, org, document.load(POLICY))
    with engine.connect() as conn:
        text = document.dump(apply.export(conn, org))
    _, left = run(engine, lambda c: apply.apply(c, org, document.load(text), actor="t", now=NOW))
    assert left.empty


def test_a_bad_dns_rule_or_a_stale_base_changes_nothing(engine: Engine) -> None:
    org = _org(engine)
    first = _apply(engine, org, document.load(POLICY))

    def no(rule: PolicyRule) -> None:
        raise InvalidInput(f"rule {rule.name}: not for the DNS plane")

    emptied = document.Document()
    other = document.Document(rules=(PolicyRule.from_spec("dns", "other", "allow", {}),))
    refused(
        engine,
        InvalidInput,
        lambda c: apply.apply(c, org, other, actor="t", now=NOW, check_dns=no),
    )
    refused(
        engine,
        Conflict,
        lambda c: apply.apply(c, org, emptied, actor="t", now=NOW, base_revision="0" * 64),
    )
    with engine.connect() as conn:
        assert apply.export(conn, org).revision == first.revision
    _apply(engine, org, emptied, base_revision=first.revision)
    with engine.connect() as conn:
        assert rules.list_rules(conn, org) == []
        assert apply.export(conn, org) == emptied
