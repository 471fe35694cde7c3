"""The CAMARA notifier: turns SIM swaps into CloudEvents POSTed to subscribers' sinks.

A background thread (`start`/`stop`; tests call `run_once(now)`) that, each pass:

1. reads the SIM changes of numbers (`number_changes`, kind "sim") after its cursor in
   `risk_cursors`, re-reading the last OVERLAP ids, because on PostgreSQL ids are taken
   at insert and may commit out of order; queueing a change twice is a no-op (one
   delivery per subscription and source), and ids seen in this process are skipped;
   each change queues a `swapped` event for every ACTIVE subscription of the same org on
   that number created before the change, and counts it against the subscription's
   max events (the last one ends it: MAX_EVENTS_REACHED);
2. ends subscriptions whose expire time (or token's expiry) came;
3. POSTs the due deliveries through the outbound guard (`ztsim.outbound`: no loopback,
   private or link-local sink unless the admin allowed its range), the sink credential
   as bearer token, and records each attempt (`camara.delivery`), retrying with backoff
   up to the bounded attempts; a 410 from the sink ends the subscription.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from ztsim.clock import Clock, utc_now
from ztsim.db.engine import for_writing
from ztsim.errors import InvalidInput, SealingError
from ztsim.netguard import NotAllowed
from ztsim.outbound import FetchFailed, OutboundClient
from ztsim.risk import cloudevents
from ztsim.risk.cloudevents import TerminationReason
from ztsim.risk.store import cursors, deliveries
from ztsim.risk.store import subscriptions as subs
from ztsim.risk.store.deliveries import Delivery
from ztsim.risk.subscriptions import Outcome, Status, outcome, reason_by_time
from ztsim.sealing import Sealer
from ztsim.usecase import use_case

log = logging.getLogger("ztsim.risk.notify")

CURSOR = "camara_notifier"
# Ids re-read below the cursor: more than the number changes that can be in flight
# (inserted, not yet committed) at once.
OVERLAP = 1000
BATCH = 500  # number changes read past the cursor per query


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass did."""

    queued: int  # swapped events queued
    ended: int  # subscriptions ended by time
    attempts: int  # POSTs made


