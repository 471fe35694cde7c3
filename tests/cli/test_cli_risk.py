"""`ztsim risk` and `ztsim swaps`, and `ztsim esim reissue` under the two-person rule: a
local command's person is the operating-system user, so the approver must be another."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.clock import utc_now
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.node import platform as node

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

TOKEN = re.compile(r"ztsim_[A-Za-z0-9_-]{43}")
REQUEST = re.compile(r"Swap request ([0-9a-f]{32})")


def run(data_dir: Path, *args: str, user: str = "ann") -> tuple[int, str]:
    # getpass reads LOGNAME first: the command runs as this operating-system user.
    env = {"ZTSIM_DATA_DIR": str(data_dir), "COLUMNS": "200", "LOGNAME": user}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    LEAKS.add_text(f"cli {' '.join(args[:2])}", result.output)
    return result.exit_code, result.output


def _org(data_dir: Path, tmp_path: Path) -> str:
    """An org with an eSIM order for Dee; returns the order's id."""
    code, output = run(data_dir, "init", "--org-name", "Acme", "--slug", "acme")
    assert code == 0, output
    LEAKS.add_secret(TOKEN.findall(output)[0])
    LEAKS.allow_once("cli init --org-name", output)
    batch = tmp_path / "esim.csv"
    batch.write_text(stock_csv(make_sims(3, seed=71)))
    code, output = run(data_dir, "sims", "import", str(batch), "--kind", "esim")
    assert code == 0, output
    platform = node.build(node.settings_from(None, data_dir=data_dir))
    with platform.engine.begin() as conn:
        org = identities.find_org(conn, "acme")
        identities.create_identity(
            conn,
            org.id,
            kind=IdentityKind.USER,
            name="Dee",
            email="dee@acme.test",
            external_id=None,
            now=utc_now(),
        )
    platform.engine.dispose()
    code, output = run(data_dir, "esim", "order", "--user", "Dee")
    assert code == 0, output
    order_id: str = re.findall(r"[0-9a-f]{32}", output)[-1]
    return order_id


def test_risk_show_and_set(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _org(data_dir, tmp_path)
    code, output = run(data_dir, "risk", "show")
    assert code == 0, output
    assert re.search(r"approval required\s+.*no", output)
    code, output = run(
        data_dir,
        "risk",
        "set",
        "--approval-required",
        "--cooling-off",
        "12h",
        "--detector",
        "twin_session=suspend",
    )
    assert code == 0, output
    assert "Risk settings saved." in output
    code, output = run(data_dir, "risk", "show")
    assert re.search(r"approval required\s+.*yes", output)
    assert re.search(r"cooling-off\s+.*12h", output)
    assert re.search(r"detector twin_session\s+.*suspend", output)
    assert re.search(r"detector sqn_anomaly\s+.*alert", output)
    for bad in (
        ["--detector", "twin_session"],
        ["--detector", "ghost=alert"],
        ["--cooling-off", "x"],
    ):
        code, output = run(data_dir, "risk", "set", *bad)
        assert code == 1, output
        assert "error:" in output
    code, output = run(data_dir, "risk", "set", "--no-approval-required")
    assert code == 0, output
    assert re.search(r"approval required\s+.*no", output)


def test_a_reissue_waits_for_another_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    order_id = _org(data_dir, tmp_path)
    assert run(data_dir, "risk", "set", "--approval-required")[0] == 0
    code, output = run(data_dir, "esim", "reissue", order_id, "--reason", "lost phone")
    assert code == 0, output
    assert "waits for a second admin's approval" in output
    request_id = REQUEST.findall(output)[0]
    code, output = run(data_dir, "swaps", "list", "--state", "pending")
    assert code == 0, output
    assert request_id in output
    assert "re-issue eSIM order" in output
    code, output = run(data_dir, "swaps", "approve", request_id)  # ann again
    assert code == 1, output
    assert "second admin" in output
    code, output = run(data_dir, "swaps", "approve", request_id, user="bob")
    assert code == 0, output
    assert "Approved:" in output
    assert "New eSIM order" in output
    code, output = run(data_dir, "swaps", "list", "--state", "approved")
    assert request_id in output
    code, output = run(data_dir, "swaps", "reject", request_id, user="bob")
    assert code == 1, output
    assert "is approved" in output


def test_a_withdrawn_request_and_a_reissue_without_approval(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    order_id = _org(data_dir, tmp_path)
    assert run(data_dir, "risk", "set", "--approval-required")[0] == 0
    code, output = run(data_dir, "esim", "reissue", order_id, "--reason", "new phone")
    request_id = REQUEST.findall(output)[0]
    code, output = run(data_dir, "swaps", "reject", request_id, "--reason", "found it")
    assert code == 0, output
    assert f"Rejected swap request {request_id}." in output
    code, output = run(data_dir, "swaps", "list", "--state", "rejected")
    assert request_id in output
    assert run(data_dir, "risk", "set", "--no-approval-required")[0] == 0
    code, output = run(data_dir, "esim", "reissue", order_id, "--reason", "new phone")
    assert code == 0, output
    assert "Re-issued: new order" in output
    code, output = run(data_dir, "swaps", "approve", "0" * 32, user="bob")
    assert code == 1, output
    assert "not found" in output
