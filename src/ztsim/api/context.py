"""What request handlers need from the composition root."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from ztsim.api.principals import PrincipalCache
from ztsim.clock import Clock, utc_now
from ztsim.db.engine import for_writing
from ztsim.esim.config import EsimConfig
from ztsim.sealing import Sealer


@dataclass(frozen=True)
class ApiContext:
    engine: Engine
    sealer: Sealer
    clock: Clock = utc_now
    random: Callable[[int], bytes] = os.urandom
    esim: EsimConfig = field(default_factory=EsimConfig)
    # Recently authenticated bearer tokens (the gate's); routes that revoke a token or
    # change an identity call `principals.forget_all()` after their commit.
    principals: PrincipalCache = field(default_factory=PrincipalCache)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only transaction. On SQLite (WAL) it takes no lock, so a reader never
        waits behind a writer, however long that writer holds the write lock (a large
        stock import stores its SIMs in one transaction, for all or nothing)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction; it commits before the handler returns its response. It may
        write, so on SQLite it takes the write lock from the start."""
        with for_writing(self.engine).begin() as conn:
            yield conn