class Notifier:
    def __init__(
        self,
        engine: Engine,
        sealer: Sealer,
        client: OutboundClient,
        *,
        clock: Clock = utc_now,
        every: float = 0.2,
        source: str = cloudevents.DEFAULT_SOURCE,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._client = client
        self._clock = clock
        self._every = every
        self._source = source
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="camara-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        failing = False
        while not self._stop.wait(self._every):
            try:
                self.run_once(self._clock())
            except Exception as exc:  # the database away, a bug: keep the thread alive
                if not failing:  # once per outage, and only the type: no values, no secrets
                    log.warning("CAMARA notifier pass failed (%s)", type(exc).__name__)
                failing = True
            else:
                failing = False

    def run_once(self, now: datetime) -> Pass:
        queued = self._read_changes(now)
        ended = self._end_by_time(now)
        attempts = self._deliver(now)
        return Pass(queued, ended, attempts)

    # -- 1. number changes -> swapped events ----------------------------------------------

    def _has_news(self) -> bool:
        """Whether a pass would queue or move anything: asked in a read, which takes no
        write lock on SQLite, so an idle notifier never holds up the writers."""
        with self._engine.begin() as conn:
            position = cursors.position(conn, CURSOR)
            changes = cursors.sim_changes_after(conn, max(0, position - OVERLAP), OVERLAP + 1)
        return any(c.id not in self._seen or c.id > position for c in changes)

    def _read_changes(self, now: datetime) -> int:
        queued = 0
        if not self._has_news():
            return queued
        while True:
            with for_writing(self._engine).begin() as conn:
                position = cursors.position(conn, CURSOR)
                limit = OVERLAP + BATCH
                changes = cursors.sim_changes_after(conn, max(0, position - OVERLAP), limit)
                fresh = [c for c in changes if c.id not in self._seen]
                queued += self._queue(conn, fresh, now)
                top = max((c.id for c in changes), default=position)
                cursors.advance(conn, CURSOR, top, now)
            self._seen.update(c.id for c in fresh)
            self._seen = {i for i in self._seen if i > top - OVERLAP}
            if len(changes) < limit or top <= position:
                return queued

    def _queue(self, conn: Connection, changes: list[cursors.SimChange], now: datetime) -> int:
        numbers = sorted({(c.org_id, f"+{c.msisdn}") for c in changes})
        watching = subs.active_on(conn, numbers)
        queued = 0
        with use_case(conn, now):
            for change in changes:
                for sub in watching:
                    if (sub.org_id, sub.phone_number) != (change.org_id, f"+{change.msisdn}"):
                        continue
                    if sub.created_at > change.at:  # a swap before the subscription existed
                        continue
                    current = subs.get_any(conn, sub.id)  # an earlier change may have ended it
                    if current.status is not Status.ACTIVE:
                        continue
                    event = cloudevents.swapped(
                        event_id=f"{sub.id}-sim-{change.id}",
                        subscription_id=sub.id,
                        phone_number=sub.named_number,
                        at=change.at,
                        source=self._source,
                    )
                    if deliveries.enqueue(
                        conn,
                        org_id=sub.org_id,
                        subscription_id=sub.id,
                        source=f"sim:{change.id}",
                        event=event,
                        now=now,
                    ):
                        subs.count_event(conn, current, now)
                        queued += 1
        return queued

    # -- 2. subscriptions ended by time ---------------------------------------------------

    def _end_by_time(self, now: datetime) -> int:
        with self._engine.begin() as conn:  # a read first: idle passes take no write lock
            if not subs.due_by_time(conn, now):
                return 0
        with for_writing(self._engine).begin() as conn:
            due = subs.due_by_time(conn, now)
            for sub in due:
                reason = reason_by_time(sub.expire_time, now)
                subs.end(conn, sub, reason, now=now, actor="ztsim")
        return len(due)

    # -- 3. deliveries ----------------------------------------------------------------------

    def _deliver(self, now: datetime) -> int:
        with self._engine.begin() as conn:  # a read first: idle passes take no write lock
            if not deliveries.due(conn, now):
                return 0
        with for_writing(self._engine).begin() as conn:
            claimed = [d for d in deliveries.due(conn, now) if deliveries.claim(conn, d, now)]
        for delivery in claimed:
            self._attempt(delivery, now)
        return len(claimed)

    def _attempt(self, delivery: Delivery, now: datetime) -> None:
        with self._engine.begin() as conn:
            sub = subs.get_any(conn, delivery.subscription_id)
            try:
                token = subs.open_credential(conn, self._sealer, sub.id)
            except SealingError:
                token = None
                failure: str | None = _UNSEALED
            else:
                failure = None
        status: int | None = None
        if failure is None:
            status, failure = self._post(sub.sink, delivery, token)
        hopeless = failure in _PERMANENT  # no retry changes these
        result = Outcome.FAILED if hopeless else outcome(status, delivery.attempts + 1)
        with for_writing(self._engine).begin() as conn:
            deliveries.record(conn, delivery, result, now=now, http_status=status, error=failure)
            if result is Outcome.GONE:
                reason = TerminationReason.NETWORK_TERMINATED
                subs.end(conn, sub, reason, now=now, actor="ztsim", notify=False)
                deliveries.abandon_pending(conn, sub.id, "the sink answered 410 Gone")

    def _post(
        self, sink: str, delivery: Delivery, token: str | None
    ) -> tuple[int | None, str | None]:
        """The sink's HTTP status (None when no answer came) and what went wrong, in words
        that name neither the credential nor what the sink answered."""
        headers = {
            "Content-Type": cloudevents.MEDIA_TYPE,
            "x-correlator": str(delivery.event.get("id", "")),
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(delivery.event, separators=(",", ":")).encode()
        try:
            answer = self._client.post(sink, body, headers)
        except NotAllowed:
            return None, _REFUSED
        except InvalidInput:
            return None, _INVALID
        except FetchFailed:
            return None, "could not reach the sink"
        except ValueError:
            return None, "the sink's answer was too large"
        if 200 <= answer.status < 300:
            return answer.status, None
        return answer.status, f"the sink answered HTTP {answer.status}"


_REFUSED = "the sink's address is not allowed"
_INVALID = "the sink is not a valid URL"
_UNSEALED = "the sink credential could not be opened"
_PERMANENT = frozenset({_REFUSED, _INVALID, _UNSEALED})
