"""A streamed stock import stages its sealed rows outside the write lock: other writers
commit while it seals, nothing is visible before it publishes, and a file that changes
between the two passes leaves nothing behind."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterable

import pytest
from sqlalchemy import Engine, func, select

from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.errors import Conflict
from ztsim.identifiers import Iccid
from ztsim.identity import repository as identities
from ztsim.inventory import service
from ztsim.inventory.models import SimKind
from ztsim.sealing import Sealer


def _rows(count: int, seed: int) -> str:
    lines = ["ICCID,IMSI,Ki,OPc"]
    for n in range(count):
        iccid = Iccid.with_check_digit(f"8944{seed:04d}{n:010d}").value
        lines.append(f"{iccid},001{seed:02d}{n:010d},{n:032x},{n + 1:032x}")
    return "\n".join(lines) + "\n"


def _count_sims(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(schema.sims)) or 0)


def _import(
    engine: Engine,
    sealer: Sealer,
    org_id: str,
    open_lines: Callable[[], Iterable[str]],
    on_progress: Callable[[str, int], None] | None = None,
) -> str:
    record = service.import_stock_file(
        engine,
        sealer,
        org_id,
        open_lines,
        filename="stock.csv",
        kind=SimKind.PHYSICAL,
        actor="test",
        now=utc_now(),
        on_progress=on_progress,
    )
    return record.status


def _org(engine: Engine) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, "Org", "org", utc_now()).id


def test_other_writers_commit_while_the_rows_are_sealed(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    org_id = _org(sqlite_engine)
    text = _rows(12_000, seed=71)
    path = str(sqlite_engine.url.database)
    seen: list[tuple[int, int]] = []

    def while_storing(phase: str, rows: int) -> None:
        if phase != "storing":
            return
        # A writer such as the AAA's: it would wait (then fail) behind a held write lock.
        other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        seen.append((rows, _count_sims(sqlite_engine)))

    assert _import(sqlite_engine, sealer, org_id, lambda: io.StringIO(text), while_storing) == (
        "imported"
    )
    assert len(seen) >= 2  # several chunks staged, a writer got in after each
    assert all(visible == 0 for _, visible in seen)  # nothing published before the copy
    assert _count_sims(sqlite_engine) == 12_000


def test_a_file_that_changes_between_the_passes_leaves_nothing(
    engine: Engine, sealer: Sealer
) -> None:
    org_id = _org(engine)
    passes = iter([_rows(9_000, seed=72), _rows(8_000, seed=72)])

    def open_lines() -> Iterable[str]:
        return io.StringIO(next(passes))

    with pytest.raises(Conflict, match="the file changed while it was imported"):
        _import(engine, sealer, org_id, open_lines)
    assert _count_sims(engine) == 0
    # The connection's staging table went with the import: the next one starts clean.
    text = _rows(6_000, seed=73)
    assert _import(engine, sealer, org_id, lambda: io.StringIO(text)) == "imported"
    assert _count_sims(engine) == 6_000
