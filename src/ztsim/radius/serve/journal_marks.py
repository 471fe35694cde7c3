"""The accounting journal's marks in the database: how far into each journal file the
committed records reach (`ztsim.radius.serve.journal`), written in the transaction that
commits them. A file is unlinked only after the commit that covers it, and its mark
deleted only after that, so a crash in between leaves a mark without a file (nothing to
replay), never a file without its mark (replayed from the start, twice)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, delete, insert, select, update

from ztsim.db import schema

_t = schema.radius_journals


def applied(conn: Connection, name: str) -> int:
    """The offset the committed records of journal `name` reach (0: none committed)."""
    found = conn.execute(select(_t.c.applied).where(_t.c.name == name)).scalar_one_or_none()
    return int(found or 0)


def save(conn: Connection, offsets: Mapping[str, int]) -> None:
    # A file or two per commit: update, else insert (the process is its file's only writer).
    for name, offset in offsets.items():
        done = conn.execute(update(_t).where(_t.c.name == name).values(applied=offset))
        if done.rowcount == 0:
            conn.execute(insert(_t).values(name=name, applied=offset))


def forget(conn: Connection, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        conn.execute(delete(_t).where(_t.c.name.in_(names)))
