"""The CLI as an admin runs it, in-process through typer's runner, on a fresh data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ztsim.cli.main import app

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"

    def run(*args: str, columns: int = 80) -> tuple[int, str]:
        env = {"ZTSIM_DATA_DIR": str(data_dir), "COLUMNS": str(columns)}
        result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
        LEAKS.add_text(f"cli {' '.join(args[:2])}", result.output)
        return result.exit_code, result.output

    return run


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> list[str]:
    """An initialised org with three physical SIMs in stock; returns their ICCIDs."""
    code, output = cli("init", "--org-name", "Acme", "--slug", "acme")
    assert code == 0, output
    LEAKS.allow_once("cli init --org-name", output)
    specs = make_sims(3, seed=41)
    batch = tmp_path / "batch.csv"
    batch.write_text(stock_csv(specs))
    code, output = cli("sims", "import", str(batch), "--kind", "PHYSICAL")
    assert code == 0, output
    return [s.iccid for s in specs]
