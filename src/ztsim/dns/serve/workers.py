"""`ztsim serve dns --workers N`: N forked processes sharing the port with SO_REUSEPORT.

The parent serves nothing: it builds the policy snapshot (lists, rules, settings) once,
before forking, so every worker starts with the same store in copy-on-write memory, and
rebuilds it when a policy file or the database changes, publishing it to a file in a
private directory (written whole, then renamed) that each worker loads at its next
reload tick. Building once instead of once per worker halves the CPU a large list's
reload takes from the serving processes. Each worker keeps its own identity table and
answer cache; worker 0 also refreshes URL lists.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import shutil
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ztsim.dns.serve.runner import (
    GatewayOptions,
    GatewayProcess,
    build_policy,
    options_config,
    serve_forever,
)
from ztsim.errors import ZtsimError

log = logging.getLogger("ztsim.dns")


def _publish(path: Path, process: GatewayProcess) -> None:
    started = time.monotonic()
    policy, subjects = build_policy(process.options, options_config(process.options))
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        pickle.dump((policy, subjects), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)
    log.info("DNS policy rebuilt for the workers in %.2f s", time.monotonic() - started)


def run(options: GatewayOptions, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT; with `workers` > 1, fork that many processes."""
    config = options_config(options)
    if workers <= 1:
        single = GatewayProcess(options, config)
        del config  # the parsed lists: only the compact store is kept
        serve_forever(single, reuse_port=False)
        return
    share = Path(tempfile.mkdtemp(prefix="ztsim-dns-"))
    shared = share / "policy.pickle"
    process = GatewayProcess(options, config, shared)
    del config
    gc.collect()
    if options.database is not None:
        options.database.dispose()  # no pooled connection may cross a fork
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                serve_forever(process, reuse_port=True, refresher=index == 0)
            finally:
                os._exit(0)
        children.append(pid)
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    state = process.sources_state()
    try:
        while children:
            time.sleep(options.reload_interval)
            for child in list(children):
                done, _ = os.waitpid(child, os.WNOHANG)
                if done:
                    children.remove(child)
            if stopping or not children:
                continue
            try:
                current = process.sources_state()
                if current != state:
                    _publish(shared, process)
                    state = current
            except (ZtsimError, OSError, SQLAlchemyError) as exc:
                log.warning("DNS rebuild failed, workers keep the last snapshot: %s", exc)
    finally:
        shutil.rmtree(share, ignore_errors=True)
