"""The AAA decision layer, sans I/O: `engine` (who may attach: SIM state, the
SIM-to-device lock, clone signals), `core` (datagrams and a time in, a reply out, with
records for the writer and requests for address blocks), `accounting` (the session
table from Accounting-Requests), `status` (Status-Server health checks, RFC 5997) and
`traffic` (records, counters, the retransmission cache). No sockets, threads or
database: the adapters in `ztsim.radius.serve` hold those."""

from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.engine import (
    AccessRequest,
    Decision,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    decide,
)

__all__ = [
    "AaaCore",
    "AccessRequest",
    "Decision",
    "GatewayEntry",
    "Reason",
    "SimEntry",
    "Snapshot",
    "decide",
]
