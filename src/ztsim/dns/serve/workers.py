"""`ztsim serve dns --workers N`: N forked processes sharing the port with SO_REUSEPORT.

The parent serves nothing: it builds the policy snapshot (lists, rules, settings) once,
before forking, so every worker starts with the same store in copy-on-write memory, and
rebuilds it when a policy file or the database changes, publishing it to a file in a
private directory (written whole, then renamed) that each worker loads at its next
reload tick. Building once instead of once per worker halves the CPU a large list's
reload takes from the serving processes. Each worker keeps its own identity table and
answer cache; worker 0 also refreshes URL lists.

How each worker runs, and how stop signals reach the parent, is the caller's
(`ztsim.node.dns`): the parent only forwards a stop to its children, here.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess, build_policy, options_config
from ztsim.errors import ZtsimError

log = logging.getLogger("ztsim.dns")

# Runs one worker until it stops: (its process, whether it refreshes URL lists).
ServeWorker = Callable[[GatewayProcess, bool], None]


def _publish(path: Path, process: GatewayProcess) -> None:
    started = time.monotonic()
    policy, subjects = build_policy(process.options, options_config(process.options))
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        pickle.dump((policy, subjects), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)
    log.info("DNS policy rebuilt for the workers in %.2f s", time.monotonic() - started)


class WorkerPool:
    """The forking parent: `fork` the workers, `supervise` until they have all ended;
    `stop` (from a signal handler) forwards the stop to each."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self._share = Path(tempfile.mkdtemp(prefix="ztsim-dns-"))
        self._shared = self._share / "policy.pickle"
        self.process = GatewayProcess(options, options_config(options), self._shared)
        gc.collect()  # the parsed lists: only the compact store is kept
        if options.database is not None:
            options.database.dispose()  # no pooled connection may cross a fork
        self.children: list[int] = []
        self._stop_signal: int | None = None

    def fork(self, workers: int, serve: ServeWorker) -> None:
        for index in range(workers):
            pid = os.fork()
            if pid == 0:
                try:
                    serve(self.process, index == 0)
                finally:
                    os._exit(0)
            self.children.append(pid)
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
        """Reap the workers and publish policy rebuilds until every worker has ended."""
        state = self.process.sources_state()
        try:
            while self.children:
                time.sleep(self.options.reload_interval)
                for child in list(self.children):
                    done, _ = os.waitpid(child, os.WNOHANG)
                    if done:
                        self.children.remove(child)
                if self._stop_signal is not None or not self.children:
                    continue
                try:
                    current = self.process.sources_state()
                    if current != state:
                        _publish(self._shared, self.process)
                        state = current
                except (ZtsimError, OSError, SQLAlchemyError) as exc:
                    log.warning("DNS rebuild failed, workers keep the last snapshot: %s", exc)
        finally:
            shutil.rmtree(self._share, ignore_errors=True)
