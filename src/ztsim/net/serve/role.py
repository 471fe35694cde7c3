"""The net role's state: the kernel's table `inet ztsim` kept equal to what the live
sessions and the orgs' `network` rules say, by following the change feed, and the
gateway's tunnels equal to the sites.

`load` reads the whole state in one consistent read (`staging.read_whole`), classifies
each session and applies the whole table in one batch (cutting the flows of addresses
the kernel's previous table held in another chain, or at all: a restart while a SIM was
suspended). `apply`, the follower's, re-reads only what a batch of changes names
(`staging.read_changes`), plans the smallest batch (`gateway_plan`), applies it, then
cuts the open flows of every address that left the map or changed chain. Time alone
moves classes too (a posture report going stale): `run_due`, on a timer, re-classifies
the sessions whose `Classification.until` has passed.

Nothing is taken in before the kernel took the batch: a refused batch raises (the
follower logs it and hands the same changes again), marks the kernel as unknown, and the
next attempt applies the whole table. One lock orders the follower and the timer; the
lookups (`subject_of_source`, `explain_denial`) read plain dicts without it.

`learn` takes what the DNS gateway answered a SIM (`Gateway.on_answer`) into the FQDN
sets of its chain (`net.fqdn`): queued at once, applied in batches on a thread of its
own (`net.serve.learning`), under the lock like every other change of the table.

With an underlay address the state also carries the sites (`net.serve.tunnels`): after
the load's batch and after every batch with a NET change, `Tunnels.apply` makes the
gateway's devices, Geneve endpoint and routes equal to the sites read in the same
snapshot. A `TunnelError` is logged and raised like a refused nft batch (the follower
hands the changes again; the timer retries it every second meanwhile), and `stop`
closes the endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import Clock, utc_now
from ztsim.feed.change import Change, Topic
from ztsim.feed.follower import Follower
from ztsim.net import identity_option
from ztsim.net.denials import DenialContext
from ztsim.net.fqdn import FLOOR_SECONDS, Answered
from ztsim.net.gateway_plan import ChainSpec, GatewayTable, Plan
from ztsim.net.nft import Nft, NftError, elements_of
from ztsim.net.nft_names import SUBJECTS
from ztsim.net.serve.classes import OrgClasses, classify, explain
from ztsim.net.serve.holdings import Held, Holdings
from ztsim.net.serve.learning import Learner
from ztsim.net.serve.staging import Stage, read_changes, read_whole
from ztsim.net.serve.ticker import Ticker
from ztsim.net.serve.tunnels import TunnelError, Tunnels
from ztsim.net.store.network_policy import canonical
from ztsim.net.store.tunnel_view import SiteTunnel

log = logging.getLogger("ztsim.net")
TOPICS = (Topic.SESSION, Topic.SIM, Topic.IDENTITY, Topic.POSTURE, Topic.POLICY, Topic.NET)
MAX_DUE_WAIT = 1.0  # seconds: the timer looks again at least this often (and retries cuts)


class NetState:
    """The net role's state and its steps; `start` runs them on the follower's thread and
        a timer's. `underlay` (the gateway's underlay address) makes it carry the sites'
        tunnels too; `dns_changed` is told the orgs of every DNS change (the audit's privacy
        modes); `sites_changed` is told the sites whenever they are read, once the table holds
    them (the audit's allowed flows). `fqdn_floor`: the least seconds a learned address
    stays (`net.fqdn`)."""

    def __init__(
        self,
        engine: Engine,
        nft: Nft,
        *,
        reject: bool = True,
        clock: Clock = utc_now,
        underlay: str | None = None,
        dns_changed: Callable[[set[str]], None] | None = None,
        sites_changed: Callable[[Sequence[SiteTunnel]], None] | None = None,
        fqdn_floor: int = FLOOR_SECONDS,
    ):
        self.engine = engine
        self.nft = nft
        self.clock = clock
        self.table = GatewayTable(reject, floor=fqdn_floor)
        self.learner = Learner(self._learn)
        self.tunnels = (
            None if underlay is None else Tunnels(underlay, self.subject_of_source, nft.prefix)
        )
        self._dns_changed = dns_changed
        self._sites_changed = sites_changed
        self._orgs: dict[str, OrgClasses] = {}
        self._held = Holdings()
        self._lock = threading.RLock()
        self._dirty = True  # the kernel's table is not known to be ours: apply it whole
        self._cuts: set[str] = set()  # flows still to cut (conntrack failed)
        self._carry: list[SiteTunnel] | None = None  # sites read, not carried yet
        self._carry_failing = False
        self._applied = threading.Condition()
        self._position = 0
        self._follower: Follower | None = None
        self._timer: Ticker | None = None

    # -- lookups (any thread, no lock) ----------------------------------------------------

    def subject_of_source(self, raw: bytes) -> identity_option.Subject | None:
        """The Geneve subject of a source address (4 or 16 octets); None: no class."""
        return self._held.source(raw)

    def explain_denial(
        self, source: str, destination: str, protocol: int, port: int
    ) -> DenialContext | None:
        """Who `source` is and the first network rule that matches the flow (rule None:
        the default deny, or a session with no class); None: no live session there."""
        try:
            held = self._held.get(canonical(source))
        except ValueError:
            return None
        if held is None:
            return None
        address = canonical(source)
        names = self.table.names(address, destination)  # what FQDN rules saw it as
        org = self._orgs.get(held.session.org_id)
        return explain(held, org, destination, protocol, port, names)

    def learn(
        self,
        requester: str,
        qname: str,
        addresses: Sequence[str],
        ttl: int,
        now: float | None = None,
    ) -> None:
        """What the DNS gateway answered `requester` (a UE address): queued, never
        blocking (any thread; `now` on `time.monotonic`'s clock, default: now)."""
        self.learner.learn(requester, qname, addresses, ttl, now)

    def _learn(self, answers: list[Answered]) -> None:
        with self._lock:
            plan = self.table.plan_learn(answers)
            if plan:
                try:
                    self.nft.apply(plan.document())
                except NftError:
                    self._dirty = True  # a set gone behind our back: the next apply is whole
                    raise
            self.table.commit_learn(plan)
            if plan.update.refused:
                log.warning(
                    "net: %d learned addresses refused (a set is full)", plan.update.refused
                )

    def held(self) -> dict[str, str | None]:
        """Every live session's address -> its chain (None: no class): for tests, probes."""
        with self._lock:
            return {a: self.table.subjects.get(a) for a, _ in self._held.items()}

    # -- how far ---------------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self._position

    def advanced(self, seq: int) -> None:
        """Every change through `seq` is applied (the follower's `advanced`)."""
        with self._applied:
            self._position = max(self._position, seq)
            self._applied.notify_all()

    def wait_applied(self, seq: int, timeout: float) -> bool:
        with self._applied:
            return self._applied.wait_for(lambda: self._position >= seq, timeout)

    # -- whole -----------------------------------------------------------------------------

    def load(self) -> int:
        """Everything read and the whole table applied, the sites carried; the position
        it reflects. NftError or TunnelError when the kernel refuses."""
        with self._lock:
            position, stage = read_whole(self.engine, self._orgs, self._held, self.clock())
            self._dirty = True
            self._install(stage, previous=self._kernel_subjects())
        self.advanced(position)
        return position

    def _kernel_subjects(self) -> dict[str, str]:
        """The subjects the kernel's table holds now (none: no table yet)."""
        try:
            listing = self.nft.table()
        except NftError:
            return {}
        out: dict[str, str] = {}
        for family in (4, 6):
            for element in elements_of(listing, SUBJECTS[family]):
                # [address, {"jump": {"target": "class_<name>"}}], as nft -j lists a vmap
                if isinstance(element, list) and len(element) == 2:
                    address, verdict = element
                    jump = verdict.get("jump", {}) if isinstance(verdict, dict) else {}
                    target = str(jump.get("target", ""))
                    out[str(address)] = target.removeprefix("class_")
        return out

    # -- the feed --------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> None:
        """The follower's `apply`: idempotent, it re-reads what the changes name."""
        with self._lock:
            stage = read_changes(self.engine, changes, self._orgs, self._held, self.clock())
            if stage.dns and self._dns_changed is not None:
                self._dns_changed(stage.dns)
            self._install(stage)

    def resync(self) -> int:
        return self.load()

    # -- threads ---------------------------------------------------------------------------

    def start(self, *, poll_seconds: float | None = None, listen: bool = True) -> None:
        """Load and apply the whole table, then follow the feed and the clock."""
        position = self.load()
        topics = (*TOPICS, Topic.DNS) if self._dns_changed is not None else TOPICS
        self._follower = Follower(
            self.engine,
            self.apply,
            self.resync,
            position=position,
            name="net",
            poll_seconds=poll_seconds,
            listen=listen,
            topics=topics,
            advanced=self.advanced,
        )
        self._follower.start()
        self._timer = Ticker(
            "net-due",
            self.run_due,
            period=MAX_DUE_WAIT,
            due=self._seconds_to_due,
            expected=(NftError, SQLAlchemyError, OSError),
        )
        self._timer.start()
        self.learner.start()

    def stop(self) -> None:
        self.learner.stop()
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.stop()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
        if self.tunnels is not None:
            with self._lock:
                self.tunnels.close()

    def lag_seconds(self) -> float:
        return 0.0 if self._follower is None else self._follower.lag_seconds()

    @property
    def connected(self) -> bool:
        """Whether the follower's last read of the feed succeeded (metrics)."""
        return self._follower is not None and self._follower.connected

    # -- time ------------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        return self._held.next_due()

    def _seconds_to_due(self) -> float | None:
        due = self._held.next_due()
        return None if due is None else (due - self.clock()).total_seconds()

    def run_due(self) -> int:
        """Re-classify the sessions whose class time alone has changed; how many. Also
        retries the cuts and the tunnels that failed."""
        with self._lock:
            now = self.clock()
            stage = Stage()
            popped = self._held.pop_due(now)
            for _, address in popped:
                held = self._held.get(address)
                if held is not None:
                    org = self._orgs.get(held.session.org_id)
                    stage.held[address] = classify(held.session, org, now)
            if stage.held:
                try:
                    self._install(stage)
                except NftError:
                    self._held.push_due(popped)  # due again on the next tick
                    raise
            self.cut_pending()
            with contextlib.suppress(TunnelError):  # logged; the follower's retry raises it
                self._carry_sites()
            return len(stage.held)

    def cut_pending(self) -> None:
        """Cut the open flows of every address that lost or changed its class, in one
        netlink exchange; on failure they stay pending for the timer's next round."""
        if not self._cuts:
            return
        pending = sorted(self._cuts)
        try:
            self.nft.cut_flows_of(pending)
        except NftError as exc:
            log.warning("net: the flows of a revoked address are not cut yet: %s", exc)
            return
        self._cuts.difference_update(pending)

    # -- installing ------------------------------------------------------------------------

    def _install(self, stage: Stage, previous: Mapping[str, str] | None = None) -> None:
        """Plan, apply, take in, cut, carry the sites. Raises NftError with nothing taken
        in, TunnelError with the table taken in and the sites still to carry."""
        orgs = {**self._orgs, **stage.orgs}
        orgs_now = {k: v for k, v in orgs.items() if v is not None}

        def chain(held: Held | None) -> ChainSpec | None:
            if held is None or held.class_id is None:
                return None
            org = orgs_now.get(held.session.org_id)
            return None if org is None else org.chain(held.class_id)

        prefixes = None if stage.sites is None else _prefixes(stage.sites)
        if self._dirty:
            merged = {**dict(self._held.items()), **stage.held}
            specs = {a: c for a, h in merged.items() if (c := chain(h)) is not None}
            sites = self.table.sites if prefixes is None else prefixes
            plan: Plan = self.table.plan_whole(specs, sites, previous)
        else:
            plan = self.table.plan({a: chain(h) for a, h in stage.held.items()}, prefixes)
        if plan:
            try:
                self.nft.apply(plan.document())
            except NftError:
                self._dirty = True
                raise
        self.table.commit(plan)
        self._dirty = False
        self._orgs = orgs_now

        def tag(held: Held) -> identity_option.ClassTag | None:
            org = orgs_now.get(held.session.org_id)
            return None if held.class_id is None or org is None else org.tag(held.class_id)

        self._held.take(stage.held, tag)
        self._cuts.update(plan.cut)
        self.cut_pending()
        if stage.sites is not None:
            self._carry = stage.sites
            if self._sites_changed is not None:
                self._sites_changed(stage.sites)
        self._carry_sites()

    def _carry_sites(self) -> None:
        """The sites read last made the gateway's tunnels (when it has an underlay)."""
        if self.tunnels is None or self._carry is None:
            return
        try:
            self.tunnels.apply(self._carry)
        except TunnelError as exc:
            if not self._carry_failing:  # once per streak: the timer retries every second
                log.warning("net: the sites' tunnels are not carried yet: %s", exc)
            self._carry_failing = True
            raise
        if self._carry_failing:
            log.warning("net: the sites' tunnels are carried again")
        self._carry, self._carry_failing = None, False


def _prefixes(sites: Sequence[SiteTunnel]) -> tuple[str, ...]:
    return tuple(str(p) for site in sites for p in site.prefixes)
