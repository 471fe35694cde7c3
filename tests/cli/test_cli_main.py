"""The command line, as an admin runs it: in-process for the admin commands, and
`ztsim up` as a real process serving on a real socket."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from ztsim.cli.main import app

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

TOKEN = re.compile(r"ztsim_[A-Za-z0-9_-]{43}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data_dir: Path, *args: str) -> tuple[int, str]:
    env = {"ZTSIM_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    LEAKS.add_text(f"cli {' '.join(args[:2])}", result.output)
    return result.exit_code, result.output


def _init(data_dir: Path) -> str:
    code, output = run(data_dir, "init", "--org-name", "Acme", "--slug", "acme")
    assert code == 0, output
    tokens: list[str] = TOKEN.findall(output)
    assert len(tokens) == 1
    LEAKS.add_secret(tokens[0])
    LEAKS.allow_once("cli init --org-name", output)
    return tokens[0]


def test_init_import_list_suspend(data_dir: Path, tmp_path: Path) -> None:
    _init(data_dir)
    assert (data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    specs = make_sims(12, seed=31)
    batch = tmp_path / "batch.csv"
    batch.write_text(stock_csv(specs, delimiter=";"))
    code, output = run(data_dir, "sims", "import", str(batch))
    assert code == 0, output
    assert "Imported 12 SIMs" in output
    code, output = run(data_dir, "sims", "list", "--limit", "5")
    assert code == 0
    assert specs[0].iccid in output
    assert "more than 5" in output
    code, output = run(data_dir, "sims", "suspend", specs[0].iccid, "--reason", "lost")
    assert code == 1
    assert "cannot suspend a SIM that is stock" in output
    code, output = run(data_dir, "sims", "list", "--org", "no-such-org")
    assert code == 1
    assert "error" in output


def test_bad_file_prints_every_bad_row_and_imports_nothing(data_dir: Path, tmp_path: Path) -> None:
    _init(data_dir)
    specs = make_sims(3, seed=32)
    lines = stock_csv(specs).splitlines()
    lines[1] = lines[1].replace(specs[0].imsi, "abc")
    lines[3] = lines[3].replace(specs[2].k.hex(), "00")
    batch = tmp_path / "bad.csv"
    batch.write_text("\n".join(lines))
    code, output = run(data_dir, "sims", "import", str(batch))
    assert code == 1
    assert "nothing imported" in output
    assert re.search(r"^2\s+imsi\s", output, re.M)
    assert re.search(r"^4\s+k\s", output, re.M)
    code, output = run(data_dir, "sims", "list")
    assert specs[1].iccid not in output


def test_tokens_and_key_rotation(data_dir: Path, tmp_path: Path) -> None:
    _init(data_dir)
    code, output = run(data_dir, "tokens", "create", "--role", "auditor", "--name", "audit")
    assert code == 0
    assert len(TOKEN.findall(output)) == 1
    LEAKS.add_secret(TOKEN.findall(output)[0])
    LEAKS.allow_once("cli tokens create", output)
    batch = tmp_path / "batch.csv"
    batch.write_text(stock_csv(make_sims(4, seed=33)))
    assert run(data_dir, "sims", "import", str(batch))[0] == 0
    before = (data_dir / "master.key").read_text()
    code, output = run(data_dir, "keys", "rotate")
    assert (code, "Re-sealed 4 rows" in output) == (0, True)
    assert (data_dir / "master.key").read_text() != before


def test_commands_before_init_fail_clearly(data_dir: Path) -> None:
    code, output = run(data_dir, "sims", "list")
    assert code == 2
    assert "ztsim init" in output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_the_api_on_a_fresh_data_dir(data_dir: Path) -> None:
    port = _free_port()
    env = {**os.environ, "ZTSIM_DATA_DIR": str(data_dir), "ZTSIM_API_PORT": str(port)}
    # The AAA server and the DNS gateway start too: free ports, never 1812/1813 or a 5353
    # another program on the machine may hold (a port taken ends the start).
    env |= {"ZTSIM_RADIUS_AUTH_PORT": "0", "ZTSIM_RADIUS_ACCT_PORT": "0"}
    env |= {"ZTSIM_DNS_PORT": str(_free_port())}
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        _check_up(proc, port)


def _check_up(proc: subprocess.Popen[str], port: int) -> None:
    try:
        assert proc.stdout is not None
        token = None
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = TOKEN.search(line)
            token = found.group(0) if found else None
        assert token is not None, "ztsim up printed no admin token"
        LEAKS.add_secret(token)
        while time.monotonic() < deadline:
            try:
                r = httpx2.get(
                    f"http://127.0.0.1:{port}/api/v1/me",
                    headers={"Authorization": f"Bearer {token}"},
                )
                break
            except httpx2.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200
        assert r.json()["role"] == "admin"
        assert (
            httpx2.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "ztsim"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_aka_vector_and_home_network_keys(data_dir: Path, tmp_path: Path) -> None:
    _init(data_dir)
    spec = make_sims(1, seed=34)[0]
    batch = tmp_path / "one.csv"
    batch.write_text(stock_csv([spec]))
    assert run(data_dir, "sims", "import", str(batch))[0] == 0
    code, output = run(data_dir, "aka", "vector", spec.iccid)
    assert code == 1
    assert "refused" in output
    code, output = run(data_dir, "aka", "hn-key", "create", "--id", "7", "--profile", "B")
    assert code == 0
    public = re.search(r"\b(0[23][0-9a-f]{64})\b", output)
    assert public is not None
    code, output = run(data_dir, "aka", "hn-key", "list")
    assert public.group(1) in output.replace("\n", "").replace("│", "").replace(" ", "")
    assert run(data_dir, "aka", "hn-key", "retire", "7")[0] == 0
    assert run(data_dir, "aka", "hn-key", "retire", "8")[0] == 1
