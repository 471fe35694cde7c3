import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.errors import InvalidInput, SealingError
from ztsim.identity import repository as identities
from ztsim.inventory import service
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.keys import load_sealer, rotate_key_file
from ztsim.sealing import Sealer, format_key

from support.factories import make_sims, stock_csv
from tests_clock import NOW


def test_first_run_creates_a_private_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "master.key"
    with pytest.raises(InvalidInput, match="no master key"):
        load_sealer(key_file, None, create=False)
    sealer = load_sealer(key_file, None, create=True)
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = load_sealer(key_file, None, create=False)
    assert again.open(sealer.seal(b"x", b"a"), b"a") == b"x"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_sealer(key_file, None, create=True)
    os.chmod(key_file, 0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        load_sealer(key_file, None, create=False)


def test_env_key_wins(tmp_path: Path) -> None:
    key = bytes(range(32))
    sealer = load_sealer(tmp_path / "none.key", format_key(key), create=False)
    assert Sealer(key).open(sealer.seal(b"x", b""), b"") == b"x"
    assert not (tmp_path / "none.key").exists()


def test_rotation_rewraps_everything(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    old = load_sealer(key_file, None, create=True)
    specs = make_sims(30)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        service.import_stock(
            conn,
            old,
            org,
            parse_stock_csv(stock_csv(specs)),
            filename="f",
            kind=SimKind.PHYSICAL,
            actor="t",
            now=NOW,
        )
    assert rotate_key_file(engine, key_file) == 30
    new = load_sealer(key_file, None, create=False)
    assert new.current_key_id != old.current_key_id
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.sims.c.iccid, schema.sims.c.k_sealed, schema.sims.c.opc_sealed)
        ).all()
    by_iccid = {s.iccid: s for s in specs}
    for iccid, k_sealed, opc_sealed in rows:
        assert new.open(k_sealed, iccid.encode()) == by_iccid[iccid].k
        assert new.open(opc_sealed, iccid.encode()) == by_iccid[iccid].opc
        with pytest.raises(SealingError):
            old.open(k_sealed, iccid.encode())
    assert not key_file.with_name("master.key.next").exists()
    # Nothing left under the old key: a second rotation re-wraps all again, from the new one.
    assert rotate_key_file(engine, key_file) == 30


def test_interrupted_rotation_is_finished_by_the_next(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    old = load_sealer(key_file, None, create=True)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        service.import_stock(
            conn,
            old,
            org,
            parse_stock_csv(stock_csv(make_sims(4))),
            filename="f",
            kind=SimKind.PHYSICAL,
            actor="t",
            now=NOW,
        )
    # A rotation that wrote its new key and died before re-sealing anything:
    pending = key_file.with_name("master.key.next")
    pending.write_text(format_key(bytes(range(5, 37))))
    pending.chmod(0o600)
    during = load_sealer(key_file, None, create=False)
    with engine.connect() as conn:
        sealed, iccid = conn.execute(
            select(schema.sims.c.k_sealed, schema.sims.c.iccid)
        ).first() or (b"", "")
    assert during.open(sealed, iccid.encode())  # old values still open meanwhile
    assert rotate_key_file(engine, key_file) == 4
    assert (
        load_sealer(key_file, None, create=False).current_key_id
        == Sealer(bytes(range(5, 37))).current_key_id
    )


def test_the_key_files_new_directory_is_private(tmp_path: Path) -> None:
    key_file = tmp_path / "fresh" / "master.key"
    load_sealer(key_file, None, create=True)
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    assert key_file.stat().st_mode & 0o777 == 0o600
