"""Whether an SQLite database has had a commit since the last look, for a fraction of a
read's cost.

SQLite's `PRAGMA data_version` (https://sqlite.org/pragma.html#pragma_data_version) gives,
on one connection, a number that changes whenever another connection (of this process or
any other) has committed to the database file. A poller that asks it on a connection of
its own, before each poll, can leave out every poll that would find nothing: an idle
change-feed follower otherwise read the outbox through the pool ten times a second, about
1 ms of CPU each here, a core's 0.6% per follower and three followers in `ztsim up`.

Only where it is certain: a plain database file. Anywhere else (`:memory:`, options in the
URL, another backend) and after any error, `changed()` answers True: the poll happens as
before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine


class DataVersion:
    """`changed()`: has anything been committed to `engine`'s database since the previous
    call? True on the first call, and wherever the answer is not certain. One thread's:
    the connection is opened by the first call, on the calling thread."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url
        plain_file = (
            engine.dialect.name == "sqlite"
            and url.database not in (None, "", ":memory:")
            and not url.query
        )
        self._path = Path(str(url.database)) if plain_file else None
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None

    @property
    def watching(self) -> bool:
        """Whether `changed()` can ever answer False here."""
        return self._path is not None

    def changed(self) -> bool:
        if self._path is None:
            return True
        try:
            if self._conn is None:
                # Never creates the file (the pool's connections do, with its mode) and
                # never writes: a read-only URI, in autocommit, so it holds no snapshot.
                self._conn = sqlite3.connect(
                    f"{self._path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self.close()  # opened anew next time (the file may be back)
            return True
        seen, self._seen = self._seen, version
        return seen is None or version != seen

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._seen = None
