"""The DNS policy through the API, picked up by a gateway process that reads the database:
rules, lists, settings, network defaults, device tokens, and the `self` view of DNS events."""

from __future__ import annotations

from ztsim.clock import utc_now
from ztsim.dns.engine import Answer
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.wire.constants import EdeCode, Rcode
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.identity.roles import Role
from ztsim.policy.checks import PostureCheck
from ztsim.policy.store import checks

from support.api import ApiHarness
from support.world import World, populate


def _ask(process: GatewayProcess, name: str, *, source: str = "", token: str = "") -> Message:
    who = process.gateway.identities.by_token(token) if token else None
    if source:
        who = process.gateway.identities.by_source(source)
    query = Message(id=5, flags=Flag.RD, questions=(Question(name, 1),), edns=Edns()).to_wire()
    step = process.gateway.engine.handle(query, who, 0.0, udp=True)
    assert isinstance(step, Answer), step
    return decode_message(step.wire)


def _ede(reply: Message) -> list[tuple[int, str]]:
    assert reply.edns is not None
    return [(e.info_code, e.extra_text) for e in reply.edns.extended_errors()]


def _process(api: ApiHarness) -> GatewayProcess:
    options = GatewayOptions(
        "127.0.0.1", 0, [], None, database=api.engine, store_key=lambda: b"k" * 16
    )
    return GatewayProcess(options, None)


