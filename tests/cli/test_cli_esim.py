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
