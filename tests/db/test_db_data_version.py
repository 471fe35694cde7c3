"""`DataVersion` on real SQLite files: it sees every commit of another connection (of this
process or another one), none of its own looks, and answers True wherever it cannot be
sure (memory, options in the URL, PostgreSQL, a file that is gone)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ztsim.db.data_version import DataVersion
from ztsim.db.engine import for_writing, make_engine


@pytest.fixture
def file_engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    with for_writing(eng).begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return eng


def _insert(engine: Engine, n: int) -> None:
    with for_writing(engine).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})


def test_a_commit_of_another_connection_is_seen_once(file_engine: Engine) -> None:
    version = DataVersion(file_engine)
    assert version.watching
    try:
        assert version.changed()  # the first look: nothing known yet
        assert not version.changed()
        assert not version.changed()
        _insert(file_engine, 1)
        assert version.changed()
        assert not version.changed()
        # Reads change nothing.
        with file_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        assert not version.changed()
        # A rolled-back write is no commit.
        with for_writing(file_engine).connect() as conn, conn.begin() as tx:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            tx.rollback()
        assert not version.changed()
    finally:
        version.close()
        file_engine.dispose()


_WRITER = (
    "import sqlite3, sys\n"
    "with sqlite3.connect(sys.argv[1]) as c:\n"
    "    c.execute('INSERT INTO t VALUES (7)')\n"
)


def test_a_commit_of_another_process_is_seen(file_engine: Engine) -> None:
    version = DataVersion(file_engine)
    try:
        version.changed()
        assert not version.changed()
        path = str(file_engine.url.database)
        subprocess.run([sys.executable, "-c", _WRITER, path], check=True, timeout=60)
        assert version.changed()
        assert not version.changed()
    finally:
        version.close()
        file_engine.dispose()


def test_a_missing_file_is_not_created_and_not_sure(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    eng = make_engine(f"sqlite:///{missing}")
    missing.unlink()  # make_engine made it (0600); a watcher must not make it again
    version = DataVersion(eng)
    assert version.watching
    try:
        assert version.changed()
        assert version.changed()  # not sure, so always True
        assert not missing.exists()
    finally:
        version.close()
        eng.dispose()


def test_where_it_cannot_be_sure_it_always_says_changed(tmp_path: Path) -> None:
    engines = [
        make_engine("sqlite://"),
        make_engine("sqlite:///:memory:"),
        make_engine(f"sqlite:///{tmp_path / 'q.db'}?timeout=5"),  # options: left alone
        make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"),  # never connected
    ]
    for eng in engines:
        version = DataVersion(eng)
        assert not version.watching
        assert all(version.changed() for _ in range(3))
        version.close()
        eng.dispose()


def test_the_connection_is_the_calling_threads_and_closes(file_engine: Engine) -> None:
    version = DataVersion(file_engine)
    answers: list[bool] = []

    def look() -> None:
        answers.extend([version.changed(), version.changed()])
        version.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(10)
    assert answers == [True, False]
    # Closed: the next look starts over.
    assert version.changed()
    version.close()
    file_engine.dispose()
