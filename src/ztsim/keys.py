"""The key-encryption key (KEK): where it lives, and its rotation.

The KEK comes from `ZTSIM_MASTER_KEY` (with `ZTSIM_MASTER_KEY_PREVIOUS` opening what
the key before it sealed) or from a 0600 key file in the data directory, created on
first run. Rotation of a key file is crash-safe and needs no restart of running nodes:

1. the new key is written to `master.key.next` before anything is re-sealed; nodes
   that meet a value sealed under it read that file and open it, but keep sealing
   under the key in `master.key`, which a crash cannot lose;
2. every sealed value is re-wrapped under the new key and committed;
3. the old key is saved as `master.key.previous` and the new one renamed over
   `master.key`: nodes seal under it within `RELOAD_SECONDS`;
4. after longer than that, a second sweep re-wraps what nodes sealed meanwhile.
   `master.key.previous` stays until the next rotation, for values sealed in
   transactions that committed later still (a long stock import).

A rotation that died half-way is finished by running it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select, update

from ztsim.db.schema import SEALED_COLUMNS
from ztsim.errors import InvalidInput
from ztsim.sealing import KEY_BYTES, RELOAD_SECONDS, KeyRing, Sealer, format_key, parse_key

# Past the nodes' re-check of their sealing key (RELOAD_SECONDS), with a margin.
SETTLE_SECONDS = RELOAD_SECONDS + 1.0


def _write_private(path: Path, text: str) -> None:
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)  # the data directory: its owner's only
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InvalidInput(f"{path} must be readable by its owner only (chmod 600)")
    return parse_key(path.read_text())


def _next_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".next")


def _previous_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".previous")


def _read_optional(path: Path) -> tuple[bytes, ...]:
    try:
        return (read_key_file(path),)
    except FileNotFoundError:
        return ()  # absent, or renamed away by a rotation between two reads


def read_key_ring(key_file: Path) -> KeyRing:
    """Seal under the key file's key; open with it, a rotation's next key and the previous."""
    # The next key first: read after the key file, a rename in between would lose it.
    pending = _read_optional(_next_path(key_file))
    current = read_key_file(key_file)
    return KeyRing(current, pending + _read_optional(_previous_path(key_file)))


def load_sealer(
    key_file: Path,
    env_key: str | None,
    *,
    create: bool,
    env_previous: str | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> Sealer:
    """The sealer for this installation: the env keys if given, else the key file (followed)."""
    if env_key:
        return Sealer(parse_key(env_key), [parse_key(env_previous)] if env_previous else [])
    if env_previous:
        raise InvalidInput("ZTSIM_MASTER_KEY_PREVIOUS is set without ZTSIM_MASTER_KEY")
    if not key_file.exists():
        if not create:
            raise InvalidInput(
                f"no master key: set ZTSIM_MASTER_KEY or run `ztsim init` ({key_file})"
            )
        _write_private(key_file, format_key(random(KEY_BYTES)))
    ring = read_key_ring(key_file)
    return Sealer(ring.current, ring.others, random, source=lambda: read_key_ring(key_file))


def rewrap_all(engine: Engine, sealer: Sealer) -> int:
    """Re-seal every sealed value not yet under the sealer's current key; returns the count."""
    changed = 0
    for table, aad_column, columns in SEALED_COLUMNS:
        with engine.begin() as conn:
            rows = conn.execute(
                select(table.c.id, table.c[aad_column], *(table.c[c] for c in columns))
            ).all()
            for row in rows:
                aad = str(row._mapping[aad_column]).encode()
                values = {
                    c: sealer.reseal(row._mapping[c], aad)
                    for c in columns
                    if row._mapping[c] is not None
                    and not sealer.sealed_with_current(row._mapping[c])
                }
                if values:
                    conn.execute(update(table).where(table.c.id == row.id).values(values))
                    changed += 1
    return changed


def rotate_key_file(
    engine: Engine,
    key_file: Path,
    random: Callable[[int], bytes] = os.urandom,
    *,
    settle: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Rotate the KEK kept in `key_file`; returns how many rows were re-sealed."""
    pending = _next_path(key_file)
    if not pending.exists():
        _write_private(pending, format_key(random(KEY_BYTES)))
    ring = read_key_ring(key_file)
    new = read_key_file(pending)
    sealer = Sealer(new, [ring.current, *ring.others])
    changed = rewrap_all(engine, sealer)
    _write_private(_previous_path(key_file), format_key(ring.current))
    os.replace(pending, key_file)
    sleep(settle)
    return changed + rewrap_all(engine, sealer)
