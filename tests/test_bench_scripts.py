"""The benchmarks still load against today's modules (their runs are too long for the suite):
each script's top level (its imports) runs in a fresh interpreter, `main` does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {p.name for p in SCRIPTS} >= {"dns.py", "radius.py", "aka.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_script_loads(script: Path) -> None:
    code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='loaded_by_the_suite')"
    result = subprocess.run(
        [sys.executable, "-c", code, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_policy_benchmark_runs_in_quick_mode() -> None:
    """The only benchmark without servers to start: quick enough to run whole here."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "policy.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["quick"] is True
    assert {"compile_10k_500_s", "compile_100k_5k_s", "class_change_p99_ms"} <= set(figures)
    assert all(figures[k] > 0 for k in ("compile_10k_500_s", "class_change_p99_ms"))


def test_the_policy_load_benchmark_runs_in_quick_mode() -> None:
    """5,000 SIMs through the RADIUS attach load and the DNS identity view, on SQLite."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "policy_load.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["sims"] == 5000
    assert figures["attach_load_us_per_sim"] > 0
    assert figures["dns_tags_load_us_per_entry"] > 0


def test_the_net_benchmark_runs_in_quick_mode() -> None:
    """10,000 identities in namespaces; skipped without root, nft, conntrack or iperf3."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "net.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0 and "bench/net.py: needs" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["quick"] is True
    assert figures["identities"] == 10_000
    assert figures["open_flows_not_stopped"] == 0
    assert 0 < figures["revoke_new_flow_p99_ms"] < 1000
    assert figures["load_100k_s"] > 0


def test_the_dns_benchmark_runs_in_quick_mode() -> None:
    """10,000 names; ztsim, dnsmasq and unbound one round each; skipped without the tools."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "dns.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0 and "bench/dns.py: needs" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["quick"] is True
    assert figures["domains"] == 10_000
    for key in ("ztsim_qps", "dnsmasq_qps", "unbound_qps", "ratio_vs_unbound"):
        assert figures[key] > 0, key
    assert figures["unbound_cpu_us_per_query"] > 0
