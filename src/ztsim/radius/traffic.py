"""What the AAA hot path keeps and hands on: counters, the replay cache, the sink for
records, and the fixed parts of every Access-Accept."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ztsim.events.schema import NewEvent
from ztsim.radius.engine import PoolEntry
from ztsim.sessions.table import Session

# RFC 5080 §2.2.2: answer a retransmission with the cached reply for a while.
REPLAY_SECONDS = 30.0
REPLAY_ENTRIES = 65536
DEFAULT_SESSION_TIMEOUT = 86400


@dataclass
class Counters:
    received: int = 0
    answered: int = 0
    unknown_client: int = 0
    malformed: int = 0
    bad_authenticator: int = 0
    unexpected_code: int = 0
    duplicates: int = 0
    accepts: int = 0
    rejects: int = 0
    accounting: int = 0
    acct_without_session: int = 0

    @property
    def dropped(self) -> int:
        return self.unknown_client + self.malformed + self.bad_authenticator + self.unexpected_code

    def as_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "dropped": self.dropped}


class Sink(Protocol):
    """Where the hot path leaves records for the background writer."""

    def event(self, event: NewEvent, when: datetime) -> None: ...
    def session(self, session: Session) -> None: ...
    def lease(self, pool: PoolEntry, imsi: str, address: str, when: datetime) -> None: ...
    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None: ...


@dataclass(frozen=True)
class ReplySettings:
    dns_primary: str | None = None
    dns_secondary: str | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT


class ReplayCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or self._monotonic() - entry[0] > REPLAY_SECONDS:
            return None
        return entry[1]

    def put(self, key: tuple[object, ...], reply: bytes) -> None:
        now = self._monotonic()
        self._entries[key] = (now, reply)
        while self._entries:
            oldest_key, (stamp, _) = next(iter(self._entries.items()))
            if len(self._entries) <= REPLAY_ENTRIES and now - stamp <= REPLAY_SECONDS:
                break
            del self._entries[oldest_key]
