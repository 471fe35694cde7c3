"""What an operator sees when something is wrong at start, and when it is right: one line
on stderr and a non-zero exit (no traceback) for a port in use, a bad TOML key or syntax,
a malformed environment variable; one line per listener once a role serves; and a
`--help` that imports none of the platform."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.leaks import LEAKS
from support.radius_world import RADCLIENT, SECRET, radclient

Cli = Callable[..., tuple[int, str]]

# What `--help` must not import: the database layer, the web framework, NumPy, the DNS
# engine, the API's app (and with it every route).
HEAVY = ("sqlalchemy", "fastapi", "numpy", "uvicorn", "ztsim.dns.engine", "ztsim.api.app")
GROUPS: tuple[str, ...] = ("sims", "tokens", "keys", "aka", "esim", "serve", "identities")
GROUPS += ("groups", "fleets", "gateways", "pools", "dns")


def ztsim(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ztsim", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def installed(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """An initialised data directory; the environment that serves it on free ports with
    no metrics port."""
    code, output = cli("init", "--slug", "acme")
    assert code == 0, output
    LEAKS.allow_once("cli init --slug", output)
    return {
        "ZTSIM_DATA_DIR": str(tmp_path / "data"),
        "ZTSIM_RADIUS_AUTH_PORT": "0",
        "ZTSIM_RADIUS_ACCT_PORT": "0",
        "ZTSIM_RADIUS_METRICS_LISTEN": "",
        "ZTSIM_DNS_METRICS_LISTEN": "",
    }


@pytest.fixture
def held_udp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def held_tcp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_radius_auth_port_in_use(installed: dict[str, str], held_udp: int) -> None:
    done = ztsim("serve", "radius", env=installed | {"ZTSIM_RADIUS_AUTH_PORT": str(held_udp)})
    line = one_line_error(done, 1)
    assert line == f"error: RADIUS auth port 127.0.0.1:{held_udp}/udp is already in use"


def test_radius_acct_port_in_use(installed: dict[str, str], held_udp: int) -> None:
    done = ztsim("serve", "radius", env=installed | {"ZTSIM_RADIUS_ACCT_PORT": str(held_udp)})
    assert one_line_error(done, 1).endswith(
        f"RADIUS acct port 127.0.0.1:{held_udp}/udp is already in use"
    )


def test_dns_udp_port_in_use(installed: dict[str, str], held_udp: int) -> None:
    done = ztsim("serve", "dns", env=installed | {"ZTSIM_DNS_PORT": str(held_udp)})
    assert one_line_error(done, 1) == f"error: DNS port 127.0.0.1:{held_udp}/udp is already in use"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_dns_tcp_port_in_use(installed: dict[str, str], held_tcp: int, workers: str) -> None:
    env = installed | {"ZTSIM_DNS_PORT": str(held_tcp)}
    done = ztsim("serve", "dns", "--workers", workers, env=env)
    assert one_line_error(done, 1) == f"error: DNS port 127.0.0.1:{held_tcp}/tcp is already in use"


def test_api_port_in_use_for_up(installed: dict[str, str], held_tcp: int) -> None:
    done = ztsim("up", env=installed | {"ZTSIM_API_PORT": str(held_tcp)})
    assert one_line_error(done, 1) == f"error: API port 127.0.0.1:{held_tcp}/tcp is already in use"


def test_unknown_toml_key_names_key_file_and_the_closest_setting(tmp_path: Path) -> None:
    config = tmp_path / "ztsim.toml"
    config.write_text("api_port = 8081\nradius_auth_prot = 1812\n")
    done = ztsim("sims", "list", "--config", str(config), env={})
    line = one_line_error(done, 2)
    assert "'radius_auth_prot'" in line
    assert str(config) in line
    assert "did you mean 'radius_auth_port'?" in line


def test_prefixed_or_upper_case_toml_key_is_told_the_rule(tmp_path: Path) -> None:
    config = tmp_path / "ztsim.toml"
    config.write_text("ZTSIM_API_PORT = 8081\n")
    line = one_line_error(ztsim("sims", "list", "--config", str(config), env={}), 2)
    assert "did you mean 'api_port'?" in line
    assert "ZTSIM_" in line


def test_toml_table_is_told_settings_are_flat(tmp_path: Path) -> None:
    config = tmp_path / "ztsim.toml"
    config.write_text("[dns]\nport = 5300\n")
    line = one_line_error(ztsim("sims", "list", "--config", str(config), env={}), 2)
    assert "dns_port" in line


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "ztsim.toml"
    config.write_text('api_host = "127.0.0.1"\n\napi_port = \n')
    line = one_line_error(ztsim("sims", "list", "--config", str(config), env={}), 2)
    assert str(config) in line
    assert "line 3" in line


def test_value_of_the_wrong_type_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ztsim.toml"
    config.write_text('api_port = "eighty"\n')
    line = one_line_error(ztsim("sims", "list", "--config", str(config), env={}), 2)
    assert f"api_port in {config}" in line
    assert "integer" in line
    assert "eighty" not in line


def test_malformed_dns_upstreams_from_the_environment(installed: dict[str, str]) -> None:
    done = ztsim("serve", "dns", env=installed | {"ZTSIM_DNS_UPSTREAMS": "8.8.8.8"})
    line = one_line_error(done, 2)
    assert "ZTSIM_DNS_UPSTREAMS" in line
    assert "JSON list" in line
    assert "8.8.8.8" not in line  # named, not echoed: a value may be a URL with a token


def test_wrong_type_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"ZTSIM_DATA_DIR": str(tmp_path), "ZTSIM_RADIUS_AUTH_PORT": "radius"}
    line = one_line_error(ztsim("sims", "list", env=env), 2)
    assert "ZTSIM_RADIUS_AUTH_PORT" in line
    assert "integer" in line


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ztsim", *args],
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage:" in done.stdout
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M)
    assert "typer" in names  # the listing is what it seems
    return set(names)


@pytest.mark.parametrize("args", [("--help",), *((group, "--help") for group in GROUPS)])
def test_help_imports_none_of_the_platform(args: tuple[str, ...]) -> None:
    imported = _imported(*args)
    heavy = {name for name in imported if name.split(".")[0] in HEAVY or name in HEAVY}
    assert heavy == set()


def _wait_lines(proc: subprocess.Popen[str], wanted: re.Pattern[str], count: int) -> list[str]:
    assert proc.stdout is not None
    found: list[str] = []
    deadline = time.monotonic() + 60
    while len(found) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if wanted.search(line):
            found.append(line.strip())
    return found


@pytest.mark.skipif(RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)")
def test_serve_radius_prints_the_ports_it_bound(
    cli: Cli, installed: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    code, output = cli(
        "gateways", "create", "--name", "pgw", "--address", "127.0.0.1", "--apn", "corp.apn",
        "--secret-file", str(secret),
    )  # fmt: skip
    assert code == 0, output
    env = {**os.environ, **installed, "ZTSIM_RADIUS_METRICS_LISTEN": "127.0.0.1:0"}
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            lines = _wait_lines(proc, re.compile(r"^RADIUS (auth|acct|metrics): "), 3)
            ports = {}
            for line in lines:
                found = re.fullmatch(r"RADIUS (\w+): 127\.0\.0\.1:(\d+)/(udp|tcp)( \S+)?", line)
                assert found is not None, line
                ports[found.group(1)] = int(found.group(2))
            assert set(ports) == {"auth", "acct", "metrics"}, lines
            assert 0 not in ports.values()
            # The printed ports are the ones served: RFC 5997 Status-Server on each.
            status = "Message-Authenticator = 0x00\n"
            assert "Received Access-Accept" in radclient(ports["auth"], "status", status, tries=3)
            assert "Received Accounting-Response" in radclient(
                ports["acct"], "status", status, tries=3
            )
            assert lines[2].endswith(f"http://127.0.0.1:{ports['metrics']}/metrics")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense://ops:s3cret-in-url@db.example.test/ztsim", "not a database URL"),
        ("not a URL at all s3cret-in-url", "not a database URL"),
        # Nothing listens on port 1: the server refuses, the password is never tried.
        ("postgresql://ops:s3cret-in-url@127.0.0.1:1/ztsim", "cannot open ZTSIM_DATABASE_URL"),
    ],
)
def test_an_unusable_database_url_is_one_line_that_never_shows_it(
    tmp_path: Path, url: str, says: str
) -> None:
    env = {"ZTSIM_DATA_DIR": str(tmp_path / "data"), "ZTSIM_DATABASE_URL": url}
    for command in (("sims", "list"), ("serve", "radius")):
        done = ztsim(*command, env=env)
        line = one_line_error(done, 2)
        assert says in line
        assert "ZTSIM_DATABASE_URL" in line
        assert "s3cret-in-url" not in done.stdout + done.stderr
