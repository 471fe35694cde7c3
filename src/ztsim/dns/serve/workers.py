"""`ztsim serve dns --workers N`: N forked processes sharing the port with SO_REUSEPORT.

The parent serves nothing. Before forking it loads the policy, the identity table and the
outbox position in one consistent read (`GatewayProcess`), so every worker starts with the
same domain stores in copy-on-write memory. After forking:
- the parent alone follows the change feed, from that position (the pool is disposed
  before the fork: no connection crosses it): identity changes patch its own copy of the
  table and each patch is relayed to every worker over a socket pair (`relay`), so the
  database does the host's reads once, not once per worker; a worker's read requests
  (`late`) go to the parent the same way;
- policy changes (`Topic.DNS`) are compiled in the parent and published to a private
  directory (`share`), which every worker polls (one stat every 25 ms) and loads; policy
  compiled once instead of once per worker leaves the serving processes their CPU. The
  parent also polls the policy file, if one is configured.
Worker 0 also refreshes URL lists.

How each worker runs, and how stop signals reach the parent, is the caller's
(`ztsim.node.dns`): the parent only forwards a stop to its children, here.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.policies import Subjects
from ztsim.dns.serve.relay import RelayHub, RelayReceiver
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess, options_config
from ztsim.dns.serve.share import PolicyShare
from ztsim.errors import ZtsimError

log = logging.getLogger("ztsim.dns")

# Runs one worker until it stops: (its process, whether it refreshes URL lists).
ServeWorker = Callable[[GatewayProcess, bool], None]
REAP_SECONDS = 0.5  # how often the parent looks for ended workers


def _stop_worker() -> None:
    """The parent's stream ended (it crashed) or a patch could not be installed: no change
    reaches this worker's table any more, and a suspended SIM would go on being answered.
    It stops, in order; the other workers, or a restart, serve the port."""
    log.error("DNS worker %d: its parent's updates stopped; stopping", os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


class WorkerPool:
    """The forking parent: `fork` the workers, `supervise` until they have all ended;
    `stop` (from a signal handler) forwards the stop to each."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self._share = Path(tempfile.mkdtemp(prefix="ztsim-dns-"))
        self.process = GatewayProcess(options, options_config(options), self._share)
        gc.collect()  # the parsed lists: only the compact stores are kept
        if options.database is not None:
            options.database.dispose()  # no pooled connection may cross a fork
        self.children: list[int] = []
        self._links: list[socket.socket] = []  # the parent's end of each worker's pair
        self.hub = RelayHub([])  # the workers' links, once they are forked
        self._stop_signal: int | None = None

    def fork(self, workers: int, serve: ServeWorker) -> None:
        for index in range(workers):
            parent_end, child_end = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                try:
                    for sock in (parent_end, *self._links):
                        sock.close()
                    self.process.feed.relayed(RelayReceiver(child_end, on_lost=_stop_worker))
                    serve(self.process, index == 0)
                finally:
                    os._exit(0)
            child_end.close()
            self._links.append(parent_end)
            self.children.append(pid)
        self.hub = RelayHub(self._links)
        if self._stop_signal is not None:
            # Taken while forking (by another thread than the one holding it): the
            # workers forked since have not had it yet.
            self.stop(self._stop_signal)

    def stop(self, signum: int) -> None:
        self._stop_signal = signum
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def supervise(self) -> None:
        """Follow policy changes and publish them, reap the workers, until every worker
        has ended."""
        process = self.process
        share = PolicyShare(self._share)

        def publish(position: int, policy: PolicySnapshot, subjects: Subjects) -> None:
            share.publish(position, policy, subjects)
            # The parent's table must patch as the workers' do (static entries stand under
            # the sessions), though it serves nothing.
            process.identities.set_sources(subjects.static, subjects.tokens, subjects.defaults)

        process.feed.publish = publish
        process.feed.advanced = share.advance
        hub = process.feed.relay = self.hub
        process.feed.start_identities("dns-identities-parent")
        process.feed.start_policy("dns-policy-parent")
        hub.serve_requests(process.feed.read_identities_now)
        checked = time.monotonic()
        try:
            while self.children:
                time.sleep(REAP_SECONDS)
                for child in list(self.children):
                    done, _ = os.waitpid(child, os.WNOHANG)
                    if done:
                        self.children.remove(child)
                if self._stop_signal is not None or not self.children:
                    continue
                if time.monotonic() - checked >= self.options.reload_interval:
                    checked = time.monotonic()
                    try:
                        process.reload_policy_file()
                    except (ZtsimError, OSError, SQLAlchemyError) as exc:
                        log.warning("DNS rebuild failed, workers keep the last policy: %s", exc)
        finally:
            process.feed.stop()
            hub.stop()
            shutil.rmtree(self._share, ignore_errors=True)
