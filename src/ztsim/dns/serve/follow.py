"""A gateway process on the change feed: what it loads at start, what it applies, how far.

`load` reads the policy, the identity table and the outbox position in one consistent
read. Two followers then start at that position, each on a thread of its own, so that
compiling a large list never holds up a suspend:
- identities (`Topic.SESSION`, `SIM`, `IDENTITY`, `DEVICE_TOKEN`, `POSTURE`, and `POLICY`
  or `DNS` when an org's checks or SIM conditions changed) patch the table one key at a
  time (`IdentityTable.apply`);
- the policy (`Topic.DNS` and `Topic.POLICY`, key: an org) recompiles the orgs named
  (`PolicyBuilder`) and hands the result to `publish`: this process's gateway, or the
  workers' share.
A third thread reads again the entries whose tags time alone has changed (a posture
report gone stale, a SIM swap aged past a rule's duration) when they are due
(`IdentityTable.read_due`); its patches go the identity follower's way, under one lock,
so that no older read is installed over a newer one.
A worker of `serve dns --workers` runs neither: its parent follows the feed for the host
and relays the identity patches (`relay`, installed by `relayed`) and publishes the policy,
with the position it had applied (`policy_loaded`).

`position()` is the sequence number through which this process has applied every change;
`wait_applied` waits for it (tests, and probes that measure propagation). `read_identities_now`
asks the identity follower for a read at once (a query from an address it does not know yet:
`late`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from sqlalchemy import Engine as DbEngine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.identities import TOPICS, FullTable, IdentityTable, TablePatch, read_full
from ztsim.dns.serve.policies import PolicyBuilder, Subjects
from ztsim.dns.serve.relay import Message, RelayHub, RelayReceiver
from ztsim.feed import outbox
from ztsim.feed.change import Change, Topic, keys_of
from ztsim.feed.follower import Follower, consistent_read
from ztsim.metrics.registry import Family

Publish = Callable[[int, PolicySnapshot, Subjects], None]
log = logging.getLogger("ztsim.dns")
POLICY_TOPICS = (Topic.DNS, Topic.POLICY)  # key: an org whose policy to compile again
MAX_DEADLINE_WAIT = 1.0  # seconds: the deadline thread looks again at least this often


class GatewayFeed:
    def __init__(
        self,
        database: DbEngine | None,
        builder: PolicyBuilder,
        table: IdentityTable,
        publish: Publish,
    ) -> None:
        self.database = database
        self.builder = builder
        self.table = table
        self.publish = publish
        # Told the position of a batch with nothing to publish (a parent tells its workers).
        self.advanced: Callable[[int], None] = lambda _position: None
        self._changed = threading.Condition()
        # Build and publish as one step: two builds (a change, the policy file) must reach
        # `publish` in the order they were built.
        self._building = threading.Lock()
        self.identity_seq = 0  # every identity change through it is applied
        self.policy_seq = 0  # the policy in use reflects every DNS change through it
        self.dns_seen = 0  # the last DNS change the identity follower read
        self.followers: list[Follower] = []
        self._identities: Follower | None = None
        # The followers' wake-ups (None: the backend's default poll). Tests slow them down
        # to show what `read_identities_now` alone achieves.
        self.poll_seconds: float | None = None
        self.listen = True
        self.relay: RelayHub | None = None  # a parent: its workers' tables follow its own
        self._receiver: RelayReceiver | None = None  # a worker: its parent's patches
        # Read, install and relay as one step: the follower and the deadline thread both do.
        self._patching = threading.Lock()
        self._deadlines: threading.Thread | None = None
        self._deadline_wake = threading.Event()  # an entry may now be due sooner
        self._stopping = threading.Event()
        self._deadline_failing = False

    def load(self) -> int:
        """The policy, the identity table and the outbox position in one snapshot."""
        if self.database is None:
            policy, subjects = self.builder.load_all(None)
            self.table.set_sources(subjects.static, subjects.tokens, subjects.defaults)
            self.publish(0, policy, subjects)
            return 0
        with consistent_read(self.database) as conn:
            position = outbox.position(conn)
            policy, subjects = self.builder.load_all(conn)
            self.table.set_sources(subjects.static, subjects.tokens, subjects.defaults)
            self.table.load(conn)
        self.publish(position, policy, subjects)
        self._advance(identity=position, policy=position)
        return position

    # -- the followers -------------------------------------------------------------------

    def relayed(self, receiver: RelayReceiver) -> None:
        """This process takes its identity patches from its parent, not from the feed."""
        receiver.deliver = self._deliver
        self._receiver = receiver

    @property
    def is_relayed(self) -> bool:
        """A worker: its parent follows the feed for it (and serves the host's metrics)."""
        return self._receiver is not None

    def report_metrics(self, families: Sequence[Family]) -> None:
        """A worker's metrics, to its parent (nothing happens elsewhere)."""
        if self._receiver is not None:
            self._receiver.send_metrics(list(families))

    def start_identities(self, name: str = "dns-identities") -> None:
        if self._receiver is not None:
            self._receiver.start()
        elif self.database is not None:
            self._identities = self._start(
                self._apply_identities, self._resync_identities, self.identity_seq, name
            )
            self._stopping.clear()
            self._deadlines = threading.Thread(
                target=self._follow_deadlines, name=f"{name}-due", daemon=True
            )
            self._deadlines.start()

    def start_policy(self, name: str = "dns-policy") -> None:
        if self.database is not None:
            self._start(self._apply_policy, self._resync_policy, self.policy_seq, name)

    def _start(
        self,
        apply: Callable[[Sequence[Change]], None],
        resync: Callable[[], int],
        position: int,
        name: str,
    ) -> Follower:
        assert self.database is not None
        follower = Follower(
            self.database,
            apply,
            resync,
            position=position,
            name=name,
            poll_seconds=self.poll_seconds,
            listen=self.listen,
        )
        self.followers.append(follower)
        follower.start()
        return follower

    def read_identities_now(self) -> Future[bool]:
        """A read of the feed for identities that starts now (see `Follower.read_now`); done
        at once (False) when no identity follower runs: there is nothing to wait for."""
        if self._receiver is not None:
            return self._receiver.read_now()
        follower = self._identities
        if follower is not None:
            return follower.read_now()
        done: Future[bool] = Future()
        done.set_result(False)
        return done

    def identities_readable(self) -> bool:
        """An identity follower runs and its last read succeeded: a read asked for now is
        worth waiting for."""
        if self._receiver is not None:
            return self._receiver.readable()
        follower = self._identities
        return follower is not None and follower.connected

    @property
    def identity_reads(self) -> int:
        """Reads of the feed the identity follower started (its load on the database)."""
        follower = self._identities
        return 0 if follower is None else follower.reads

    def catch_up(self) -> int:
        """Without running followers (a process that does not serve: tests, tools): apply
        what lies above the position now, on the caller's thread. Returns how many."""
        if self.database is None or self.followers:
            return 0
        applied = 0
        for apply, at in (
            (self._apply_identities, "identity_seq"),
            (self._apply_policy, "policy_seq"),
        ):
            while True:
                with self.database.connect() as conn:
                    changes = outbox.read_after(conn, getattr(self, at))
                if not changes:
                    break
                apply(changes)
                applied += len(changes)
        return applied

    def stop(self) -> None:
        self._stopping.set()
        self._deadline_wake.set()
        deadlines, self._deadlines = self._deadlines, None
        if deadlines is not None:
            deadlines.join(5.0)
        followers, self.followers = self.followers, []
        self._identities = None
        for follower in followers:
            follower.stop()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.stop()

    def _apply_identities(self, changes: Sequence[Change]) -> None:
        assert self.database is not None
        dns = [change.seq for change in changes if change.topic in POLICY_TOPICS]
        seq, dns_seen = changes[-1].seq, dns[-1] if dns else 0
        with self._patching:
            patch = TablePatch()
            if any(change.topic in TOPICS for change in changes):
                # One snapshot for the batch's reads: no entry is read half before a change.
                with consistent_read(self.database) as conn:
                    patch = self.table.apply(conn, changes)
            self._advance(identity=seq, dns_seen=dns_seen)
            if self.relay is not None:
                self.relay.send(("patch", seq, dns_seen, patch))
        self._deadline_wake.set()

    def _resync_identities(self) -> int:
        assert self.database is not None
        with self._patching:
            with consistent_read(self.database) as conn:
                position = outbox.position(conn)
                full = read_full(conn, self.table.clock())
            self.table.install_full(full)
            # The changes skipped may have held DNS ones: the policy must reach `position`.
            self._advance(identity=position, dns_seen=position)
            if self.relay is not None:
                self.relay.send(("full", position, position, full))
        self._deadline_wake.set()
        return position

    def run_due(self) -> int:
        """Read again the entries whose tags time alone has changed, install and relay
        them; returns how many keys were read (0 without a database)."""
        if self.database is None:
            return 0
        with self._patching:
            with consistent_read(self.database) as conn:
                patch = self.table.read_due(conn)
            if patch:
                self.table.install(patch)
                if self.relay is not None:
                    self.relay.send(("patch", self.identity_seq, 0, patch))
        return len(patch)

    def _follow_deadlines(self) -> None:
        """The deadline thread: sleeps until the earliest entry is due, then reads it."""
        while not self._stopping.is_set():
            due = self.table.next_due()
            wait = MAX_DEADLINE_WAIT
            if due is not None:
                wait = min(wait, (due - self.table.clock()).total_seconds())
            if wait > 0:
                self._deadline_wake.wait(wait)
                self._deadline_wake.clear()
                continue
            try:
                self.run_due()
            except (SQLAlchemyError, OSError) as exc:
                if not self._deadline_failing:  # the follower reports the outage too
                    log.warning("reading due DNS entries failed (%s)", type(exc).__name__)
                self._deadline_failing = True
                self._stopping.wait(MAX_DEADLINE_WAIT)
            except Exception:  # a bug: the entries stay as they are, the thread goes on
                log.exception("reading due DNS entries failed")
                self._stopping.wait(MAX_DEADLINE_WAIT)
            else:
                self._deadline_failing = False

    def _deliver(self, message: Message) -> None:
        """A worker: what its parent relayed (on the receiver's thread)."""
        kind, seq, dns_seen, body = message
        if kind == "patch" and isinstance(body, TablePatch):
            self.table.install(body)
        elif kind == "full" and isinstance(body, FullTable):
            self.table.install_full(body)
        else:
            raise TypeError(f"not a relayed identity update: {kind!r}")
        self._advance(identity=seq, dns_seen=dns_seen)

    def _apply_policy(self, changes: Sequence[Change]) -> None:
        assert self.database is not None
        orgs = list(dict.fromkeys(k for t in POLICY_TOPICS for k in keys_of(list(changes), t)))
        position = changes[-1].seq
        if orgs:
            with self._building, consistent_read(self.database) as conn:
                policy, subjects = self.builder.update_orgs(conn, orgs)
                self.publish(position, policy, subjects)
        else:
            with self._building:
                self.advanced(position)
        self._advance(policy=position)

    def _resync_policy(self) -> int:
        assert self.database is not None
        with self._building, consistent_read(self.database) as conn:
            position = outbox.position(conn)
            policy, subjects = self.builder.load_all(conn)
            self.publish(position, policy, subjects)
        self._advance(policy=position)
        return position

    def reload_file(self) -> None:
        """After the policy file changed (its database part is as it was)."""
        with self._building:
            policy, subjects = self.builder.reload_file()
            self.publish(self.policy_seq, policy, subjects)

    # -- how far -------------------------------------------------------------------------

    def policy_loaded(self, position: int) -> None:
        """A worker took its parent's policy, which reflects the feed through `position`."""
        self._advance(policy=position)

    def _advance(self, *, identity: int = 0, policy: int = 0, dns_seen: int = 0) -> None:
        with self._changed:
            self.identity_seq = max(self.identity_seq, identity)
            self.policy_seq = max(self.policy_seq, policy)
            self.dns_seen = max(self.dns_seen, dns_seen)
            self._changed.notify_all()

    def position(self) -> int:
        """Every change through this sequence number is applied here."""
        if self.policy_seq >= self.dns_seen:
            return self.identity_seq
        return min(self.identity_seq, self.policy_seq)

    def wait_applied(self, seq: int, timeout: float) -> bool:
        """Wait until every change through `seq` is applied; False if `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.position() < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def lag_seconds(self) -> float:
        """How long since this process last knew it had applied every change (0 without
        a database: nothing to follow)."""
        relayed = 0.0 if self._receiver is None else self._receiver.lag_seconds()
        return max((f.lag_seconds() for f in self.followers), default=relayed)

    @property
    def connected(self) -> bool:
        receiver = self._receiver
        return all(f.connected for f in self.followers) and (receiver is None or receiver.connected)
