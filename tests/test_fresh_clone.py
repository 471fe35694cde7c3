"""The README's promise for a new user: a plain clone, with nothing beside it (not even the
project's shared design folder), carries everything its tests read. Collects the suite of a fresh clone of
this repository's HEAD, importing that clone's own code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout"
)
def test_a_fresh_clone_collects_its_whole_suite_on_its_own(tmp_path: Path) -> None:
    clone = tmp_path / "alone" / "ztsim"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert [p.name for p in clone.parent.iterdir()] == ["ztsim"]  # nothing beside it
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " collected" in result.stdout or "tests collected" in result.stdout, result.stdout[-500:]
