"""The policy built per org: a change in one org compiles no list of another, and no list
of its own that did not change (counted by `compiled_lists`); the policy file's orgs stand
under the database's."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, update

from ztsim.db import schema
from ztsim.dns.policy.identity import NetworkDefault, Requester
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.policies import PolicyBuilder
from ztsim.dns.store import repository as dns_repo
from ztsim.dns.wire.constants import RRType

from support.dns_feed_world import STORE_KEY, T0, FeedWorld


def _org_with_list(engine: Engine, org_id: str, names: str) -> FeedWorld:
    world = FeedWorld(engine, org_id)
    with world.write() as conn:
        dns_repo.create_list(
            conn, org_id, name="ads", fmt="domains", content=names, url=None, now=T0
        )
    world.rule(Rule("ads", Action.BLOCK, lists=("ads",)))
    return world


def _blocked(policy: PolicySnapshot, org_id: str, name: str) -> bool:
    return policy.decide(Requester(org_id), name, RRType.A).action is Action.BLOCK


def _build(engine: Engine, builder: PolicyBuilder) -> PolicySnapshot:
    with engine.connect() as conn:
        return builder.load_all(conn)[0]


def _update(engine: Engine, builder: PolicyBuilder, *orgs: str) -> PolicySnapshot:
    with engine.connect() as conn:
        return builder.update_orgs(conn, orgs)[0]


def test_one_orgs_change_compiles_nothing_of_the_others(engine: Engine) -> None:
    one = _org_with_list(engine, "o1", "one.test\n")
    _org_with_list(engine, "o2", "two.test\n")
    builder = PolicyBuilder(None, lambda: STORE_KEY)
    first = _build(engine, builder)
    assert builder.compiled_lists == 2
    assert _blocked(first, "o1", "one.test")
    assert not _blocked(first, "o1", "two.test")  # lists are the org's own
    assert _blocked(first, "o2", "two.test")

    one.rule(Rule("extra", Action.BLOCK, domains=("extra.test",)))
    second = _update(engine, builder, "o1")
    assert builder.compiled_lists == 2  # a rule edit: no list compiled again
    assert _blocked(second, "o1", "extra.test")
    assert second.orgs["o2"] is first.orgs["o2"]  # shared, not recompiled
    assert second.lists_in_use()["o1/ads"] is first.lists_in_use()["o1/ads"]

    with one.write() as conn:  # a new version of o1's list (as a download stores it)
        conn.execute(
            update(schema.dns_lists)
            .where(schema.dns_lists.c.org_id == "o1")
            .values(content="one.test\nnew.test\n", updated_at=datetime.now(UTC))
        )
    third = _update(engine, builder, "o1")
    assert builder.compiled_lists == 3  # that list alone
    assert _blocked(third, "o1", "new.test")
    assert third.lists_in_use()["o2/ads"] is first.lists_in_use()["o2/ads"]

    again = _update(engine, builder, "o1", "o2")  # applied twice: nothing new
    assert builder.compiled_lists == 3
    assert _blocked(again, "o1", "new.test")
    assert _blocked(again, "o2", "two.test")
    full = _build(engine, builder)  # a resync: every list kept that did not change
    assert builder.compiled_lists == 3
    assert _blocked(full, "o1", "new.test")


def test_networks_and_an_org_that_leaves_the_database(engine: Engine, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[[orgs]]\nid = "o1"\nnetworks = ["10.1.0.0/16"]\n'
        '[[orgs.rules]]\nid = "from-file"\naction = "block"\ndomains = ["file.test"]\n'
    )
    one = _org_with_list(engine, "o1", "one.test\n")
    one.settings(("10.2.0.0/16",))
    builder = PolicyBuilder(policy_file, lambda: STORE_KEY)
    with engine.connect() as conn:
        policy, subjects = builder.load_all(conn)
    assert _blocked(policy, "o1", "one.test")  # the database's org overrides the file's
    assert not _blocked(policy, "o1", "file.test")
    assert set(subjects.defaults) == {
        NetworkDefault("o1", "10.1.0.0/16"),
        NetworkDefault("o1", "10.2.0.0/16"),
    }
    with one.write() as conn:
        conn.execute(delete(schema.policy_rules))
        conn.execute(delete(schema.dns_settings))
    with engine.connect() as conn:
        policy, subjects = builder.update_orgs(conn, ["o1"])
    assert _blocked(policy, "o1", "file.test")  # the file's org again
    assert subjects.defaults == (NetworkDefault("o1", "10.1.0.0/16"),)
    assert not builder.file_changed()
    policy_file.write_text(policy_file.read_text().replace("file.test", "other.test"))
    os.utime(policy_file, ns=(0, 10**18))  # a modification time surely new
    assert builder.file_changed()
    policy, _ = builder.reload_file()
    assert _blocked(policy, "o1", "other.test")


def test_an_org_that_cannot_be_compiled_keeps_its_last_policy(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _org_with_list(engine, "o1", "one.test\n")
    builder = PolicyBuilder(None, lambda: STORE_KEY)
    _build(engine, builder)
    with engine.begin() as conn:  # the rule's list went behind its back
        conn.execute(delete(schema.dns_lists))
    with caplog.at_level(logging.WARNING, "ztsim.dns"):
        policy = _update(engine, builder, "o1")
    assert _blocked(policy, "o1", "one.test")
    assert "DNS policy of org o1 kept as it was" in caplog.text
