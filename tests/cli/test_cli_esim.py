"""`ztsim esim order` and `ztsim esim pack`, as an admin runs them on the data directory."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.clock import utc_now
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.node import platform as node

from support.esim_decode import needs_zbarimg, zbar_decode_bytes
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

TOKEN = re.compile(r"ztsim_[A-Za-z0-9_-]{43}")


def run(data_dir: Path, *args: str) -> tuple[int, str]:
    env = {"ZTSIM_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    LEAKS.add_text(f"cli {' '.join(args[:2])}", result.output)
    return result.exit_code, result.output


def _staff(data_dir: Path, tmp_path: Path, people: int) -> list[str]:
    code, output = run(data_dir, "init", "--org-name", "Acme", "--slug", "acme")
    assert code == 0, output
    token = TOKEN.findall(output)[0]
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli init --org-name", output)
    batch = tmp_path / "esim.csv"
    batch.write_text(stock_csv(make_sims(people + 1, seed=61)))
    code, output = run(data_dir, "sims", "import", str(batch), "--kind", "esim")
    assert code == 0, output
    platform = node.build(node.settings_from(None, data_dir=data_dir))
    now = utc_now()
    with platform.engine.begin() as conn:
        org = identities.find_org(conn, "acme")
        group = identities.create_collection(conn, org.id, "staff", now, fleet=False)
        ids = []
        for n in range(people):
            ident = identities.create_identity(
                conn,
                org.id,
                kind=IdentityKind.USER,
                name=f"Worker {n}",
                email=f"w{n}@acme.test",
                external_id=None,
                now=now,
            )
            identities.add_member(conn, org.id, group.id, ident.id, fleet=False)
            ids.append(ident.id)
    platform.engine.dispose()
    return ids


@needs_zbarimg
def test_order_a_group_then_print_its_packs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = _staff(data_dir, tmp_path, 3)
    code, output = run(data_dir, "esim", "order", "--user", "w0@acme.test")
    assert code == 0, output
    code, output = run(data_dir, "esim", "order", "--group", "staff", "--confirmation-code")
    assert code == 0, output
    assert "1 already had an open order" in output
    # The confirmation codes are printed once; register them so the leak scan checks them.
    codes = re.findall(r"(?<=  )([0-9A-Z]{8})(?=  )", output)
    assert len(codes) == 2
    for c in codes:
        LEAKS.add_secret(c)
    LEAKS.allow_once("cli esim order", output)
    pack = tmp_path / "pack.zip"
    code, output = run(data_dir, "esim", "pack", "--group", "staff", "-o", str(pack))
    assert code == 0, output
    assert "Wrote 3 onboarding packs" in output
    assert pack.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(pack) as zf:
        names = zf.namelist()
        assert len([n for n in names if n.endswith("/pack.pdf")]) == 3
        decoded = [zbar_decode_bytes(zf.read(n)) for n in names if n.endswith("/qr.png")]
        htmls = [zf.read(n).decode() for n in names if n.endswith("/pack.html")]
    assert len(decoded) == 3
    for found, html in zip(decoded, htmls, strict=True):
        assert len(found) == 1
        assert found[0].startswith("LPA:1$smdp.example.test$")
        LEAKS.add_secret(found[0].split("$")[2])
        assert found[0] in html
    assert len({d[0] for d in decoded}) == 3
    assert len(ids) == 3


def test_errors_are_reported(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _staff(data_dir, tmp_path, 1)
    code, output = run(data_dir, "esim", "order")
    assert code == 1
    assert "--user or --group" in output
    code, output = run(data_dir, "esim", "order", "--user", "nobody@acme.test")
    assert code == 1
    assert "no identity" in output
    code, output = run(data_dir, "esim", "pack", "--group", "nope", "-o", str(tmp_path / "x.zip"))
    assert code == 1
    assert "no group named" in output
    code, output = run(data_dir, "esim", "pack", "--group", "staff", "-o", str(tmp_path / "x.zip"))
    assert code == 0
    assert "Wrote 0 onboarding packs" in output
    assert "1 without a usable order" in output


PLACEHOLDER_WARNING = (
    "warning: the SM-DP+ address smdp.example.test is a placeholder (a reserved name that "
    "never resolves): phones cannot download eSIM profiles ordered with it. Set "
    "ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in the config file) to your SM-DP+ address."
)
REISSUE_WARNING = (
    "warning: these packs name the placeholder SM-DP+ address smdp.example.test: phones "
    "cannot download their profiles. Set ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in "
    "the config file) to your SM-DP+ address and re-issue these orders."
)


def _run_with(data_dir: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    full = {"ZTSIM_DATA_DIR": str(data_dir), "COLUMNS": "80", **env}
    result = CliRunner().invoke(app, list(args), env=full, catch_exceptions=False)
    LEAKS.add_text(f"cli {' '.join(args[:2])}", result.output)
    return result.exit_code, result.output


def _pack_html(data_dir: Path, tmp_path: Path, env: dict[str, str]) -> tuple[str, str]:
    pack = tmp_path / "pack.zip"
    code, output = _run_with(
        data_dir, env, "esim", "pack", "--user", "w0@acme.test", "-o", str(pack)
    )
    assert code == 0, output
    with zipfile.ZipFile(pack) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith("/pack.html")]
        return output, zf.read(name).decode()


def test_a_placeholder_smdp_address_is_one_warning_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _staff(data_dir, tmp_path, 1)
    code, output = _run_with(data_dir, {}, "esim", "order", "--user", "w0@acme.test")
    assert code == 0, output
    # Whole on one line at 80 columns (scripts and people read it at once).
    assert output.splitlines().count(PLACEHOLDER_WARNING) == 1, output
    assert "1 eSIM order issued." in output
    LEAKS.allow_once("cli esim order", output)
    output, _ = _pack_html(data_dir, tmp_path, {})
    assert output.splitlines().count(REISSUE_WARNING) == 1, output
    assert "Wrote 1 onboarding packs" in output


def test_a_real_smdp_address_gives_no_warning(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _staff(data_dir, tmp_path, 1)
    real = {"ZTSIM_ESIM_SMDP_ADDRESS": "smdp.acme.com"}
    code, output = _run_with(data_dir, real, "esim", "order", "--user", "w0@acme.test")
    assert code == 0, output
    assert "warning" not in output
    LEAKS.allow_once("cli esim order", output)
    output, html = _pack_html(data_dir, tmp_path, real)
    assert "warning" not in output
    assert "smdp.acme.com" in html


def test_the_pack_says_what_the_dns_filter_records_in_the_orgs_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _staff(data_dir, tmp_path, 1)
    real = {"ZTSIM_ESIM_SMDP_ADDRESS": "smdp.acme.com"}
    code, output = _run_with(data_dir, real, "esim", "order", "--user", "w0@acme.test")
    assert code == 0, output
    LEAKS.allow_once("cli esim order", output)
    # The default mode: blocked look-ups only, under the employee's name.
    _, html = _pack_html(data_dir, tmp_path, real)
    assert "It records only the look-ups it blocks" in html
    assert "These records name you and your phone." in html
    settings = ("dns", "settings", "set", "--privacy", "all", "--pseudonymise")
    assert _run_with(data_dir, real, *settings)[0] == 0
    _, html = _pack_html(data_dir, tmp_path, real)
    assert "It records every look-up" in html
    assert "These records carry a code instead of your name and your phone" in html
    assert _run_with(data_dir, real, "dns", "settings", "set", "--privacy", "none")[0] == 0
    _, html = _pack_html(data_dir, tmp_path, real)
    assert "It keeps no record of these look-ups, not even of the ones it blocks." in html
    assert "These records" not in html
