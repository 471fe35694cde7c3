"""Rule and list names as the API takes them; rules shown by the names of their subjects."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ztsim.cli.dns_shape import check_name, rule_rows
from ztsim.clock import utc_now
from ztsim.dns.policy.rules import Action, Category, Rule
from ztsim.dns.store.repository import StoredRule
from ztsim.errors import InvalidInput
from ztsim.identity import repository
from ztsim.identity.models import IdentityKind


def test_names_follow_the_api() -> None:
    assert check_name("ads-v2.list_1") == "ads-v2.list_1"
    assert check_name("x" * 100) == "x" * 100
    for bad in ("", "-ads", "two words", "x" * 101, "ünï"):
        with pytest.raises(InvalidInput, match="a name is 1-100"):
            check_name(bad)


def test_rules_show_emails_names_and_type_names(engine: Engine) -> None:
    now = utc_now()
    with engine.begin() as conn:
        org = repository.create_org(conn, "A", "a", now).id
        other = repository.create_org(conn, "B", "b", now).id
        ann = repository.create_identity(
            conn,
            org,
            kind=IdentityKind.USER,
            name="Ann",
            email="ann@example.test",
            external_id=None,
            now=now,
        ).id
        meter = repository.create_identity(
            conn,
            org,
            kind=IdentityKind.SERVICE,
            name="meter 7",
            email=None,
            external_id=None,
            now=now,
        ).id
        sales = repository.create_collection(conn, org, "Sales team", now, fleet=False).id
        meters = repository.create_collection(conn, org, "Meters", now, fleet=True).id
        theirs = repository.create_collection(conn, other, "Theirs", now, fleet=False).id
        rules = [
            StoredRule(
                "r1",
                "mixed",
                0,
                Rule(
                    "mixed",
                    Action.BLOCK,
                    domains=("ads.test",),
                    lists=("ads",),
                    categories=(Category.MALWARE,),
                    qtypes=(28, 65, 65534),
                    identities=(ann, meter),
                    groups=(sales, theirs),
                    fleets=(meters,),
                    sim_kinds=("esim",),
                ),
                now,
            ),
            StoredRule("r2", "all", 5, Rule("all", Action.OVERRIDE, answer=("192.0.2.1",)), now),
        ]
        rows = rule_rows(conn, org, rules)
    assert rows[0] == (
        "1",
        "mixed",
        "block",
        "ads.test, list:ads, category:malware, type:AAAA, type:HTTPS, type:TYPE65534",
        # Another org's group is never named: its id is all the rule holds.
        f"ann@example.test, meter 7, group:Sales team, group:{theirs}, fleet:Meters, kind:esim",
        "",
    )
    assert rows[1] == ("2", "all", "override", "any name", "everyone", "192.0.2.1")
