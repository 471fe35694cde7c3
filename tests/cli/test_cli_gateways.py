"""`ztsim gateways` and `ztsim pools`: the secret from a file, never shown; address
claims checked by the registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.leaks import LEAKS

Cli = Callable[..., tuple[int, str]]


def test_gateway_and_pool(cli: Cli, org: list[str], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("correct-horse-battery-staple\n")
    LEAKS.add_secret(b"correct-horse-battery-staple")
    args = ("gateways", "create", "--name", "pgw-1", "--apn", "Internet")
    code, output = cli(*args, "--address", "127.0.0.1", "--secret-file", str(secret))
    assert code == 0, output
    assert "127.0.0.1/32" in output
    assert "internet" in output
    code, output = cli("gateways", "list")
    assert "pgw-1" in output
    assert "correct-horse" not in output
    assert "1 gateway\n" in output
    short = tmp_path / "short.txt"
    short.write_text("short")
    code, output = cli(
        *args[:3], "pgw-2", *args[4:], "--address", "127.0.0.2", "--secret-file", str(short)
    )
    assert code == 1
    assert "at least 16" in output
    assert "1 gateway\n" in cli("gateways", "list")[1]
    assert cli("pools", "create", "10.45.0.0/16")[0] == 0
    code, output = cli("pools", "create", "10.46.0.0/16")
    assert code == 1
    assert "already has an IP pool" in output
    assert "10.45.0.0/16" in cli("pools", "list")[1]
    code, output = cli("gateways", "delete", "pgw-1")
    assert code == 0
    assert "0 gateways" in cli("gateways", "list")[1]
    assert cli("gateways", "delete", "pgw-1")[0] == 1
