"""Sealed stock rows staged in a temporary table of the importing connection, so that a
large import holds the database's write lock for one INSERT ... SELECT, not for the
parsing, checking and sealing of every row.

On SQLite, writes to a TEMP table go to the connection's own temporary database and
take no lock on the main file: the chunks are staged in short transactions while the
gateways' writers (accounting, events) keep committing. Only `publish` runs inside the
write transaction, at SQLite's own speed. On PostgreSQL the table is a session's
temporary table, seen by no one else. Either way it is dropped when the import ends,
and nothing of it is ever visible in `sims` until the publishing transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, insert, select

from ztsim.db import schema

# What `imports._sealed` fills in for a new SIM; every other column takes its default.
STAGED = (
    "org_id",
    "iccid",
    "imsi",
    "msisdn",
    "kind",
    "state",
    "k_sealed",
    "opc_sealed",
    "pin_sealed",
    "puk_sealed",
    "import_id",
    "created_at",
    "updated_at",
)

_s = schema.sims
_staging = Table(
    "ztsim_stock_staging",
    MetaData(),
    *(Column(name, _s.c[name].type) for name in STAGED),
    prefixes=["TEMPORARY"],
)


@contextmanager
def staged(conn: Connection) -> Iterator[Table]:
    """A fresh staging table on `conn` (outside any transaction), dropped at the end."""
    with conn.begin():
        _staging.drop(conn, checkfirst=True)  # a pooled connection's leftover, if any
        _staging.create(conn)
    try:
        yield _staging
    finally:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            _staging.drop(conn, checkfirst=True)


def stage(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Stage a chunk of sealed rows, in a transaction of its own."""
    with conn.begin():
        conn.execute(insert(_staging), [{name: row[name] for name in STAGED} for row in rows])


def publish(conn: Connection) -> None:
    """Copy the staged rows into `sims` in the caller's (write) transaction."""
    conn.execute(
        insert(_s).from_select(list(STAGED), select(*(_staging.c[name] for name in STAGED)))
    )
