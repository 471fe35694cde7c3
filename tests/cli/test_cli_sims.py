"""`ztsim sims assign|activate|suspend|resume|retire`: the lifecycle, by ICCID, IMSI or
MSISDN, and lists that never cut an identifier."""

from __future__ import annotations

import re
from collections.abc import Callable

from support.factories import make_sims

Cli = Callable[..., tuple[int, str]]


def test_lifecycle_by_iccid_imsi_and_msisdn(cli: Cli, org: list[str]) -> None:
    spec = make_sims(3, seed=41)[0]
    cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    code, output = cli("sims", "assign", spec.iccid, "--identity", "Ann Lee")
    assert code == 0, output
    assert f"SIM {spec.iccid} is assigned (ann@example.test)." in output
    assert cli("sims", "activate", spec.imsi)[1].count("is active") == 1
    code, output = cli("sims", "suspend", spec.msisdn or "", "--reason", "lost")
    assert code == 0
    assert "is suspended" in output
    code, output = cli("sims", "resume", spec.iccid)
    assert code == 0
    assert "is active" in output
    code, output = cli("sims", "retire", spec.iccid)
    assert code == 2  # --reason is required
    code, output = cli("sims", "retire", spec.iccid, "--reason", "broken")
    assert code == 0
    assert "is retired" in output
    code, output = cli("sims", "resume", spec.iccid)
    assert code == 1
    assert "cannot resume" in output


def test_list_keeps_identifiers_whole_and_shows_names(cli: Cli, org: list[str]) -> None:
    spec = make_sims(3, seed=41)[1]
    cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    cli("sims", "assign", spec.iccid, "--identity", "ann@example.test")
    for width in (80, 100, 120):
        code, output = cli("sims", "list", "--state", "ASSIGNED", columns=width)
        assert code == 0
        for value in (spec.iccid, spec.imsi, spec.msisdn or ""):
            assert re.search(rf"\b{value}\b", output), (width, output)
        assert "ann@" in output
        assert "1 SIM\n" in output
    code, output = cli("sims", "list", columns=80)
    assert "3 SIMs" in output


def test_unknown_sim_is_not_found(cli: Cli, org: list[str]) -> None:
    code, output = cli("sims", "activate", "8944000000000000000")
    assert code == 1
    assert "no SIM '8944000000000000000'" in output
