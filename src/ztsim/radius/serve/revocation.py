"""Revocation: a Disconnect-Request (RFC 5176) for each live session a change no longer
allows, and its outcome as an event.

The core says which sessions (`AaaCore.revoked`, under the service's lock); here, on
the service's event loop, one request at most is in flight per session, sent and
retransmitted by the CoA client with doubling timeouts (`coa.backoff`). The outcome is
a `radius.disconnect` event (ACK: success; NAK with the gateway's Error-Cause, or no
answer at all: failure). An ACK ends the session in the table (and the log: a
`radius.session_stopped`, cause `disconnected`); otherwise it stays live,
and the SIM's next Access-Request is refused anyway, since the change is already in the
snapshot: revocation never waits for the gateway.

Time revokes too: an attach class stands until its facts age (a posture report goes
stale, a SIM swap gets old). From `start` on, a task re-classifies the SIMs whose class
is due (`AaaCore.reclassify_due`, under the lock, a batch at a time) and disconnects the
live sessions their new class refuses, within `DUE_SLACK` seconds of the instant; the
SIM's next Access-Request is decided at that instant already (`ztsim.radius.aaa.attach`).
A policy refusal's event carries the policy's reason codes (`policy_reasons`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ztsim.clock import Clock
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.radius.aaa.accounting import SESSION_STOPPED
from ztsim.radius.aaa.core import AaaCore, Revocation
from ztsim.radius.aaa.engine import GatewayEntry
from ztsim.radius.builders import framed_ip_address
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.serve.coa import CoaClient
from ztsim.radius.serve.coa import Outcome as CoaOutcome
from ztsim.radius.serve.writer import BatchWriter
from ztsim.sessions.table import Session, SessionKey

EVENT_KIND = "radius.disconnect"
# The longest the deadline task sleeps: a deadline a patch brings in earlier than the one
# it sleeps towards is seen within this long (and no task wakes more often when idle).
DUE_SLACK = 0.5
DUE_ROUNDS = 50

log = logging.getLogger("ztsim.radius.serve.revocation")


class Revoker:
    """Sends the Disconnect-Requests of revoked sessions. `soon` from any thread once
    `start` has given it the loop and the core; `spawn` runs a task on that loop (the
    service's, which cancels them when it stops)."""

    def __init__(
        self,
        coa: CoaClient,
        writer: BatchWriter,
        lock: threading.Lock,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.coa = coa
        self.writer = writer
        self.lock = lock
        self.clock = clock
        self._spawn = spawn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._core: AaaCore | None = None
        self.in_flight: set[SessionKey] = set()

    def start(self, loop: asyncio.AbstractEventLoop, core: AaaCore) -> None:
        """Called on the loop: from now on revocations go out, and classes due are
        re-decided."""
        self._loop, self._core = loop, core
        self._spawn(self._follow_deadlines(core))

    async def _follow_deadlines(self, core: AaaCore) -> None:
        while True:
            with self.lock:
                due = core.next_due()
            wait = DUE_SLACK
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock()).total_seconds()))
            await asyncio.sleep(wait)
            try:
                self.reclassify_now(core)
            except Exception:  # a bug: logged, and the next round tries again
                log.exception("re-classifying attach classes that are due failed")

    def reclassify_now(self, core: AaaCore) -> int:
        """Re-classify the classes due now, a batch per hold of the lock (at most
        `DUE_ROUNDS` batches: the next round takes the rest), and disconnect the sessions
        refused; how many sessions."""
        count = 0
        for _ in range(DUE_ROUNDS):
            with self.lock:
                revoked = core.reclassify_due(self.clock())
                more = core.next_due()
            self._revoke(revoked)
            count += len(revoked)
            if more is None or more > self.clock():
                break
        return count

    def soon(self, revoked: list[Revocation]) -> None:
        """Thread-safe: disconnect these sessions (those not already being disconnected)."""
        loop = self._loop
        if revoked and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping
                loop.call_soon_threadsafe(self._revoke, revoked)

    def _revoke(self, revoked: list[Revocation]) -> None:
        for s, gateway, reason, codes in revoked:
            if s.key not in self.in_flight:
                self.in_flight.add(s.key)
                self._spawn(self._disconnect(s, gateway, reason.value, codes))

    async def _disconnect(
        self, s: Session, gateway: GatewayEntry, cause: str, codes: tuple[str, ...] = ()
    ) -> None:
        attributes = [make_attribute("Acct-Session-Id", s.acct_session_id)]
        if s.imsi:
            attributes.insert(0, make_attribute("User-Name", s.imsi))
        if s.ue_address:
            attributes.append(framed_ip_address(s.ue_address))
        try:
            result = await self.coa.disconnect(
                s.nas_address, gateway.coa_port, gateway.secret, attributes
            )
        finally:
            self.in_flight.discard(s.key)
        now = self.clock()
        ok = result.outcome is CoaOutcome.ACK
        payload: dict[str, object] = {
            "gateway_id": gateway.id,
            "acct_session_id": s.acct_session_id,
            "ue_address": s.ue_address,
            "result": result.outcome.value,
            "attempts": result.attempts,
            "error_cause": result.error_cause,
        }
        if codes:
            payload["policy_reasons"] = list(codes)
        self.writer.event(
            NewEvent(
                s.org_id,
                EVENT_KIND,
                "system:revocation",
                subject_of("sim", s.iccid) if s.iccid else subject_of("imsi", s.imsi or "-"),
                Outcome.SUCCESS if ok else Outcome.FAILURE,
                cause,
                payload,
            ),
            now,
        )
        core = self._core
        if ok and core is not None:
            with self.lock:
                stopped = core.sessions.stop(s.key, now, "disconnected")
            if stopped is not None:
                self.writer.session(stopped)
                # As an Accounting-Stop would: the gateway's own Stop, if it comes, finds
                # the session ended and records nothing more.
                self.writer.session_event(stopped, SESSION_STOPPED, now)
