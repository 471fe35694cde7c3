"""The outbox's driver rows on both backends: what the fast path writes reads back the
same through SQLAlchemy's types (and byte for byte the same JSON text), what SQLAlchemy
writes reads back the same through the fast path, and a follower's topic filter skips
rows without decoding them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, cast, insert, select
from sqlalchemy.types import Text

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.feed import outbox, rows
from ztsim.feed.change import NewChange, Topic

from feed.feedkit import NOW, ORG

_t = schema.change_outbox

PAYLOADS: list[dict[str, Any]] = [
    {},
    {"state": "suspended"},
    {"iccid": "89440000000000000001", "gateway_id": "g" * 32, "acct_session_id": "s-1"},
    {"stopped": True, "none": None, "n": [1, 2.5, -3], "nested": {"a": {"b": []}}},
    {"unicode": "é→😀", "quote": 'say "hi"\n\t\\', "big": 2**63 - 1, "tiny": 1e-300},
]
# Not UTC, with microseconds: both ways must store the same instant.
WHEN = datetime(2025, 3, 1, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))


def _fast(engine: Engine) -> None:
    with for_writing(engine).begin() as conn:
        outbox.publish(
            conn, [NewChange(ORG, Topic.SESSION, f"k{i}", p) for i, p in enumerate(PAYLOADS)], WHEN
        )


def _through_sqlalchemy(engine: Engine) -> None:
    with for_writing(engine).begin() as conn:
        conn.execute(
            insert(_t),
            [
                {
                    "org_id": ORG,
                    "topic": "session",
                    "key": f"k{i}",
                    "payload": p,
                    "created_at": WHEN,
                }
                for i, p in enumerate(PAYLOADS)
            ],
        )


def _read_through_sqlalchemy(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(_t.c.org_id, _t.c.topic, _t.c.key, _t.c.payload, _t.c.created_at).order_by(
                _t.c.seq
            )
        )
        return [tuple(r) for r in found]


def _read_fast(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            (c.org_id, c.topic.value, c.key, dict(c.payload), c.created_at)
            for c in outbox.read_after(conn, 0)
        ]


def _stored_text(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(cast(_t.c.payload, Text)).order_by(_t.c.seq)).scalars())


EXPECTED = [(ORG, "session", f"k{i}", p, WHEN) for i, p in enumerate(PAYLOADS)]


def test_rows_the_fast_path_writes_read_back_equal_through_sqlalchemy(engine: Engine) -> None:
    _fast(engine)
    got = _read_through_sqlalchemy(engine)
    assert got == EXPECTED
    assert all(r[4].tzinfo is not None for r in got)
    assert _read_fast(engine) == EXPECTED


def test_rows_sqlalchemy_writes_read_back_equal_through_the_fast_path(engine: Engine) -> None:
    _through_sqlalchemy(engine)
    got = _read_fast(engine)
    assert got == EXPECTED
    assert all(r[4].tzinfo is UTC for r in got)


def test_both_ways_store_the_same_bytes(engine: Engine) -> None:
    _through_sqlalchemy(engine)
    reference = _stored_text(engine)
    _fast(engine)
    stored = _stored_text(engine)
    assert stored[len(PAYLOADS) :] == reference
    assert reference[0] == "{}"
    with engine.connect() as conn:
        times = list(conn.exec_driver_sql("SELECT created_at FROM change_outbox").scalars())
    assert len(set(times)) == 1  # SQLite's text, PostgreSQL's instant: identical


def test_a_naive_time_is_refused_like_the_column_type_does(engine: Engine) -> None:
    with for_writing(engine).begin() as conn, pytest.raises(ValueError, match="naive"):
        outbox.publish(conn, [NewChange(ORG, Topic.SIM, "k")], NOW.replace(tzinfo=None))


def test_many_rows_go_in_one_transaction_in_order(engine: Engine) -> None:
    # More rows than one SQLite statement takes (999 parameters: 199 rows of 5).
    keys = [f"10.0.{i // 250}.{i % 250}" for i in range(1000)]
    with for_writing(engine).begin() as conn:
        outbox.publish(
            conn, [NewChange(ORG, Topic.SESSION, k, {"i": i}) for i, k in enumerate(keys)], NOW
        )
    with engine.connect() as conn:
        got = outbox.read_after(conn, 0, 2000)
    assert [c.key for c in got] == keys
    assert [c.payload["i"] for c in got] == list(range(1000))
    assert [c.seq for c in got] == sorted({c.seq for c in got})


def test_a_topic_this_version_does_not_know_is_skipped_by_a_filter_only(engine: Engine) -> None:
    with for_writing(engine).begin() as conn:
        conn.execute(
            insert(_t),
            [
                {"org_id": ORG, "topic": t, "key": "k", "payload": {}, "created_at": NOW}
                for t in ("sim", "from-a-newer-version", "sim")
            ],
        )
    with engine.connect() as conn:
        read = outbox.scan(conn, 0, topics={Topic.SIM})
        assert [c.seq for c in read.changes] == [1, 3]
        assert (read.first, read.last, read.rows) == (1, 3, 3)
        with pytest.raises(ValueError, match="from-a-newer-version"):
            outbox.read_after(conn, 0)  # no filter: as loud as before


def test_a_filtered_scan_reads_the_wanted_changes_whole(engine: Engine) -> None:
    published = [
        NewChange(ORG, Topic.SESSION, "10.0.0.1", {"iccid": "89"}),
        NewChange(ORG, Topic.SIM, "8944", {"state": "active"}),
        NewChange(ORG, Topic.SESSION, "10.0.0.2", {"iccid": "90"}),
        NewChange(ORG, Topic.IDENTITY, "id-1", {}),
        NewChange(ORG, Topic.POLICY, ORG, {"plane": "dns"}),
    ]
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, published, NOW)
    with engine.connect() as conn:
        for topics in ({Topic.SIM}, {Topic.SIM, Topic.POLICY}, {Topic.SESSION, Topic.IDENTITY}):
            read = outbox.scan(conn, 0, topics=topics)
            assert [(c.topic, c.key, dict(c.payload)) for c in read.changes] == [
                (c.topic, c.key, dict(c.payload)) for c in published if c.topic in topics
            ]
            assert (read.first, read.last, read.rows) == (1, 5, 5)


def test_decode_keeps_the_order_and_leaves_the_skipped_rows_alone() -> None:
    found = [
        (1, ORG, "session", "a", "not json: never decoded", "not a time either"),
        (2, ORG, "sim", "b", '{"state": "active"}', "2025-03-01 12:00:00.000000"),
        (3, ORG, "network", ORG, "{}", "2025-03-01 12:00:00.000000"),
        (4, ORG, "session", "c", None, None),
    ]
    got = rows.decode(found, rows.wanted_topics({Topic.SIM, Topic.NETWORK}))
    assert [(c.seq, c.topic, c.key, dict(c.payload)) for c in got] == [
        (2, Topic.SIM, "b", {"state": "active"}),
        (3, Topic.NETWORK, ORG, {}),
    ]
    assert got[0].created_at == NOW
    assert got[0].created_at is got[1].created_at  # one transaction's time, parsed once
    assert rows.wanted_topics(None) is None
