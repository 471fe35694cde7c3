"""The key-encryption key (KEK): where it lives, and its rotation.

The KEK comes from `ZTSIM_MASTER_KEY` or from a 0600 key file in the data
directory, created on first run. Rotation is crash-safe: the new key is written
to `master.key.next` before anything is re-sealed; both keys are loaded while the
file exists; the new key replaces the old one only after every sealed value has
been re-wrapped and committed. A rotation that died half-way is finished by
running it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select, update

from ztsim.db.schema import SEALED_COLUMNS
from ztsim.errors import InvalidInput
from ztsim.sealing import KEY_BYTES, Sealer, format_key, parse_key


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


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InvalidInput(f"{path} must be readable by its owner only (chmod 600)")
    return parse_key(path.read_text())


def _next_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".next")


def load_sealer(
    key_file: Path,
    env_key: str | None,
    *,
    create: bool,
    random: Callable[[int], bytes] = os.urandom,
) -> Sealer:
    """The sealer for this installation: the env key if given, else the key file."""
    if env_key:
        return Sealer(parse_key(env_key))
    if not key_file.exists():
        if not create:
            raise InvalidInput(
                f"no master key: set ZTSIM_MASTER_KEY or run `ztsim init` ({key_file})"
            )
        _write_private(key_file, format_key(random(KEY_BYTES)))
    current = _read_key_file(key_file)
    pending = _next_path(key_file)
    if pending.exists():
        # A rotation is under way: seal with the new key, open with either.
        return Sealer(_read_key_file(pending), others=[current])
    return Sealer(current)


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
    engine: Engine, key_file: Path, random: Callable[[int], bytes] = os.urandom
) -> int:
    """Rotate the KEK kept in `key_file`; returns how many rows were re-sealed."""
    pending = _next_path(key_file)
    if not pending.exists():
        _write_private(pending, format_key(random(KEY_BYTES)))
    sealer = load_sealer(key_file, None, create=False)
    changed = rewrap_all(engine, sealer)
    os.replace(pending, key_file)
    return changed
