"""The net role's audit: denied flows read from NFLOG, written as `net.flow` events.

`FlowAudit.start` opens the NFLOG socket for the deny rules' group in the gateway's
namespace (the one the role's nft runs in: `ztsim.net.netns.in_namespace_of`), and its reader
thread hands each logged packet to a `DenialLog`, which asks the role who the source is
(`explain`) and rate-limits per source. The events wait in memory with the time their
packet was seen (`serve.flow_writer`: bounded while the database is down, nothing
given up without a count); a ticker writes them once a second in one transaction
(`flush`), with the summaries of sources whose suppression is over, and `stop` writes
the last ones (`flush(final=True)`).

Privacy: each org's mode is read whole at start (`store.flow_events.read_privacy`), again
when the role sees a DNS change (`privacy_changed`, on the follower's thread, so an org's
new mode holds once the role has applied the change) and every `privacy_seconds` in
case a change was missed. The reader thread only looks it up.

Allowed flows: while some org's mode is `all`, and only then, a conntrack listener
(`conntrack_socket.ConntrackListener`, accounting enabled, in the same namespace) hands
each flow's start and end to a `FlowLog`, which shares the denials' `FlowEvents` (the
same modes, the same pseudonyms) and keeps only flows from a SIM to a site
(`sites_changed`, told by the role whenever it reads the sites). Its events wait and are
written with the denials'. The listener is opened or closed whenever the modes are read;
closing forgets the flows it followed (no org logs them any more). A failed opening
raises at `start`; later it is logged, counted and tried again at a flush, at most every
`RETRY_SECONDS`. `stop` closes it before the last flush.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import Clock, utc_now
from ztsim.metrics.registry import Family, Kind, Spec
from ztsim.net.ctnetlink import ConntrackEvent
from ztsim.net.denials import DenialLog, Explain, FlowEvents, FlowLogMode, FlowPrivacy
from ztsim.net.flow_log import FlowLog
from ztsim.net.netns import in_namespace_of
from ztsim.net.nflog import NflogPacket
from ztsim.net.nft_documents import NFLOG_GROUP
from ztsim.net.serve.conntrack_socket import RETRY_SECONDS, ConntrackListener
from ztsim.net.serve.flow_writer import MAX_PENDING, FlowWriter
from ztsim.net.serve.nflog_socket import NflogReader, open_nflog
from ztsim.net.serve.ticker import Ticker
from ztsim.net.store.flow_events import read_privacy
from ztsim.net.store.tunnel_view import SiteTunnel
from ztsim.net.tunnel_routes import TunnelRoutes

_log = logging.getLogger("ztsim.net")
FLUSH_SECONDS = 1.0
PRIVACY_SECONDS = 60.0  # the privacy modes are read again at least this often
_DEFAULT_PRIVACY = FlowPrivacy()

READER = Spec(
    "ztsim_net_nflog_total",
    "NFLOG datagrams and packets of the deny rules' group by what became of them "
    "(received, lost: gaps in the kernel's numbering, overrun, malformed, foreign, ...).",
    Kind.COUNTER,
    ("what",),
)
DENIALS = Spec(
    "ztsim_net_denials_total",
    "Denied attempts by what the audit made of them (written, suppressed by the per-source "
    "limit, summarised, unattributed: no session, unparsed).",
    Kind.COUNTER,
    ("what",),
)
STORED = Spec(
    "ztsim_net_flow_events_total",
    "Flow events by what became of them (stored, dropped while the database was down).",
    Kind.COUNTER,
    ("what",),
)
PENDING = Spec(
    "ztsim_net_flow_events_pending",
    "Flow events waiting to be written (more than a second's worth: the database is down).",
    Kind.GAUGE,
)
CONNTRACK = Spec(
    "ztsim_net_conntrack_total",
    "The allowed-flow listener: conntrack events by what became of them (received, overrun: "
    "lost in a full buffer, malformed, foreign, ...) and its openings (opened, closed, "
    "open_failed).",
    Kind.COUNTER,
    ("what",),
)
ALLOWED = Spec(
    "ztsim_net_allowed_flows_total",
    "Allowed flows' starts and stops by what the audit made of them (started, stopped, "
    "suppressed, private: the org's mode is not all, off_site, unattributed, evicted, "
    "forgotten: followed when the listener closed).",
    Kind.COUNTER,
    ("what",),
)
LISTENING = Spec(
    "ztsim_net_conntrack_listening",
    "1 while the allowed-flow listener is open (some org's privacy mode is all), else 0.",
    Kind.GAUGE,
)
OPEN_FLOWS = Spec(
    "ztsim_net_allowed_flows_open",
    "Allowed flows whose start the audit saw and whose stop it has not seen yet.",
    Kind.GAUGE,
)


class FlowAudit:
    """NFLOG in, `net.flow` events out. `prefix`: the role's command prefix, naming the
    gateway's namespace. `explain`: the role's `explain_denial`."""

    def __init__(
        self,
        engine: Engine,
        explain: Explain,
        *,
        prefix: tuple[str, ...] = (),
        group: int = NFLOG_GROUP,
        pseudonym_key: bytes | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        flush_seconds: float = FLUSH_SECONDS,
        privacy_seconds: float = PRIVACY_SECONDS,
        max_pending: int = MAX_PENDING,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.engine = engine
        self.prefix = prefix
        self.group = group
        self._clock = clock
        self._monotonic = monotonic
        self._privacy: dict[str, FlowPrivacy] = {}
        self._privacy_at: float | None = None
        self._privacy_seconds = privacy_seconds
        key = os.urandom(32) if pseudonym_key is None else pseudonym_key
        events = FlowEvents(self.privacy, key)
        self.log = DenialLog(explain, events)
        self.flows = FlowLog(explain, events, TunnelRoutes(()))  # no site known yet
        self._lock = threading.Lock()  # the logs and the pending events: readers and writer
        self._writing = threading.Lock()  # one flush at a time (the ticker's, the last)
        self._events = FlowWriter(max_pending)
        self.counts = self._events.counts  # stored, dropped (the writer's own counter)
        self._reader: NflogReader | None = None
        self._running = False  # between `start` and `stop`: the listener may be open
        self._listening = threading.Lock()  # orders the listener's openings and closings
        self.conntrack = ConntrackListener(
            self.handle_conntrack, prefix, monotonic=monotonic, retry_seconds=retry_seconds
        )
        self._ticker = Ticker(
            "net-audit", self.flush, period=flush_seconds, expected=(SQLAlchemyError, OSError)
        )

    # -- privacy ---------------------------------------------------------------------------

    def privacy(self, org_id: str) -> FlowPrivacy:
        return self._privacy.get(org_id, _DEFAULT_PRIVACY)

    def privacy_changed(self, orgs: Iterable[str] = ()) -> None:
        """Read every org's mode again (a DNS change of `orgs` was seen); the conntrack
        listener opened or closed to match."""
        with self.engine.connect() as conn:
            self._privacy = read_privacy(conn)  # one assignment: readers see old or new
        self._privacy_at = self._monotonic()
        self._listen()

    def _wants_flows(self) -> bool:
        return any(p.mode is FlowLogMode.ALL for p in self._privacy.values())

    def _listen(self, strict: bool = False) -> None:
        """The listener open while running and some org is in mode `all`, else closed
        (and the flows it followed forgotten). Cheap when nothing changes."""
        with self._listening:
            wanted = self._running and self._wants_flows()
            if wanted == self.conntrack.listening:
                return
            if wanted:
                self.conntrack.want(True, strict=strict)
                return
            self.conntrack.want(False)  # its thread has ended: nothing records meanwhile
            with self._lock:
                self.flows.forget()

    def sites_changed(self, tunnels: Sequence[SiteTunnel]) -> None:
        """The sites as the role read them (`read_site_tunnels`): allowed flows towards
        their prefixes are logged, others (the SIMs' internet traffic) are not.
        InvalidInput if two sites claim one prefix (the store's claims forbid it)."""
        pairs = [(str(p), t.site_id) for t in tunnels for p in t.prefixes]
        with self._lock:
            self.flows.set_sites(pairs)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Privacy read, the NFLOG socket open in the gateway's namespace (and the
        conntrack listener, if some org logs allowed flows), the threads started.
        NflogError, ConntrackError or OSError if the kernel refuses; nothing is left
        running then."""
        self.privacy_changed()
        sock = in_namespace_of(self.prefix, lambda: open_nflog(self.group))
        self._reader = NflogReader(sock, self.handle)
        self._reader.start()
        try:
            with self._listening:
                self._running = True
            self._listen(strict=True)
        except BaseException:
            self.stop()
            raise
        self._ticker.start()

    def stop(self) -> None:
        """Stop reading (the conntrack listener first), then write what is left (the
        suppressed counts too)."""
        self._ticker.stop()
        with self._listening:
            self._running = False
            self.conntrack.close()
        reader, self._reader = self._reader, None
        if reader is None:
            return  # never started: nothing was read
        reader.stop()
        try:
            self.flush(final=True)
        except (SQLAlchemyError, OSError) as exc:  # the class only: see `ticker`
            _log.warning(
                "net: %d flow events not written at stop (%s)",
                len(self._events),
                type(exc).__name__,
            )

    @property
    def reader(self) -> NflogReader | None:
        return self._reader

    @property
    def listening(self) -> bool:
        """Whether the conntrack listener is open (some org logs allowed flows)."""
        return self.conntrack.listening

    def handle(self, packet: NflogPacket) -> None:
        """The NFLOG reader's handler: one logged packet."""
        now, tick = self._clock(), self._monotonic()
        with self._lock:
            self._events.keep((e, now) for e in self.log.record(packet, tick))

    def handle_conntrack(self, event: ConntrackEvent) -> None:
        """The conntrack reader's handler: one flow's start or end."""
        now, tick = self._clock(), self._monotonic()
        with self._lock:
            self._events.keep((e, now) for e in self.flows.record(event, tick))

    def flush(self, final: bool = False) -> int:
        """Write the events waiting (and the summaries due); how many. Raises if the
        commit fails, with the events kept for the next flush."""
        with self._writing:
            tick = self._monotonic()
            if self._privacy_at is None or tick - self._privacy_at >= self._privacy_seconds:
                self.privacy_changed()
            else:
                self._listen()  # a failed opening is tried again (at most every retry_seconds)
            now = self._clock()
            with self._lock:
                self._events.keep((e, now) for e in self.log.flush(tick, final))
                self._events.keep((e, now) for e in self.flows.flush(tick, final))
                batch = self._events.take()
            try:
                return self._events.write(self.engine, batch, now)
            except BaseException:
                with self._lock:  # back in front of what came meanwhile, bounded again
                    self._events.put_back(batch)
                raise

    # -- metrics ---------------------------------------------------------------------------

    def families(self) -> list[Family]:
        reader = dict(self._reader.counts) if self._reader is not None else {}
        conntrack = self.conntrack.counts
        with self._lock:
            denials = dict(self.log.counts)
            allowed = dict(self.flows.counts)
            open_flows = self.flows.open_flows
            pending = len(self._events)
        return [
            READER.family(((what,), n) for what, n in sorted(reader.items())),
            DENIALS.family(((what,), n) for what, n in sorted(denials.items())),
            STORED.family(((what,), n) for what, n in sorted(dict(self.counts).items())),
            PENDING.family([((), pending)]),
            CONNTRACK.family(((what,), n) for what, n in sorted(conntrack.items())),
            ALLOWED.family(((what,), n) for what, n in sorted(allowed.items())),
            LISTENING.family([((), int(self.conntrack.listening))]),
            OPEN_FLOWS.family([((), open_flows)]),
        ]
