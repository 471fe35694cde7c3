"""The data directory (database, key file) is its owner's only: created 0700, an existing
wider one tightened at start with a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ztsim.node.platform import build
from ztsim.settings import Settings


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_data_directory_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform = build(Settings(data_dir=data), create_key=True)
    platform.engine.dispose()
    assert _mode(data) == 0o700
    assert _mode(data / "ztsim.db") == 0o600
    assert _mode(data / "master.key") == 0o600


def test_an_existing_wide_directory_is_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    caplog.set_level(logging.WARNING)
    platform = build(Settings(data_dir=data), create_key=True)
    platform.engine.dispose()
    assert _mode(data) == 0o700
    assert "was mode 755; now 700" in caplog.text
