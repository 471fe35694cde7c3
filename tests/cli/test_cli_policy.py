"""`ztsim policy`: export, diff and apply a policy file (a bad file: one line naming the
file's line, exit code 2, nothing changed), explain, and the file's JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ztsim.policy.file_schema import schema_text

Cli = Callable[..., tuple[int, str]]

POLICY = """\
version: 1
checks:
  - {name: managed, expression: device.managed}
rules:
  network:
    - name: fin
      action: allow
      cidrs: [10.1.0.0/16]
      posture: [managed]
  attach:
    - {name: no-guest, action: deny, apns: [guest]}
"""


def test_schema_is_printed(cli: Cli) -> None:
    code, output = cli("policy", "schema")
    assert code == 0
    assert output == schema_text()
    assert json.loads(output)["title"] == "ztsim policy"


def test_apply_shows_the_diff_and_export_reads_it_back(
    cli: Cli, org: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    code, output = cli("policy", "diff", str(path), columns=200)
    assert code == 0, output
    assert "+ check managed added" in output
    assert "+ rule no-guest (attach) added" in output
    # The stock SIMs are subjects too: the attach rule applies to each of them.
    assert f"SIM {org[0]}: attach" in output
    code, output = cli("policy", "apply", str(path), "--yes", columns=200)
    assert code == 0, output
    assert "Applied revision" in output
    assert cli("policy", "diff", str(path)) == (0, "No changes: the file is the org's policy.\n")
    exported = tmp_path / "exported.yaml"
    assert cli("policy", "export", "-o", str(exported))[0] == 0
    code, output = cli("policy", "apply", str(exported), "--yes")
    assert (code, output) == (0, "No changes: the file is the org's policy.\n")
    code, output = cli("policy", "export")
    assert output == exported.read_text()

    code, output = cli(
        "policy", "explain", org[0], "--plane", "attach", "--target", "guest", columns=200
    )
    assert code == 0, output
    assert "Denied by rule 'no-guest'." in output
    code, output = cli(
        "policy", "explain", org[0], "--plane", "attach", "--target", "corp", "--json"
    )
    assert json.loads(output)[0]["reasons"] == ["default:allow"]
    code, output = cli("policy", "explain", "nobody", "--plane", "attach", "--target", "corp")
    # Neither an identity id, an ICCID nor an MSISDN, nor an email or name: named as such.
    assert (code, output) == (1, "error: no identity 'nobody' in this org\n")


def test_a_bad_file_is_one_line_with_its_line_and_changes_nothing(
    cli: Cli, org: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.replace("posture: [managed]", 'posture: [managed]\n      ports: ["22"]'))
    code, output = cli("policy", "apply", str(path), "--yes", columns=40)
    assert code == 2
    assert output == f"error: {path}:10: rule fin: ports: only with protocol tcp or udp\n"
    listed = tmp_path / "lists.yaml"
    listed.write_text("version: 1\nrules:\n  dns:\n    - {name: x, action: block, lists: [nope]}\n")
    code, output = cli("policy", "diff", str(listed), columns=40)
    assert code == 2
    assert output == f"error: {listed}:4: rule x: no such DNS lists: ['nope']\n"
    code, output = cli("policy", "export")
    assert "rules:\n  # dns" in output
    assert "fin" not in output
