"""The DNS gateway's answers on their way into the FQDN sets: queued by the caller, applied
in batches on a thread of their own.

`learn` runs on the DNS gateway's serving thread, once per A/AAAA answer to a SIM
(`ztsim.dns.serve.gateway.Gateway.on_answer`): it must never block it, so it only
appends to a bounded deque (one atomic operation under the GIL; past `max_queued` the
oldest answer is dropped and counted: a flood of answers must not grow the heap) and
wakes the thread. The thread takes everything queued at once and hands it to `apply`
(the net role plans the sets' batch for all of it and runs one `nft`), so a burst of
answers costs one batch, not one each. An answer's TTL counts from when it was given,
not from when its batch runs. A batch that fails is tried once more after `RETRY_WAIT`
(the role marks its table for a whole apply meanwhile), then dropped and counted: the
device asks again when it needs the name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ztsim.net.fqdn import Answered

log = logging.getLogger("ztsim.net")
MAX_QUEUED = 100_000  # answers waiting for their batch; each is about 200 octets
MAX_BATCH = 10_000  # answers planned in one nft batch
RETRY_WAIT = 0.2  # seconds before a failed batch is tried again
_STOP_CHECK = 1.0  # seconds the thread sleeps at most without answers


class Learner:
    """A bounded queue of answers and the thread that applies them in batches."""

    def __init__(
        self,
        apply: Callable[[list[Answered]], object],
        *,
        max_queued: int = MAX_QUEUED,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._apply = apply
        self._monotonic = monotonic
        self._queue: deque[tuple[float, Answered]] = deque(maxlen=max_queued)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # answers lost: queue full, or their batch failed twice
        self.batches = 0

    def learn(
        self,
        requester: str,
        qname: str,
        addresses: Sequence[str],
        ttl: int,
        now: float | None = None,
    ) -> None:
        """Queue one answer (`now`: when it was given, on `monotonic`'s clock)."""
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1  # the deque drops the oldest as this one goes in
        at = self._monotonic() if now is None else now
        queue.append((at, Answered(requester, qname, tuple(addresses), ttl)))
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="net-learn", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def drain(self) -> int:
        """Apply what is queued now, in batches of `MAX_BATCH`; how many answers were
        applied. The thread's step, and the tests'."""
        done = 0
        while self._queue and not self._stopping.is_set():
            batch = self._take()
            for attempt in (1, 2):
                try:
                    self._apply(batch)
                except Exception as exc:  # the kernel refused: the role says why
                    if attempt == 1:
                        log.warning("net: learned answers not applied, retrying: %s", exc)
                        self._stopping.wait(RETRY_WAIT)
                        continue
                    self.dropped += len(batch)
                    log.warning("net: %d learned answers dropped: %s", len(batch), exc)
                else:
                    done += len(batch)
                    self.batches += 1
                break
        return done

    def _take(self) -> list[Answered]:
        now = self._monotonic()
        out: list[Answered] = []
        queue = self._queue
        while queue and len(out) < MAX_BATCH:
            at, answer = queue.popleft()
            age = max(0, int(now - at))
            out.append(answer._replace(ttl=max(0, answer.ttl - age)) if age else answer)
        return out

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_STOP_CHECK)
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # a bug: logged, the thread goes on
                log.exception("net: learning failed")
