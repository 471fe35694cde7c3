"""Vectors for stored SIMs, against a USIM model, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, update

from udm.usim_model import Usim
from ztsim.aka.sqn import UsimSqnWindow
from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.events import store as events
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.sealing import Sealer
from ztsim.udm import service

from support.factories import SimSpec, activate, make_sims
from tests_clock import NOW

SNN = "5G:mnc001.mcc001.3gppnetwork.org"


def _active_sim(
    engine: Engine, sealer: Sealer, slug: str = "acme", seed: int = 3
) -> tuple[str, SimSpec]:
    spec = make_sims(1, seed=seed)[0]
    with engine.begin() as conn:
        org = identities.create_org(conn, slug.title(), slug, NOW).id
        activate(conn, sealer, org, spec, NOW)
    return org, spec


def _vector(
    engine: Engine,
    sealer: Sealer,
    org: str,
    spec: SimSpec,
    rng: random.Random,
    *,
    node: str = "ausf-1",
    resync: service.Resynchronization | None = None,
) -> service.IssuedVector | service.Refusal:
    with engine.begin() as conn:
        return service.generate(
            conn,
            sealer,
            org,
            spec.imsi,
            serving_network_name=SNN,
            node_id=node,
            now=NOW,
            rand=rng.randbytes,
            resync=resync,
        )


def _kinds(engine: Engine, org: str, spec: SimSpec) -> list[str]:
    with engine.connect() as conn:
        page, _ = events.query(
            conn, org, events.EventQuery(subject=f"sim:{spec.iccid}"), limit=1000
        )
    return [e.kind for e in page]


def test_thousand_authentications_with_resyncs(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    usim = Usim(spec.k, spec.opc)
    rng = random.Random(7)
    accepted = resyncs = 0
    for n in range(1000):
        if n % 250 == 249:
            # A restored home network forgets what it issued: the USIM is now ahead.
            with engine.begin() as conn:
                conn.execute(
                    update(schema.sims).where(schema.sims.c.iccid == spec.iccid).values(sqn_seq=1)
                )
        issued = _vector(engine, sealer, org, spec, rng, node=f"ausf-{n % 3}")
        assert isinstance(issued, service.IssuedVector)
        v = issued.vector
        answer = usim.authenticate(v.rand, v.autn, SNN)
        if answer.kind == "sync":
            resyncs += 1
            again = _vector(
                engine,
                sealer,
                org,
                spec,
                rng,
                resync=service.Resynchronization(v.rand, answer.value),
            )
            assert isinstance(again, service.IssuedVector)
            v = again.vector
            answer = usim.authenticate(v.rand, v.autn, SNN)
        assert answer.kind == "res", n
        assert answer.value == v.xres_star
        accepted += 1
    assert (accepted, resyncs) == (1000, 4)
    assert _kinds(engine, org, spec).count("aka.resync") == 4


def test_concurrent_requests_never_share_an_sqn(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    local = threading.local()

    def one(_: int) -> int:
        if not hasattr(local, "rng"):
            local.rng = random.Random(threading.get_ident())
        issued = _vector(engine, sealer, org, spec, local.rng)
        assert isinstance(issued, service.IssuedVector)
        return issued.sqn

    with ThreadPoolExecutor(max_workers=8) as pool:
        sqns = list(pool.map(one, range(200)))
    assert len(set(sqns)) == 200
    with engine.connect() as conn:
        seq = conn.execute(
            select(schema.sims.c.sqn_seq).where(schema.sims.c.iccid == spec.iccid)
        ).scalar_one()
    assert seq == 200
    assert {s >> 5 for s in sqns} == set(range(1, 201))


def test_cloned_sim_racing_the_genuine_one_raises_signals(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    genuine = Usim(spec.k, spec.opc)
    # The clone carries the same K, and its SQN state was pushed ahead by vectors that
    # someone else computed with that K: this network never issued them. Far enough
    # ahead that the age limit (Annex C.2) refuses our vectors in every slot.
    far = (1 << 28) + 5000
    clone = Usim(spec.k, spec.opc, UsimSqnWindow(seq_ms=(far,) + (0,) * 31, highest_sqn=far << 5))
    rng = random.Random(11)
    outcomes = []
    for turn in range(6):
        usim = clone if turn % 2 else genuine
        issued = _vector(engine, sealer, org, spec, rng)
        assert isinstance(issued, service.IssuedVector)
        answer = usim.authenticate(issued.vector.rand, issued.vector.autn, SNN)
        if answer.kind == "sync":
            issued = _vector(
                engine,
                sealer,
                org,
                spec,
                rng,
                resync=service.Resynchronization(issued.vector.rand, answer.value),
            )
            assert isinstance(issued, service.IssuedVector)
            answer = usim.authenticate(issued.vector.rand, issued.vector.autn, SNN)
        outcomes.append(answer.kind)
    assert outcomes == ["res"] * 6
    kinds = _kinds(engine, org, spec)
    # The two cards drag SEQ_HE back and forth: every clone turn is an SQN this
    # network never issued, every genuine turn after it moves SEQ_HE backwards.
    assert kinds.count("aka.sqn_ahead") == 3
    assert kinds.count("aka.sqn_backwards") == 2
    assert kinds.count("aka.resync") == 5
    with engine.connect() as conn:
        ahead, _ = events.query(conn, org, events.EventQuery(kind="aka.sqn_ahead"))
    assert ahead[-1].payload["seq_ms"] == far  # the first, oldest signal
    assert ahead[0].outcome.value == "failure"


def test_auts_under_another_key_is_refused_and_recorded(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    rng = random.Random(5)
    issued = _vector(engine, sealer, org, spec, rng)
    assert isinstance(issued, service.IssuedVector)
    impostor = Usim(bytes(16), spec.opc, UsimSqnWindow().accept(900 << 5))
    from ztsim.aka.milenage import Milenage
    from ztsim.aka.sqn import make_auts

    auts = make_auts(Milenage(impostor.k, impostor.opc), issued.vector.rand, 900 << 5)
    result = _vector(
        engine, sealer, org, spec, rng, resync=service.Resynchronization(issued.vector.rand, auts)
    )
    assert result == service.Refusal("the AUTS does not verify")
    assert "aka.auts_mac_failure" in _kinds(engine, org, spec)
    with engine.connect() as conn:
        seq = conn.execute(
            select(schema.sims.c.sqn_seq).where(schema.sims.c.iccid == spec.iccid)
        ).scalar_one()
    assert seq == 1  # untouched by the bad AUTS


def test_only_active_sims_in_the_callers_org(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    other, _ = _active_sim(engine, sealer, "other", seed=4)
    rng = random.Random(1)
    with pytest.raises(NotFound):
        _vector(engine, sealer, other, spec, rng)
    with engine.begin() as conn:
        inventory.change_state(
            conn, org, spec.iccid, SimAction.SUSPEND, actor="t", reason="lost", now=NOW
        )
    assert _vector(engine, sealer, org, spec, rng) == service.Refusal(
        "the SIM is suspended, not active"
    )
    assert "aka.refused" in _kinds(engine, org, spec)


def test_serving_nodes_get_stable_distinct_slots() -> None:
    slots = {service.serving_node_slot(SNN, f"ausf-{i}") for i in range(64)}
    assert len(slots) > 16
    assert service.serving_node_slot(SNN, "ausf-1") == service.serving_node_slot(SNN, "ausf-1")
    assert all(0 <= s < 32 for s in slots)
