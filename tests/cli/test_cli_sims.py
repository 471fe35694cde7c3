"""`ztsim sims assign|activate|suspend|resume|retire`: the lifecycle, by ICCID, IMSI or
MSISDN, and lists that never cut an identifier."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ztsim.identifiers import Iccid

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


def test_longest_identifiers_stay_whole_at_80_and_100_columns(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--org-name", "Acme", "--slug", "acme")[0] == 0
    # The longest each can be: ICCID 20 digits (E.118), IMSI 15 (E.212), MSISDN 15 (E.164).
    sims = [
        (
            Iccid.with_check_digit(f"8944000012345678{n:03d}").value,
            f"00101{n:010d}",
            f"4917{n:011d}",
        )
        for n in range(2)
    ]
    assert all(len(iccid) == 20 for iccid, _, _ in sims)
    batch = tmp_path / "long.csv"
    key = "00" * 16
    lines = ["ICCID,IMSI,Ki,OPc,MSISDN", *(f"{i},{s},{key},{key},{m}" for i, s, m in sims)]
    batch.write_text("\n".join(lines) + "\n")
    assert cli("sims", "import", str(batch))[0] == 0
    email = "maximilian.alexander.johannson-bergstrom@subsidiary.example-corp.test"
    assert cli("identities", "create", "--name", "Max", "--email", email)[0] == 0
    assert cli("sims", "assign", sims[0][0], "--identity", "Max")[0] == 0
    for width in (80, 100):
        for command in (("sims", "list"), ("identities", "list"), ("tokens", "list")):
            code, output = cli(*command, columns=width)
            assert code == 0, output
            assert "…" not in output
            assert all(len(line) <= width for line in output.splitlines()), (command, output)
        code, output = cli("sims", "list", columns=width)
        for value in (v for sim in sims for v in sim):
            assert re.search(rf"(^|\s){value}(\s|$)", output, re.M), (width, output)
        assert "(not shown at this width: identity)" in output  # the email needs 139
        assert "2 SIMs" in output
        code, output = cli("identities", "list", columns=width)
        assert re.search(rf"(^|\s){re.escape(email)}(\s|$)", output, re.M), (width, output)
        assert "1 identity\n" in output
    code, output = cli("sims", "list", columns=140)
    assert re.search(rf"{sims[0][0]}\s.*\s{re.escape(email)}", output), output


def test_a_reimport_lists_each_sim_once_and_imports_nothing(
    cli: Cli, org: list[str], tmp_path: Path
) -> None:
    code, output = cli("sims", "import", str(tmp_path / "batch.csv"), columns=200)
    assert code == 1
    rows = re.findall(r"^(\d+)\s+(\w+)\s+(.+?)\s*$", output, re.M)
    assert rows == [
        (str(line), "iccid", "ICCID, IMSI and MSISDN are already registered") for line in (2, 3, 4)
    ], output
    assert "batch.csv: nothing imported" in output
    code, output = cli("sims", "list", columns=200)
    assert sorted(re.findall(r"^(\d{19,20})\s", output, re.M)) == sorted(org), output


def test_a_missing_column_and_a_spaced_msisdn(cli: Cli, org: list[str], tmp_path: Path) -> None:
    spec = make_sims(1, seed=42)[0]
    batch = tmp_path / "vendor.csv"
    batch.write_text(
        f"Serial;IMSI;Ki;OPc\n{spec.iccid};{spec.imsi};{spec.k.hex()};{spec.opc.hex()}\n"
    )
    code, output = cli("sims", "import", str(batch), columns=400)
    assert code == 1
    expected = (
        'missing column ICCID: the header has "Serial", "IMSI", "Ki", "OPc"; ICCID is accepted '
        "as iccid, icc, iccidnumber, simiccid, iccidno (any case; spaces, '_', '-' and '.' "
        "ignored)"
    )
    assert expected in " ".join(output.split()), output  # the table may wrap it
    batch.write_text(
        "ICCID;IMSI;Ki;OPc;Mobile\n"
        f"{spec.iccid};{spec.imsi};{spec.k.hex()};{spec.opc.hex()};+49 170 555-0123\n"
    )
    code, output = cli("sims", "import", str(batch))
    assert code == 0, output
    code, output = cli("sims", "list", columns=200)
    assert re.search(rf"^{spec.iccid}\s+{spec.imsi}\s+491705550123\s", output, re.M), output