def test_api_policy_reaches_the_gateway(api: ApiHarness) -> None:
    world: World = populate(api, "alpha", 1)
    auth = world.org.auth()
    c = api.client
    created = c.post(
        "/api/v1/dns/lists",
        json={"name": "adblock", "format": "adblock", "content": "||ads.test^\n||a..b^\n"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    assert (created.json()["good_lines"], created.json()["bad_lines"]) == (1, 1)
    rule = c.post(
        "/api/v1/dns/rules",
        json={"name": "ads-rule", "action": "block", "lists": ["adblock"], "position": 0},
        headers=auth,
    )
    assert rule.status_code == 201, rule.text
    settings = {"block_answer": "nxdomain", "privacy": "all", "networks": ["127.0.9.0/24"]}
    assert c.put("/api/v1/dns/settings", json=settings, headers=auth).status_code == 200
    token = c.post(
        "/api/v1/dns/device-tokens", json={"device_id": world.ids["device_id"]}, headers=auth
    ).json()

    process = _process(api)
    reply = _ask(process, "x.ads.test", source="127.0.9.7")  # the org's network default
    assert reply.rcode == Rcode.NXDOMAIN
    assert _ede(reply) == [(EdeCode.BLOCKED, "blocked by rule ads-rule")]
    assert _ask(process, "x.ads.test", source="127.0.8.1").rcode == Rcode.REFUSED
    phone = process.gateway.identities.by_token(token["token"])
    assert phone is not None
    assert (phone.device_id, phone.identity_id) == (
        world.ids["device_id"],
        world.ids["identity_id"],
    )
    assert world.ids["group_id"] in phone.group_ids
    # populate()'s rule blocks .social.test for everyone in the org: the phone's token too.
    assert _ede(_ask(process, "x.social.test", token=token["token"])) == [
        (EdeCode.BLOCKED, "blocked by rule no-social")
    ]

    # A change through the API is served after the next reload; the old rule no longer is.
    changed = {"name": "ads-rule", "action": "override", "lists": ["adblock"]}
    changed |= {"answer": ["192.0.2.9"]}
    assert (
        c.put(f"/api/v1/dns/rules/{rule.json()['id']}", json=changed, headers=auth).status_code
        == 200
    )
    process.reload()
    overridden = _ask(process, "x.ads.test", token=token["token"])
    assert _ede(overridden) == []
    assert overridden.answers[0].rdata == bytes([192, 0, 2, 9])

    # What the gateway logged about the employee is what their `self` token lists.
    process.write_log()
    mine = c.get("/api/v1/events?kind=dns.query", headers=world.org.auth(Role.SELF)).json()
    names = sorted(e["payload"]["name"] for e in mine["items"])
    assert names == ["x.ads.test", "x.social.test"]
    assert all(e["subject"] == f"identity:{world.ids['identity_id']}" for e in mine["items"])
    everything = c.get("/api/v1/events?kind=dns.query", headers=auth).json()["items"]
    assert len(everything) == 3  # plus the one from the network-default source

    # Revoked tokens stop working at the next reload.
    revoked = c.delete(f"/api/v1/dns/device-tokens/{token['id']}", headers=auth)
    assert revoked.status_code == 204
    process.reload()
    assert process.gateway.identities.by_token(token["token"]) is None


def test_list_in_use_cannot_be_deleted_and_bad_rules_are_refused(api: ApiHarness) -> None:
    world = populate(api, "alpha", 1)
    auth, c = world.org.auth(), api.client
    listed = c.post("/api/v1/dns/lists", json={"name": "l1", "content": "a.test\n"}, headers=auth)
    c.post(
        "/api/v1/dns/rules", json={"name": "uses", "action": "block", "lists": ["l1"]}, headers=auth
    )
    assert c.delete(f"/api/v1/dns/lists/{listed.json()['id']}", headers=auth).status_code == 409
    for bad in (
        {"name": "x", "action": "override"},
        {"name": "x", "action": "block", "lists": ["missing"]},
        {"name": "x", "action": "block", "domains": ["not a name"]},
        {"name": "no-social", "action": "block"},
    ):
        r = c.post("/api/v1/dns/rules", json=bad, headers=auth)
        assert r.status_code in (404, 409, 422), (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    both = {"name": "x", "content": "a.test", "url": "https://lists.example/x"}
    assert c.post("/api/v1/dns/lists", json=both, headers=auth).status_code == 422


def test_a_network_inside_another_orgs_space_is_refused_without_naming_it(
    api: ApiHarness,
) -> None:
    alpha, bravo = populate(api, "alpha", 1), populate(api, "bravo", 2)
    c = api.client
    mine = {"privacy": "all", "networks": ["127.0.9.0/24"]}
    assert c.put("/api/v1/dns/settings", json=mine, headers=alpha.org.auth()).status_code == 200
    # Bravo's more specific network would win the lookup for alpha's sources; alpha's
    # gateway (192.0.2.1) is a claim too.
    for networks in (["127.0.9.128/25"], ["127.0.0.0/16"], ["192.0.2.0/24"]):
        body = {"privacy": "all", "networks": ["127.0.10.0/24", *networks]}
        r = c.put("/api/v1/dns/settings", json=body, headers=bravo.org.auth())
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == "this address space is already claimed"
        for secret_of_alpha in (alpha.org.id, "alpha", "127.0.9.0", "192.0.2.1"):
            assert secret_of_alpha not in r.text
    # Nothing changed: bravo has no networks, alpha's sources are still alpha's.
    settings = c.get("/api/v1/dns/settings", headers=bravo.org.auth()).json()
    assert (settings["networks"], settings["privacy"]) == ([], "blocked-only")
    process = _process(api)
    who = process.gateway.identities.by_source("127.0.9.200")
    assert who is not None
    assert who.org_id == alpha.org.id
    # Space nobody holds is bravo's to claim; alpha's own nested network is alpha's.
    apart = {"networks": ["127.0.10.0/24"]}
    assert c.put("/api/v1/dns/settings", json=apart, headers=bravo.org.auth()).status_code == 200
    nested = {"networks": ["127.0.9.0/24", "127.0.9.0/28"]}
    assert c.put("/api/v1/dns/settings", json=nested, headers=alpha.org.auth()).status_code == 200


def test_a_replaced_list_is_served_under_its_name(api: ApiHarness) -> None:
    world = populate(api, "alpha", 1)
    auth, c = world.org.auth(), api.client
    listed = c.post(
        "/api/v1/dns/lists", json={"name": "l1", "content": "old.test\n"}, headers=auth
    ).json()
    rule = {"name": "uses-l1", "action": "block", "lists": ["l1"], "position": 0}
    assert c.post("/api/v1/dns/rules", json=rule, headers=auth).status_code == 201
    settings = {"block_answer": "nxdomain", "networks": ["127.0.9.0/24"]}
    assert c.put("/api/v1/dns/settings", json=settings, headers=auth).status_code == 200
    process = _process(api)
    assert _ask(process, "old.test", source="127.0.9.7").rcode == Rcode.NXDOMAIN

    path = f"/api/v1/dns/lists/{listed['id']}"
    new = {"format": "domains", "content": "new.test\nsecond.test\nnot a name\n"}
    replaced = c.put(path, json=new, headers=auth)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["id"], body["name"], body["format"]) == (listed["id"], "l1", "domains")
    assert (body["good_lines"], body["bad_lines"]) == (2, 1)
    assert body["bad_samples"][0]["line"] == 3
    assert c.get(path, headers=auth).json() == body
    process.reload()
    assert _ask(process, "new.test", source="127.0.9.7").rcode == Rcode.NXDOMAIN
    assert _ede(_ask(process, "second.test", source="127.0.9.7")) == [
        (EdeCode.BLOCKED, "blocked by rule uses-l1")
    ]
    # The old name is no longer blocked: it goes upstream.
    who = process.gateway.identities.by_source("127.0.9.7")
    query = Message(id=6, flags=Flag.RD, questions=(Question("old.test", 1),)).to_wire()
    assert not isinstance(process.gateway.engine.handle(query, who, 0.0, udp=True), Answer)

    for bad in ({}, {"content": "a.test", "url": "https://lists.example/x"}, {"name": "x"}):
        r = c.put(path, json=bad, headers=auth)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert c.put("/api/v1/dns/lists/nonexistent", json=new, headers=auth).status_code == 404
    assert c.get(path, headers=auth).json() == body  # refused changes changed nothing


def test_rules_with_requirements_through_the_api(api: ApiHarness) -> None:
    world = populate(api, "alpha", 1)
    auth, c = world.org.auth(), api.client
    with api.engine.begin() as conn:
        modern = PostureCheck("managed-modern", 'device.os_version >= "17.0"')
        checks.create_check(conn, world.org.id, modern, actor="user:admin", now=utc_now())
    body = {
        "name": "no-finance",
        "action": "block",
        "domains": [".finance.test"],
        "identity_kinds": ["user"],
        "posture": ["!managed-modern"],
        "sim": ["  not sim.clone_suspected"],
        "position": 0,
    }
    created = c.post("/api/v1/dns/rules", json=body, headers=auth)
    assert created.status_code == 201, created.text
    shown = {k: created.json()[k] for k in ("identity_kinds", "posture", "sim")}
    assert shown == {
        "identity_kinds": ["user"],
        "posture": ["!managed-modern"],
        "sim": ["not sim.clone_suspected"],  # as parsed, as the gateway tags it
    }
    listed = c.get("/api/v1/dns/rules", headers=auth).json()
    rows = listed["items"] if isinstance(listed, dict) else listed
    assert [r["posture"] for r in rows if r["name"] == "no-finance"] == [["!managed-modern"]]
    for bad in (
        {"posture": ["Not A Check"]},
        {"sim": ["device.managed"]},  # posture belongs in `posture`
        {"sim": ["sim.swap_age <"]},
        {"identity_kinds": ["robot"]},
    ):
        r = c.post("/api/v1/dns/rules", json={**body, "name": "bad", **bad}, headers=auth)
        assert r.status_code == 422, (bad, r.text)
    token = c.post(
        "/api/v1/dns/device-tokens", json={"device_id": world.ids["device_id"]}, headers=auth
    ).json()["token"]
    process = _process(api)
    phone = process.gateway.identities.by_token(token)
    assert phone is not None
    # No MDM reported its phone; a token has no SIM, so no signal says it is a clone.
    # (The world's own check, `managed`, is the org's too.)
    assert phone.tags == {
        "posture:managed-modern:missing",
        "posture:managed:missing",
        "sim:not sim.clone_suspected",
    }
    assert _ede(_ask(process, "www.finance.test", token=token)) == [
        (
            EdeCode.BLOCKED,
            "blocked by rule no-finance (posture:managed-modern:missing, sim:clone-suspected)",
        )
    ]
