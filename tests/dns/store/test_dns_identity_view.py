"""The identity snapshot built from the session table and memberships, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from ztsim.db import schema
from ztsim.dns.policy.identity import IdentityResolver, NetworkDefault, Requester
from ztsim.dns.store.identity_view import load_identity_snapshot
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
                    id=ident, org_id="o1", kind="person", name=ident, created_at=T0
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
        snapshot = load_identity_snapshot(conn, [NetworkDefault("o1", "10.9.0.0/16")])
    resolver = IdentityResolver(snapshot)
    assert resolver.by_source("10.0.0.1") == Requester(
        "o1", "alice", frozenset({"g1"}), frozenset(), "esim", "dev-alice"
    )
    assert resolver.by_source("::ffff:10.0.0.2") == Requester(
        "o1", "bob", frozenset(), frozenset({"f1"}), "physical", "dev-bob"
    )
    assert resolver.by_source("10.0.0.3") is None  # stopped session
    assert resolver.by_source("10.9.4.4") == Requester("o1")
    assert len(snapshot) == 2
