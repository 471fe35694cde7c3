"""The SQLite database and its -wal/-shm files are their owner's only (0600), its new
directory 0700; files left wider by an older version are tightened, with a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from ztsim.db.engine import make_engine


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_new_database_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "data" / "ztsim.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(Path(f"{db}-wal")) == 0o600
        assert _mode(Path(f"{db}-shm")) == 0o600
    assert _mode(db) == 0o600
    assert _mode(db.parent) == 0o700
    engine.dispose()


def test_existing_files_are_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tmp_path.chmod(0o755)
    db = tmp_path / "ztsim.db"
    for path in (db, Path(f"{db}-wal")):
        path.touch(mode=0o644)
        path.chmod(0o644)
    caplog.set_level(logging.WARNING, logger="ztsim.db")
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600
    assert _mode(Path(f"{db}-wal")) == 0o600
    assert "was mode 644; now 600" in caplog.text
    assert _mode(tmp_path) == 0o755  # an existing directory that is not ours is left alone
