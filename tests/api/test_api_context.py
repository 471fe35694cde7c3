"""Reads never wait behind a writer: on SQLite (WAL) a GET's transaction takes no lock, so
an import or any other long write transaction does not hold up the API's readers; a
write still waits for the write lock (and gets it once the writer commits)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from ztsim.db.engine import for_writing
from ztsim.sealing import Sealer

from support.api import harness

HOLD_SECONDS = 2.0


def _hold_the_write_lock(engine: Engine, taken: threading.Event) -> None:
    with for_writing(engine).begin():  # BEGIN IMMEDIATE: the write lock, held
        taken.set()
        time.sleep(HOLD_SECONDS)


def test_a_read_is_answered_while_another_transaction_holds_the_write_lock(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    with harness(sqlite_engine, sealer) as api:
        org = api.new_org("acme")
        taken = threading.Event()
        writer = threading.Thread(target=_hold_the_write_lock, args=(sqlite_engine, taken))
        writer.start()
        try:
            assert taken.wait(5)
            started = time.monotonic()
            for path in ("/api/v1/sims", "/api/v1/identities", "/api/v1/events", "/api/v1/org"):
                r = api.client.get(path, headers=org.auth())
                assert r.status_code == 200, (path, r.text)
            reads = time.monotonic() - started
            written_at = time.monotonic()
            r = api.client.post(
                "/api/v1/identities",
                json={"kind": "user", "name": "Ada", "email": "ada@acme.test"},
                headers=org.auth(),
            )
            assert r.status_code == 201, r.text
            write_waited = time.monotonic() - written_at
        finally:
            writer.join()
        assert reads < HOLD_SECONDS / 2, reads
        # The write was held until the other transaction committed: the lock is real.
        assert write_waited > HOLD_SECONDS / 4, write_waited
