"""What request handlers need from the composition root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from ztsim.clock import Clock, utc_now
from ztsim.sealing import Sealer


@dataclass(frozen=True)
class ApiContext:
    engine: Engine
    sealer: Sealer
    clock: Clock = utc_now

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction; it commits before the handler returns its response."""
        with self.engine.begin() as conn:
            yield conn
