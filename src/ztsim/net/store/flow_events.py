"""The audit's two uses of the database: each org's privacy mode, and writing flow events.

The user plane logs in the org's DNS privacy mode (`dns_settings.privacy` and
`pseudonymise`, set by the DNS settings' use case), so one switch governs what is kept
about a person's traffic. `net` does not import `dns`: the two columns are read here
directly, and their values are `ztsim.dns.policy.rules.PrivacyMode`'s, which
`FlowLogMode` repeats. An org without a row has the DNS gateway's defaults
(`blocked-only`, not pseudonymised): `FlowPrivacy()`.

Flow events are written in batches, each event with the time its packet was seen (the
events store's `append` gives a batch one time; a batch here spans up to a second).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select

from ztsim.db import schema
from ztsim.events.schema import NewEvent
from ztsim.net.denials import FlowLogMode, FlowPrivacy

_log = logging.getLogger(__name__)
_s, _e = schema.dns_settings, schema.events


def read_privacy(conn: Connection) -> dict[str, FlowPrivacy]:
    """Every org that has DNS settings -> its flow privacy (the others: `FlowPrivacy()`).
    One row per org that changed its settings: read whole."""
    out: dict[str, FlowPrivacy] = {}
    for org_id, mode, pseudonymise in conn.execute(
        select(_s.c.org_id, _s.c.privacy, _s.c.pseudonymise)
    ):
        try:
            out[org_id] = FlowPrivacy(FlowLogMode(mode), bool(pseudonymise))
        except ValueError:  # a mode this version does not know: the default, same pseudonyms
            _log.warning("org %s: unknown privacy mode %r, read as the default", org_id, mode)
            out[org_id] = FlowPrivacy(pseudonymise=bool(pseudonymise))
    return out


def append_flow_events(conn: Connection, items: Sequence[tuple[NewEvent, datetime]]) -> int:
    """The events, each at its own time, in the caller's transaction; how many."""
    rows = [
        {
            "org_id": e.org_id,
            "time": when,
            "kind": e.kind,
            "actor": e.actor,
            "subject": e.subject,
            "outcome": e.outcome.value,
            "reason": e.reason,
            "payload": e.payload,
        }
        for e, when in items
    ]
    if rows:
        conn.execute(insert(_e), rows)
    return len(rows)
