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
from ztsim.keys import SETTLE_SECONDS, load_sealer, rotate_key_file
from ztsim.sealing import RELOAD_SECONDS, Sealer, format_key, parse_key

from support.factories import SimSpec, make_sims, stock_csv
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


def _import(engine: Engine, sealer: Sealer, specs: list[SimSpec], org: str | None = None) -> str:
    with engine.begin() as conn:
        org = org or identities.create_org(conn, "Acme", "acme", NOW).id
        service.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv(specs)),
            filename="f",
            kind=SimKind.PHYSICAL,
            actor="t",
            now=NOW,
        )
    return org


def _sealed_k(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        rows = conn.execute(select(schema.sims.c.iccid, schema.sims.c.k_sealed)).all()
    return {iccid: k_sealed for iccid, k_sealed in rows}


def _key(path: Path) -> bytes:
    return parse_key(path.read_text())


def test_rotation_rewraps_everything(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    node = load_sealer(key_file, None, create=True)
    old = Sealer(_key(key_file))
    specs = make_sims(30)
    _import(engine, node, specs)
    assert rotate_key_file(engine, key_file, settle=0) == 30
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
        # The node that loaded the old key reads the key file again and opens it.
        assert node.open(k_sealed, iccid.encode()) == by_iccid[iccid].k
    assert not key_file.with_name("master.key.next").exists()
    # Nothing left under the old key: a second rotation re-wraps all again, from the new one.
    assert rotate_key_file(engine, key_file, settle=0) == 30


def test_the_retired_key_is_kept_until_the_next_rotation(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_sealer(key_file, None, create=True)
    first = _key(key_file)
    org = _import(engine, Sealer(first), make_sims(2))
    rotate_key_file(engine, key_file, settle=0)
    second = _key(key_file)
    assert _key(key_file.with_name("master.key.previous")) == first
    # A stock import that sealed under the old key and committed after the final sweep:
    _import(engine, Sealer(first), make_sims(1, start=50), org)
    restarted = load_sealer(key_file, None, create=False)
    for iccid, sealed in _sealed_k(engine).items():
        assert restarted.open(sealed, iccid.encode())
    assert restarted.current_key_id == Sealer(second).current_key_id
    # The next rotation re-wraps it, then retires the second key in turn.
    assert rotate_key_file(engine, key_file, settle=0) == 3
    assert _key(key_file.with_name("master.key.previous")) == second
    third = Sealer(_key(key_file))
    assert all(third.sealed_with_current(v) for v in _sealed_k(engine).values())


def test_the_final_sweep_rewraps_what_lagging_nodes_sealed(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_sealer(key_file, None, create=True)
    lagging = Sealer(_key(key_file))  # a node that has not re-checked the key file yet
    org = _import(engine, lagging, make_sims(3))
    waits: list[float] = []

    def settle(seconds: float) -> None:
        waits.append(seconds)
        _import(engine, lagging, make_sims(2, start=50), org)

    assert rotate_key_file(engine, key_file, settle=SETTLE_SECONDS, sleep=settle) == 5
    assert waits == [SETTLE_SECONDS]
    assert SETTLE_SECONDS > RELOAD_SECONDS
    new = Sealer(_key(key_file))
    assert all(new.sealed_with_current(v) for v in _sealed_k(engine).values())


def test_mid_rotation_a_node_opens_the_next_key_and_seals_under_the_key_file(
    engine: Engine, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    node = load_sealer(key_file, None, create=True)
    current = _key(key_file)
    pending = key_file.with_name("master.key.next")
    pending.write_text(format_key(bytes(range(5, 37))))
    pending.chmod(0o600)
    resealed = Sealer(bytes(range(5, 37))).seal(b"k" * 16, b"iccid")
    assert node.open(resealed, b"iccid") == b"k" * 16
    # The next key is not the sealing key until it is renamed over the key file.
    assert node.current_key_id == Sealer(current).current_key_id
    restarted = load_sealer(key_file, None, create=False)
    assert restarted.open(resealed, b"iccid") == b"k" * 16
    assert Sealer(current).open(restarted.seal(b"x", b""), b"") == b"x"


def test_env_previous_key_opens_and_never_seals(tmp_path: Path) -> None:
    old, new = bytes(range(32)), bytes(range(1, 33))
    sealer = load_sealer(
        tmp_path / "none.key", format_key(new), create=False, env_previous=old.hex()
    )
    assert sealer.open(Sealer(old).seal(b"x", b""), b"") == b"x"
    assert Sealer(new).open(sealer.seal(b"y", b""), b"") == b"y"
    with pytest.raises(InvalidInput, match="without ZTSIM_MASTER_KEY"):
        load_sealer(tmp_path / "none.key", None, create=True, env_previous=old.hex())
    assert not (tmp_path / "none.key").exists()


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
    assert rotate_key_file(engine, key_file, settle=0) == 4
    assert (
        load_sealer(key_file, None, create=False).current_key_id
        == Sealer(bytes(range(5, 37))).current_key_id
    )


def test_the_key_files_new_directory_is_private(tmp_path: Path) -> None:
    key_file = tmp_path / "fresh" / "master.key"
    load_sealer(key_file, None, create=True)
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    assert key_file.stat().st_mode & 0o777 == 0o600
