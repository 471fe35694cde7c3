"""`ztsim keys rotate` in another process while a platform serves: no restart, no 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from ztsim.db.schema import SEALED_COLUMNS
from ztsim.errors import InvalidInput
from ztsim.identity.roles import Role
from ztsim.node import platform as node
from ztsim.radius.store.snapshot import load_gateways
from ztsim.sealing import Sealer, format_key, parse_key

from support.api import ApiHarness, harness
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS
from support.world import World, populate

AKA_BODY = {"servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org", "ausfInstanceId": "ausf-1"}
OLD, NEW = bytes(range(32)), bytes(range(100, 132))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZTSIM_")}
    return {**env, "COLUMNS": "200", **extra}


def _ztsim(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "keys", "rotate", "--data-dir", str(data_dir), *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    LEAKS.add_text("cli keys rotate", done.stdout + done.stderr)
    return done


def _platform(data_dir: Path, **keys: str) -> node.Platform:
    return node.build(node.settings_from(None, data_dir=data_dir, **keys), create_key=True)


def _vector(h: ApiHarness, world: World) -> int:
    url = f"/nudm-ueau/v1/{world.ids['supiOrSuci']}/security-information/generate-auth-data"
    r = h.client.post(url, json=AKA_BODY, headers=world.org.auth(Role.NETWORK))
    return r.status_code


@pytest.fixture
def no_ztsim_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("ZTSIM_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_ztsim_env")
def test_a_running_platform_follows_a_key_file_rotation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform = _platform(data)
    old = Sealer(parse_key((data / "master.key").read_text()))
    with harness(platform.engine, platform.sealer) as h:
        world = populate(h, "alpha", 1)
        assert _vector(h, world) == 200

        done = _ztsim(data)
        assert done.returncode == 0, done.stderr
        assert "Re-sealed" in done.stdout
        new = Sealer(parse_key((data / "master.key").read_text()))
        assert new.current_key_id != old.current_key_id

        # The same running platform: K and OPc, and the gateways' secrets, open.
        assert _vector(h, world) == 200
        with platform.engine.connect() as conn:
            assert [g.name for g in load_gateways(conn, platform.sealer)] == ["pgw"]
        # What it seals from now on is under the new key (rotate outlasted the re-check).
        r = h.client.post(
            "/api/v1/stock-imports?filename=late.csv",
            content=stock_csv(make_sims(1, seed=1, start=200)),
            headers={**world.org.auth(), "content-type": "text/csv"},
        )
        assert r.status_code == 201, r.text
    restarted = _platform(data)
    for sealed, aad in _sealed_values(restarted):
        assert new.open(sealed, aad)
        assert new.sealed_with_current(sealed)


def _sealed_values(platform: node.Platform) -> list[tuple[bytes, bytes]]:
    values = []
    with platform.engine.connect() as conn:
        for table, aad_column, columns in SEALED_COLUMNS:
            for row in conn.execute(select(table)).mappings():
                aad = str(row[aad_column]).encode()
                values += [(row[c], aad) for c in columns if row[c] is not None]
    assert values
    return values


@pytest.mark.usefixtures("no_ztsim_env")
def test_env_key_rotation_with_the_previous_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old_key, new_key = format_key(OLD), format_key(NEW)
    LEAKS.add_secret(old_key)
    LEAKS.add_secret(new_key)
    first = _platform(data, master_key=old_key)
    with harness(first.engine, first.sealer) as h:
        world = populate(h, "alpha", 1)
        assert _vector(h, world) == 200

    refused = _ztsim(data, ZTSIM_MASTER_KEY=old_key)
    assert refused.returncode == 1
    assert "nothing to rotate" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # Step 1: every node restarts holding both keys; it opens what the old key sealed.
    both = _platform(data, master_key=new_key, master_key_previous=old_key)
    with harness(both.engine, both.sealer) as h:
        assert _vector(h, world) == 200
        # Step 2: the command, with the same two variables, re-seals under the new key.
        done = _ztsim(data, ZTSIM_MASTER_KEY=new_key, ZTSIM_MASTER_KEY_PREVIOUS=old_key)
        assert done.returncode == 0, done.stderr
        assert _vector(h, world) == 200
    # Step 3: the previous key can go.
    only_new = _platform(data, master_key=new_key)
    with harness(only_new.engine, only_new.sealer) as h:
        assert _vector(h, world) == 200
    assert all(Sealer(NEW).sealed_with_current(v) for v, _ in _sealed_values(only_new))


@pytest.mark.usefixtures("no_ztsim_env")
def test_a_new_key_file_needs_the_nodes_to_hold_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old_key = format_key(OLD)
    LEAKS.add_secret(old_key)
    LEAKS.add_secret(format_key(NEW))
    platform = _platform(data, master_key=old_key)
    with harness(platform.engine, platform.sealer) as h:
        populate(h, "alpha", 1)
    new_file = tmp_path / "new.key"
    new_file.write_text(format_key(NEW))
    new_file.chmod(0o600)
    refused = _ztsim(data, "--new-key-file", str(new_file), ZTSIM_MASTER_KEY=old_key)
    assert refused.returncode == 1
    assert "refusing" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert all(Sealer(OLD).sealed_with_current(v) for v, _ in _sealed_values(platform))

    done = _ztsim(
        data, "--new-key-file", str(new_file), "--nodes-hold-new-key", ZTSIM_MASTER_KEY=old_key
    )
    assert done.returncode == 0, done.stderr
    assert all(Sealer(NEW).sealed_with_current(v) for v, _ in _sealed_values(platform))


def test_the_previous_key_alone_is_refused(tmp_path: Path, no_ztsim_env: None) -> None:
    with pytest.raises(InvalidInput, match="without ZTSIM_MASTER_KEY"):
        _platform(tmp_path / "data", master_key_previous=format_key(OLD))
