"""The SIM pages' reads: the search by each key within the viewer's org only, paging,
the live-session flag, one SIM's facts, and finding the person an `assign` names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from ztsim.errors import InvalidInput, NotFound
from ztsim.inventory.lifecycle import SimAction
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions
from ztsim.sessions.table import Session
from ztsim.web import sims

from support.api import ApiHarness
from support.radius_world import build_world
from support.world import World


def _found(api: ApiHarness, world: World, query: str, **kw: object) -> sims.Found:
    with api.engine.connect() as conn:
        return sims.search(conn, world.org.id, query, **kw)  # type: ignore[arg-type]


def _iccids(found: sims.Found) -> list[str]:
    return [r.iccid for r in found.rows]


def _live_session(api: ApiHarness, world: World, iccid: str, *, stopped: bool = False) -> None:
    now = api.clock()
    with api.engine.begin() as conn:
        sessions.save(
            conn,
            [
                Session(
                    world.org.id, world.ids["gateway_id"], f"s-{iccid}-{stopped}", "192.0.2.1",
                    None, iccid, None, None, "490154203237518", "10.64.0.7", "corp", None, None,
                    now - timedelta(minutes=3), now, stopped_at=now if stopped else None,
                )
            ],
        )  # fmt: skip


@pytest.mark.parametrize(
    "key",
    ["iccid", "iccid prefix", "imsi", "msisdn", "msisdn as dialled", "name", "email", "Email"],
)
def test_the_search_finds_a_sim_by_each_key(
    api: ApiHarness, two_orgs: tuple[World, World], key: str
) -> None:
    alpha, _ = two_orgs
    iccid, msisdn = alpha.ids["iccid"], alpha.ids["msisdn"]
    query = {
        "iccid": iccid,
        "iccid prefix": iccid[:-3],
        "imsi": alpha.ids["supiOrSuci"].removeprefix("imsi-"),
        "msisdn": msisdn,
        "msisdn as dialled": f"{msisdn[:3]} {msisdn[3:6]}-{msisdn[6:]}",
        "name": "user ALPHA",
        "email": "u@alpha.test",
        "Email": "U@Alpha",
    }[key]
    found = _found(api, alpha, query)
    assert iccid in _iccids(found)
    row = next(r for r in found.rows if r.iccid == iccid)
    assert row.person == "User alpha <u@alpha.test>"
    assert (row.kind, row.state, "+" + str(row.msisdn)) == ("physical", "active", msisdn)


def test_the_search_sees_only_the_viewers_org(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    for query in (bravo.ids["iccid"], bravo.ids["msisdn"], "user bravo", "u@bravo.test"):
        assert _found(api, alpha, query).rows == [], query
    everything = _iccids(_found(api, alpha, ""))
    assert alpha.ids["iccid"] in everything
    assert bravo.ids["iccid"] not in everything
    assert everything == sorted(everything)


def test_wildcards_in_the_query_are_plain_characters(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert _found(api, alpha, "%").rows == []
    assert _found(api, alpha, "_").rows == []
    assert _found(api, alpha, "8944%").rows == []


def test_the_search_pages_by_iccid(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    everything = _iccids(_found(api, alpha, ""))
    assert len(everything) >= 4
    first = _found(api, alpha, "", limit=2)
    assert _iccids(first) == everything[:2]
    assert first.next_cursor is not None
    second = _found(api, alpha, "", limit=2, cursor=first.next_cursor)
    assert _iccids(second) == everything[2:4]
    last = _found(api, alpha, "", limit=len(everything))
    assert last.next_cursor is None
    with pytest.raises(InvalidInput):
        _found(api, alpha, "", cursor="not-a-cursor")


def test_a_sim_with_a_live_session_is_flagged(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid, spare = alpha.ids["iccid"], alpha.ids["spare_iccid"]
    _live_session(api, alpha, spare, stopped=True)  # ended: not live
    before = {r.iccid: r.live for r in _found(api, alpha, "").rows}
    assert before[iccid] is False
    assert before[spare] is False
    _live_session(api, alpha, iccid)
    after = {r.iccid: r.live for r in _found(api, alpha, "").rows}
    assert after[iccid] is True
    assert after[spare] is False


def test_live_sessions_name_their_gateway_and_skip_ended_ones(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _live_session(api, alpha, iccid, stopped=True)
    with api.engine.connect() as conn:
        assert sims.live_sessions(conn, alpha.org.id, iccid) == []
    _live_session(api, alpha, iccid)
    with api.engine.connect() as conn:
        [live] = sims.live_sessions(conn, alpha.org.id, iccid)
    assert (live.address, live.gateway, live.apn, live.imei) == (
        "10.64.0.7",
        "pgw",
        "corp",
        "490154203237518",
    )


def test_a_sims_facts_and_another_orgs_sim_not_found(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    with api.engine.connect() as conn:
        facts = sims.read_sim(conn, alpha.org.id, alpha.ids["iccid"])
        assert facts.person is not None
        assert facts.person.email == "u@alpha.test"
        assert facts.device is None  # registered to the person, bound to no SIM
        assert facts.actions == [SimAction.SUSPEND, SimAction.RETIRE]
        stock = sims.read_sim(conn, alpha.org.id, alpha.ids["spare_iccid"])
        assert (stock.person, stock.actions) == (None, [SimAction.ASSIGN, SimAction.RETIRE])
        for unknown in (bravo.ids["iccid"], "89440000000000000000"):
            with pytest.raises(NotFound):
                sims.read_sim(conn, alpha.org.id, unknown)


def test_the_search_on_each_backend(engine: Engine, sealer: Sealer) -> None:
    world = build_world(engine, sealer)
    with engine.connect() as conn:

        def found(query: str) -> list[str]:
            return [r.iccid for r in sims.search(conn, world.org_id, query).rows]

        assert found(world.active_iccid) == [world.active_iccid]
        assert found(world.active) == [world.active_iccid]  # its IMSI
        assert len(found(world.active_iccid[:10])) == 6
        assert world.active_iccid in found("p")  # the person's name, any case
        assert found("%") == []
        assert found("8944_") == []
