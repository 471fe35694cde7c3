"""The session table's writes on both backends: the rows `save` hands the driver are the
rows SQLAlchemy's upsert writes (same text, times and JSON, column for column), and the
update-then-insert path elsewhere agrees with both; an update keeps `started_at`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ztsim.db import bulk, schema
from ztsim.identity import repository as identities
from ztsim.sessions import repository
from ztsim.sessions.table import Session

_t = schema.radius_sessions
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Not UTC, and without microseconds: both are converted the way UtcDateTime binds them.
PLUS2 = timezone(timedelta(hours=2))


def _session(org: str, n: int, **changes: object) -> Session:
    base = Session(
        org_id=org,
        gateway_id=f"g{n % 2}",
        acct_session_id=f"s-{n}",
        nas_address="127.0.0.1",
        imsi=f"{n:015d}",
        iccid=None if n % 3 == 0 else f"8944{n:016d}",
        identity_id="i1",
        device_id=None,
        imei="3534900698733201" if n % 2 else None,
        ue_address=f"10.64.0.{n % 250}" if n % 4 else None,
        apn="corp",
        rat="EUTRAN" if n % 2 else None,
        location=(
            None if n % 3 else {"type": "TAI_ECGI", "parts": [{"mcc": "001", "n": n}], "é": "ü"}
        ),
        started_at=T0 + timedelta(microseconds=n),
        updated_at=(T0 + timedelta(seconds=n)).astimezone(PLUS2),
    )
    return base._replace(**changes)  # type: ignore[arg-type]


def _batches(org: str) -> list[list[Session]]:
    first = [_session(org, n) for n in range(130)]
    later = T0 + timedelta(hours=1, microseconds=7)
    # Known keys (stopped, with a new start that is to be ignored) and new ones.
    second = [
        _session(org, n, started_at=later, updated_at=later, stopped_at=later, stop_cause="stop")
        for n in range(100, 160)
    ]
    return [first, second]


def _sqlalchemy_upsert(conn: Connection, sessions: list[Session]) -> None:
    """What `save` did before it went to the driver: SQLAlchemy's upsert, its types binding."""
    make = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    upsert = make(_t)
    kept = ("id", "gateway_id", "acct_session_id", "started_at")
    stmt = upsert.on_conflict_do_update(
        index_elements=[_t.c.gateway_id, _t.c.acct_session_id],
        set_={c.name: upsert.excluded[c.name] for c in _t.c if c.name not in kept},
    )
    conn.execute(stmt, [repository._values(s) for s in sessions])


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    # As stored (the driver's values, not through the column types), and as read back.
    columns = ", ".join(c.name for c in _t.c if c.name != "id")
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(
            f"SELECT {columns} FROM radius_sessions ORDER BY gateway_id, acct_session_id"  # noqa: S608
        ).all()
        typed = conn.execute(select(_t).order_by(_t.c.gateway_id, _t.c.acct_session_id)).all()
    return [tuple(r) for r in raw] + [tuple(r)[1:] for r in typed]


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(_t))


@pytest.fixture
def org(engine: Engine) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, "Org", "org", T0).id


def test_the_driver_path_writes_the_rows_sqlalchemy_writes(engine: Engine, org: str) -> None:
    assert bulk.takes_driver_rows(engine.dialect.name)
    for batch in _batches(org):
        with engine.begin() as conn:
            _sqlalchemy_upsert(conn, batch)
    expected = _stored(engine)
    _clear(engine)
    for batch in _batches(org):
        with engine.begin() as conn:
            repository.save(conn, batch)
    assert _stored(engine) == expected
    # The update kept the first start and took the rest; the new keys are there whole.
    with engine.connect() as conn:
        live = repository.load_live(conn)
    assert {s.acct_session_id for s in live} == {f"s-{n}" for n in range(100)}
    assert {s.key: s for s in live}[("g1", "s-1")] == _session(org, 1)
    assert len(expected) == 2 * 160


def test_update_then_insert_elsewhere_writes_the_same_rows(
    engine: Engine, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for batch in _batches(org):
        with engine.begin() as conn:
            repository.save(conn, batch)
    expected = _stored(engine)
    _clear(engine)
    monkeypatch.setattr(bulk, "_DRIVER_DIALECTS", frozenset())
    for batch in _batches(org):
        with engine.begin() as conn:
            repository.save(conn, batch)
    assert _stored(engine) == expected


def test_a_naive_time_is_refused_and_nothing_is_written(engine: Engine, org: str) -> None:
    naive = _session(org, 5, updated_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        repository.save(conn, [_session(org, 4), naive])
    assert _stored(engine) == []


def test_nothing_to_save_runs_no_statement(engine: Engine) -> None:
    with engine.begin() as conn:
        repository.save(conn, [])
    assert _stored(engine) == []
