"""`make lint`'s import contracts catch a forbidden import: a copy of src with one planted.

lint-imports analyses whatever `ztsim` it can import, so each run points PYTHONPATH at
the copy; the untouched copy passing and the planted copy failing on the planted line
show the copy, not the installed tree, is what was read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PURE_CONTRACT = "pure cores import no database, HTTP stack or NumPy"


def _tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    # The whole file: the contracts are its [tool.importlinter] tables, read as make lint does.
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # COLUMNS: a wide report, so no contract name is wrapped across lines.
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_forbidden_import_in_the_wire_codec_breaks_the_purity_contract(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    clean = _lint_imports(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"{PURE_CONTRACT} KEPT" in clean.stdout

    message = tree / "src" / "ztsim" / "dns" / "wire" / "message.py"
    message.write_text(message.read_text() + "\nimport sqlalchemy  # planted\n")
    planted = _lint_imports(tree)

    assert planted.returncode != 0
    assert f"{PURE_CONTRACT} BROKEN" in planted.stdout
    assert "ztsim.dns.wire.message -> sqlalchemy" in planted.stdout
