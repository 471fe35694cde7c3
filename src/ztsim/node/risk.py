"""The risk context's background readers, run by the API role (`ztsim up`, `ztsim serve
api`) beside the change feed's pruner: the detectors' watcher (signals in, the org's
chosen responses out) and the CAMARA notifier (SIM swaps out to subscribers' sinks).

One API process per database is enough; several are harmless: findings and deliveries
are recorded once per source (see `ztsim.risk.serve.watch` and `.notify`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from ztsim.netguard import parse_ranges
from ztsim.outbound import OutboundClient
from ztsim.risk.serve.notify import Notifier
from ztsim.risk.serve.watch import Watcher
from ztsim.sealing import Sealer

# A sink answers a CloudEvent quickly or is tried again later (with backoff): a slow sink
# must not hold up the other subscribers' deliveries for long.
SINK_TIMEOUT_SECONDS = 10.0
# Nothing in a sink's answer is used beyond its status: no reason to read much of it.
SINK_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class RiskRole:
    watcher: Watcher
    notifier: Notifier

    def start(self) -> None:
        self.watcher.start()
        self.notifier.start()

    def stop(self) -> None:
        try:
            self.notifier.stop()
        finally:
            self.watcher.stop()


def risk_role(engine: Engine, sealer: Sealer, allowed_ranges: Iterable[str]) -> RiskRole:
    """`allowed_ranges`: the internal ranges an admin opened to outbound requests
    (`outbound_allowed_ranges`); sinks elsewhere inside are refused."""
    client = OutboundClient(
        parse_ranges(allowed_ranges),
        timeout=SINK_TIMEOUT_SECONDS,
        max_bytes=SINK_ANSWER_BYTES,
        user_agent="ztsim-camara",
    )
    return RiskRole(Watcher(engine), Notifier(engine, sealer, client))
