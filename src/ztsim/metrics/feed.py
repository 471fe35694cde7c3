"""The change feed's metrics, the same for every role that follows it (RADIUS, DNS): in
`ztsim up` each role adds its series to one family, told apart by `role`."""

from __future__ import annotations

from ztsim.metrics.registry import Family, Kind, Spec

LAG = Spec(
    "ztsim_feed_lag_seconds",
    "Seconds since this role last knew it had applied every change of the feed (about 0 "
    "while current; grows while the database is unreachable and the last state is served).",
    Kind.GAUGE,
    ("role",),
)
POSITION = Spec(
    "ztsim_feed_position",
    "Sequence number of the newest change of the feed applied by this role.",
    Kind.GAUGE,
    ("role",),
)
CONNECTED = Spec(
    "ztsim_feed_connected",
    "1 while this role's last read of the feed succeeded, 0 while the database is unreachable.",
    Kind.GAUGE,
    ("role",),
)


def feed_families(role: str, lag: float, position: int, connected: bool) -> list[Family]:
    return [
        LAG.family([((role,), lag)]),
        POSITION.family([((role,), position)]),
        CONNECTED.family([((role,), 1.0 if connected else 0.0)]),
    ]
