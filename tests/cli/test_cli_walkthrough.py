"""The README's walk-through is a script, and the script runs: a first-time operator who
follows "Using it" in order succeeds. The script runs the installed `ztsim` command."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "walkthrough.sh"


def _commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in lines if line.startswith("ztsim ")]


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return _commands(block.group(1).splitlines())


def script_commands() -> list[list[str]]:
    return _commands(SCRIPT.read_text(encoding="utf-8").splitlines())


def test_readme_and_script_list_the_same_commands() -> None:
    readme, script = readme_commands(), script_commands()
    assert len(script) > 20
    assert readme == script


def test_walkthrough_runs_on_a_fresh_data_dir(tmp_path: Path) -> None:
    ztsim = Path(sys.executable).with_name("ztsim")
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        ["bash", str(SCRIPT), str(ztsim), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout
    for expected in (
        "Imported 3 SIMs from vendor-batch.csv",
        "Imported 2 SIMs from esim-batch.csv",
        "Group Sales has 2 members.",
        "SIM 8944000000000000019 is active (ann@example.test).",
        "SIM 8944000000000000019 is suspended",
        "Token ",
        "(ops) is revoked.",
        "2 eSIM orders issued.",
        "Wrote 2 onboarding packs",
        "5G HE AV for imsi-001010000000001",
        "Registered gateway pgw-1 at 127.0.0.1/32",
        "1 gateway",
        "Added DNS list ads (2 names).",
        "DNS rule intranet is now at place 1.",
        "group:Sales",
        "privacy blocked-only",
        "Wrote policy.yaml.",
        "No changes: the file is the org's policy.",
        "ann@example.test, SIM 8944000000000000019: Blocked by rule 'block-ads'.",
        "Risk settings saved.",
        "API client bank-idp (sim-swap:check).",
        "client_secret: ztsimcs_",
    ):
        assert expected in output + done.stderr, expected
    assert re.search(r"approval required +yes", output)
    assert re.search(r"detector twin_session +suspend", output)
    # The eSIM ICCIDs are whole in the order table at 80 columns.
    assert "8944000000000000118" in output
    assert "8944000000000000126" in output
