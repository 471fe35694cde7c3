"""DNS policy use cases: each leaves its change, its audit event and its outbox row (DNS
for the org's policy, DEVICE_TOKEN for a token); a refused one leaves none. A URL list
download publishes only when its content changed (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, OrgSettings, PrivacyMode, Rule
from ztsim.dns.store import repository as repo
from ztsim.dns.store import service
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.radius.store import registry

from support.leaks import LEAKS
from support.traces import Left, refused, run
from tests_clock import NOW


@dataclass
class Orgs:
    a: str
    b: str
    device: str  # of org a
    other_device: str  # of org b


@pytest.fixture
def orgs(engine: Engine) -> Orgs:
    with engine.begin() as conn:
        a = identities.create_org(conn, "A", "a", NOW).id
        b = identities.create_org(conn, "B", "b", NOW).id
        devices = [
            inventory.register_device(
                conn, org, imei=imei, eid=None, owner_id=None, name="", actor="t", now=NOW
            ).id
            for org, imei in ((a, "490154203237518"), (b, "352099001761481"))
        ]
        # Org b holds 10.9.0.0/16: org a's DNS networks may not overlap it.
        registry.create_pool(conn, b, cidr="10.9.0.0/16", static_cidr=None, now=NOW)
    return Orgs(a, b, *devices)


def _policy_change(left: Left, org: str, kind: str, subject: str) -> None:
    assert left.events == [(org, kind, subject)]
    assert left.topics == [(Topic.DNS, org)]


def test_settings_and_networks_reach_the_dns_planes(engine: Engine, orgs: Orgs) -> None:
    def put(networks: tuple[str, ...]) -> Callable[[Connection], Any]:
        settings = OrgSettings(privacy=PrivacyMode.ALL)
        return lambda c: service.put_settings(c, orgs.a, settings, networks, actor="admin", now=NOW)

    _none, left = run(engine, put(("10.1.0.0/16",)))
    _policy_change(left, orgs.a, "dns.settings.updated", f"org:{orgs.a}")
    refused(engine, Conflict, put(("10.9.1.0/24",)))  # inside org b's pool
    refused(engine, InvalidInput, put(("not-a-network",)))
    with engine.connect() as conn:
        assert repo.get_settings(conn, orgs.a)[1] == ("10.1.0.0/16",)


def test_rules_reach_the_dns_planes(engine: Engine, orgs: Orgs) -> None:
    def create(org: str, rule: Rule) -> Callable[[Connection], Any]:
        return lambda c: service.create_rule(c, org, rule, None, actor="admin", now=NOW)

    block = Rule("no-ads", Action.BLOCK, domains=(".ads.test",))
    stored, left = run(engine, create(orgs.a, block))
    _policy_change(left, orgs.a, "dns.rule.created", f"dns-rule:{stored.id}")
    refused(engine, Conflict, create(orgs.a, block))  # the same name
    refused(engine, NotFound, create(orgs.a, Rule("l", Action.BLOCK, lists=("missing",))))

    def replace(org: str) -> Callable[[Connection], Any]:
        allow = Rule("ok", Action.ALLOW, domains=(".ok.test",))
        return lambda c: service.replace_rule(c, org, stored.id, allow, None, actor="a", now=NOW)

    refused(engine, NotFound, replace(orgs.b))  # another org's rule
    replaced, left = run(engine, replace(orgs.a))
    assert (replaced.name, replaced.position) == ("ok", stored.position)
    _policy_change(left, orgs.a, "dns.rule.updated", f"dns-rule:{stored.id}")

    def delete(org: str) -> Callable[[Connection], Any]:
        return lambda c: service.delete_rule(c, org, stored.id, actor="admin", now=NOW)

    refused(engine, NotFound, delete(orgs.b))
    _none, left = run(engine, delete(orgs.a))
    _policy_change(left, orgs.a, "dns.rule.deleted", f"dns-rule:{stored.id}")


def test_lists_reach_the_dns_planes(engine: Engine, orgs: Orgs) -> None:
    def create(name: str, url: str | None = None) -> Callable[[Connection], Any]:
        content = "" if url else "ads.test\n"
        return lambda c: service.create_list(
            c, orgs.a, name=name, fmt=None, content=content, url=url, actor="admin", now=NOW
        )

    ads, left = run(engine, create("ads"))
    _policy_change(left, orgs.a, "dns.list.created", f"dns-list:{ads.id}")
    refused(engine, Conflict, create("ads"))
    refused(engine, InvalidInput, create("bad", url="ftp://lists.test/x"))
    with engine.begin() as conn:
        service.create_rule(
            conn, orgs.a, Rule("r", Action.BLOCK, lists=("ads",)), None, actor="a", now=NOW
        )

    def delete(org: str) -> Callable[[Connection], Any]:
        return lambda c: service.delete_list(c, org, ads.id, actor="admin", now=NOW)

    refused(engine, Conflict, delete(orgs.a))  # a rule uses it
    refused(engine, NotFound, delete(orgs.b))
    unused, _ = run(engine, create("unused"))
    _none, left = run(
        engine, lambda c: service.delete_list(c, orgs.a, unused.id, actor="admin", now=NOW)
    )
    _policy_change(left, orgs.a, "dns.list.deleted", f"dns-list:{unused.id}")


def test_a_replaced_list_keeps_its_id_and_name_and_reaches_the_dns_planes(
    engine: Engine, orgs: Orgs
) -> None:
    with engine.begin() as conn:
        ads = service.create_list(
            conn, orgs.a, name="ads", fmt=None, content="ads.test\n", url=None, actor="a", now=NOW
        )
        service.create_rule(
            conn, orgs.a, Rule("r", Action.BLOCK, lists=("ads",)), None, actor="a", now=NOW
        )

    def replace(
        org: str, *, content: str | None = None, url: str | None = None, fmt: str | None = None
    ) -> Callable[[Connection], Any]:
        return lambda c: service.replace_list(
            c, org, ads.id, fmt=fmt, content=content, url=url, actor="admin", now=NOW
        )

    text = "0.0.0.0 one.test\n0.0.0.0 two.test\n0.0.0.0 three.test\nnonsense here\n"
    stored, left = run(engine, replace(orgs.a, content=text, fmt="hosts"))
    _policy_change(left, orgs.a, "dns.list.updated", f"dns-list:{ads.id}")
    assert left.actors == ["admin"]
    assert (stored.id, stored.name, stored.format) == (ads.id, "ads", "hosts")
    assert (stored.good_lines, stored.bad_lines) == (3, 1)
    assert [b["line"] for b in stored.bad_samples] == [4]
    with engine.connect() as conn:
        assert repo.current_content(conn, orgs.a, ads.id) == text
        assert [r.rule.lists for r in repo.list_rules(conn, orgs.a)] == [("ads",)]

    refused(engine, NotFound, replace(orgs.b, content="x.test\n"))  # another org's list
    refused(engine, InvalidInput, replace(orgs.a))  # neither text nor URL
    refused(engine, InvalidInput, replace(orgs.a, content="x.test\n", url="https://l.test/x"))
    refused(engine, InvalidInput, replace(orgs.a, url="ftp://lists.test/x"))

    # Moved to a URL: the last good text stays until the refresher downloads the new URL.
    with engine.begin() as conn:
        repo.store_download(conn, orgs.a, ads.id, None, NOW, etag='"old"', refresh_error="x")
    url = "https://lists.example.test/new.txt"
    stored, left = run(engine, replace(orgs.a, url=url, fmt="hosts"))
    _policy_change(left, orgs.a, "dns.list.updated", f"dns-list:{ads.id}")
    assert (stored.url, stored.good_lines, stored.refresh_error) == (url, 3, "")
    assert stored.refreshed_at is None  # due at the refresher's next round
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.dns_lists.c.etag).where(schema.dns_lists.c.id == ads.id)
        ).one()
        assert row.etag is None  # the old URL's validator would skip the new download


def test_a_download_publishes_only_new_content(engine: Engine, orgs: Orgs) -> None:
    with engine.begin() as conn:
        stored = service.create_list(
            conn,
            orgs.a,
            name="feed",
            fmt=None,
            content="",
            url="https://lists.example.test/feed.txt",
            actor="admin",
            now=NOW,
        )

    def download(content: str | None, **meta: Any) -> Callable[[Connection], Any]:
        return lambda c: repo.store_download(c, orgs.a, stored.id, content, NOW, **meta)

    # A failed download or a 304 keeps the last copy: no plane has anything to re-read.
    _none, left = run(engine, download(None, refresh_error="could not fetch"))
    assert left.empty
    _none, left = run(engine, download("a.test\nb.test\n", etag='"v2"', refresh_error=""))
    assert left.events == [(orgs.a, "dns.list.refreshed", f"dns-list:{stored.id}")]
    assert left.actors == [repo.REFRESH_ACTOR]
    assert left.topics == [(Topic.DNS, orgs.a)]
    with engine.connect() as conn:
        assert repo.get_list(conn, orgs.a, stored.id).good_lines == 2


def test_device_tokens_reach_the_dns_planes(engine: Engine, orgs: Orgs) -> None:
    def issue(org: str, device: str) -> Callable[[Connection], Any]:
        return lambda c: service.issue_device_token(c, org, device, actor="admin", now=NOW)

    (token_id, token), left = run(engine, issue(orgs.a, orgs.device))
    LEAKS.add_secret(token)
    assert token.startswith(service.TOKEN_PREFIX)
    assert left.events == [(orgs.a, "dns.device_token.created", f"device:{orgs.device}")]
    assert left.topics == [(Topic.DEVICE_TOKEN, token_id)]
    assert left.payloads == [{}]  # never the token
    refused(engine, NotFound, issue(orgs.a, orgs.other_device))  # another org's device

    def revoke(org: str) -> Callable[[Connection], Any]:
        return lambda c: service.revoke_device_token(c, org, token_id, actor="admin", now=NOW)

    refused(engine, NotFound, revoke(orgs.b))
    _none, left = run(engine, revoke(orgs.a))
    assert left.events == [(orgs.a, "dns.device_token.revoked", f"dns-token:{token_id}")]
    assert left.topics == [(Topic.DEVICE_TOKEN, token_id)]
    refused(engine, NotFound, revoke(orgs.a))  # revoked already
    with engine.connect() as conn:
        stored = conn.execute(select(schema.dns_device_tokens.c.token_hash)).scalar_one()
    assert token.encode() not in bytes(stored)
