"""A reader's cursor moves only forward; SIM changes are read in id order, every org."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from ztsim.inventory.number_history import ChangeKind, record
from ztsim.risk.store import cursors
from ztsim.sealing import Sealer

from support.camara_sink import org_with_line

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def test_a_cursor_starts_at_zero_and_never_goes_back(engine: Engine) -> None:
    with engine.begin() as conn:
        assert cursors.position(conn, "reader") == 0
        cursors.advance(conn, "reader", 7, NOW)
        cursors.advance(conn, "reader", 3, NOW)
        assert cursors.position(conn, "reader") == 7
        assert cursors.position(conn, "other") == 0
        cursors.advance(conn, "reader", 9, NOW)
        assert cursors.position(conn, "reader") == 9


def test_sim_changes_after_an_id(engine: Engine, sealer: Sealer) -> None:
    alpha = org_with_line(engine, sealer, "alpha", 1, NOW)
    bravo = org_with_line(engine, sealer, "bravo", 2, NOW)
    with engine.begin() as conn:
        start = max((c.id for c in cursors.sim_changes_after(conn, 0, 100)), default=0)
        for line, at in ((alpha, NOW), (bravo, NOW + timedelta(seconds=1))):
            record(
                conn,
                line.org_id,
                line.phone_number,
                ChangeKind.SIM,
                iccid="8944000000000000999",
                previous=line.iccid,
                current="8944000000000000999",
                actor="t",
                now=at,
            )
            record(
                conn,
                line.org_id,
                line.phone_number,
                ChangeKind.DEVICE,
                iccid=line.iccid,
                previous=None,
                current="490154203237518",
                actor="t",
                now=at,
            )
        got = cursors.sim_changes_after(conn, start, 100)
        assert [(c.org_id, c.msisdn, c.at) for c in got] == [
            (alpha.org_id, alpha.phone_number[1:], NOW),
            (bravo.org_id, bravo.phone_number[1:], NOW + timedelta(seconds=1)),
        ]
        assert got[0].id < got[1].id
        assert cursors.sim_changes_after(conn, got[0].id, 100) == got[1:]
        assert cursors.sim_changes_after(conn, start, 1) == got[:1]
