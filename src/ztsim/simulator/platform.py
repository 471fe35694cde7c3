"""What the simulator needs of the platform it provisions and loads, as structural types:
the simulator never imports the composition root (`ztsim.node`), which builds the real
platform and passes it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from ztsim.sealing import Sealer


class PlatformStore(Protocol):
    """The platform's database and the sealer its secrets are kept under."""

    @property
    def engine(self) -> Engine: ...

    @property
    def sealer(self) -> Sealer: ...


@dataclass(frozen=True, slots=True)
class Listeners:
    """Where the running platform's RADIUS and DNS servers listen."""

    radius_host: str
    radius_auth_port: int
    radius_acct_port: int
    dns_host: str
    dns_port: int
