"""The identity table read from the session table, SIMs, identities and memberships: in
full and by key, revoked where the SIM is not active or the identity disabled; on both
backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from ztsim.db import schema
from ztsim.dns.policy.identity import (
    IDENTITY_DISABLED,
    SIM_NOT_ACTIVE,
    IdentityResolver,
    NetworkDefault,
    Requester,
)
from ztsim.dns.store.identity_view import (
    address_of_session,
    addresses_of_sims,
    load_entries,
    load_identity_snapshot,
    read_addresses,
    read_tokens,
)
from ztsim.dns.store.repository import add_device_token
from ztsim.sessions import repository
from ztsim.sessions.table import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(key: str, address: str | None, iccid: str, identity: str, **kw: object) -> Session:
    return Session(
        org_id="o1",
        gateway_id="gw",
        acct_session_id=key,
        nas_address="192.0.2.250",
        imsi=None,
        iccid=iccid,
        identity_id=identity,
        device_id=f"dev-{identity}",
        imei=None,
        ue_address=address,
        apn=None,
        rat=None,
        location=None,
        started_at=T0,
        updated_at=kw.pop("updated_at", T0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_snapshot_from_live_sessions(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.orgs).values(id="o1", name="O", slug="o", created_at=T0))
        for ident in ("alice", "bob"):
            conn.execute(
                insert(schema.identities).values(
                    id=ident, org_id="o1", kind="user", name=ident, created_at=T0
                )
            )
        conn.execute(insert(schema.groups).values(id="g1", org_id="o1", name="g", created_at=T0))
        conn.execute(insert(schema.fleets).values(id="f1", org_id="o1", name="f", created_at=T0))
        conn.execute(insert(schema.group_members).values(group_id="g1", identity_id="alice"))
        conn.execute(insert(schema.fleet_members).values(fleet_id="f1", identity_id="bob"))
        for n, (iccid, kind) in enumerate(
            (("8900000000000000001", "esim"), ("8900000000000000002", "physical"))
        ):
            conn.execute(
                insert(schema.sims).values(
                    org_id="o1",
                    iccid=iccid,
                    imsi=f"00101000000000{n}",
                    kind=kind,
                    state="active",
                    k_sealed=b"x",
                    opc_sealed=b"x",
                    created_at=T0,
                    updated_at=T0,
                )
            )
        repository.save(
            conn,
            [
                _session("1", "10.0.0.1", "8900000000000000001", "alice"),
                _session("2", "10.0.0.2", "8900000000000000002", "bob"),
                _session("3", "10.0.0.3", "8900000000000000002", "bob", stopped_at=T0),
                _session("4", None, "8900000000000000002", "bob"),
                _session(
                    "5", "10.0.0.1", "8900000000000000002", "bob", updated_at=T0 - timedelta(1)
                ),
            ],
        )
    with engine.connect() as conn:
        snapshot = load_identity_snapshot(conn, T0, [NetworkDefault("o1", "10.9.0.0/16")])
    resolver = IdentityResolver(snapshot)
    assert resolver.by_source("10.0.0.1") == Requester(
        "o1", "alice", frozenset({"g1"}), frozenset(), "esim", "dev-alice", identity_kind="user"
    )
    assert resolver.by_source("::ffff:10.0.0.2") == Requester(
        "o1", "bob", frozenset(), frozenset({"f1"}), "physical", "dev-bob", identity_kind="user"
    )
    assert resolver.by_source("10.0.0.3") is None  # stopped session
    assert resolver.by_source("10.9.4.4") == Requester("o1")
    assert len(snapshot) == 2


def test_revoked_at_load_and_read_by_key(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.orgs).values(id="o1", name="O", slug="o", created_at=T0))
        for ident, enabled in (("alice", True), ("bob", False), ("carol", True)):
            conn.execute(
                insert(schema.identities).values(
                    id=ident, org_id="o1", kind="user", name=ident, enabled=enabled, created_at=T0
                )
            )
        for n, (_holder, state) in enumerate(
            (("alice", "suspended"), ("bob", "active"), ("carol", "active")), start=1
        ):
            conn.execute(
                insert(schema.sims).values(
                    org_id="o1",
                    iccid=f"890000000000000000{n}",
                    imsi=f"00101000000000{n}",
                    kind="esim",
                    state=state,
                    k_sealed=b"x",
                    opc_sealed=b"x",
                    created_at=T0,
                    updated_at=T0,
                )
            )
        repository.save(
            conn,
            [
                _session("1", "10.0.0.1", "8900000000000000001", "alice")._replace(
                    imsi="001010000000001"
                ),
                _session("2", "10.0.0.2", "8900000000000000002", "bob")._replace(
                    imsi="001010000000002"
                ),
                _session("3", "10.0.0.3", "8900000000000000003", "carol")._replace(
                    imsi="001010000000003"
                ),
            ],
        )
        conn.execute(
            insert(schema.devices).values(
                id="dev-bob", org_id="o1", imei="490154203237518", owner_id="bob", created_at=T0
            )
        )
    with engine.connect() as conn:
        entries = load_entries(conn, T0)
        read = read_addresses(conn, {"o1": ["10.0.0.1", "10.0.0.3", "10.0.0.9"]}, T0)
        by_sim = addresses_of_sims(conn, ["8900000000000000001"])
        by_session = address_of_session(conn, "gw", "2")
        both = addresses_of_sims(conn, ["8900000000000000001", "8900000000000000002"])
    assert {a: e.who.revoked for a, e in entries.items()} == {
        "10.0.0.1": SIM_NOT_ACTIVE,
        "10.0.0.2": IDENTITY_DISABLED,
        "10.0.0.3": "",
    }
    assert entries["10.0.0.1"].iccid == "8900000000000000001"
    assert read == {a: entries[a] for a in ("10.0.0.1", "10.0.0.3")}  # 10.0.0.9: no session
    assert (by_sim, by_session) == ({"10.0.0.1": "o1"}, {"10.0.0.2": "o1"})
    assert both == {"10.0.0.1": "o1", "10.0.0.2": "o1"}  # one query for a batch's SIMs
    with engine.begin() as conn:
        token_id = add_device_token(conn, "o1", "dev-bob", "ztdns_token-of-bobs-device", T0)
    with engine.connect() as conn:
        [token] = read_tokens(conn, T0, ids=[token_id])
        assert read_tokens(conn, T0, owners=["bob"]) == [token]
        assert read_tokens(conn, T0) == [token]
    assert token.who is not None
    assert token.who.revoked == IDENTITY_DISABLED  # a disabled owner's device is refused too
