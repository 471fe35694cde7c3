"""Opening sockets where the role's tools act: in the namespace a command prefix enters.

The role runs nft, conntrack and ip under a prefix (`ip netns exec GW`, `nsenter ...`,
or none). Sockets it reads itself (the NFLOG socket, the Geneve endpoint's TUN device
and UDP socket) must live in that same network namespace, whatever the prefix does to
get there. `in_namespace_of(prefix, work)` starts a waiting shell under the prefix,
opens its process's namespace, and runs `work` on a short-lived thread that entered it
(setns(2) moves only the calling thread), so the role's other threads stay where they
are; a socket keeps its namespace whichever thread uses it afterwards. With no prefix
`work` runs on the calling thread. Used for the Geneve endpoint (`ztsim.net.tun`), the
NFLOG and conntrack sockets (`ztsim.net.serve`). `in_named_namespace(name, work)` does
the same for a namespace `ip netns add` named (the demo's site: no prefix to start).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

_CLONE_NEWNET = 0x40000000  # linux/sched.h: setns(2) into a network namespace
NETNS_DIR = "/var/run/netns"  # ip-netns(8): where a named namespace is bind-mounted
_T = TypeVar("_T")


def in_namespace_of(prefix: Sequence[str], work: Callable[[], _T], timeout: float = 10.0) -> _T:
    """`work()` run in the network namespace that commands under `prefix` see; OSError
    when the prefix starts no shell within `timeout` seconds or setns fails."""
    if not prefix:
        return work()
    ns = _namespace_of(prefix, timeout)
    try:
        return _entered(ns, work)
    finally:
        os.close(ns)


def in_named_namespace(name: str, work: Callable[[], _T]) -> _T:
    """`work()` run by a short-lived thread inside the namespace `ip netns` calls `name`;
    OSError when there is none or setns fails. The caller's thread never moves."""
    ns = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _entered(ns, work)
    finally:
        os.close(ns)


def _namespace_of(prefix: Sequence[str], timeout: float) -> int:
    """A descriptor of the network namespace a shell started under `prefix` runs in."""
    argv = [*prefix, "/bin/sh", "-c", "echo $$; read _"]
    # Our prefix and a fixed script: no shell of ours interprets anything given.
    holder = subprocess.Popen(  # noqa: S603
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Its own process group: a prefix's children that hold the pipe go with it.
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], timeout)
        line = holder.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            raise OSError(errno.ESRCH, f"{' '.join(prefix)} started no shell within {timeout} s")
        return os.open(f"/proc/{line}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        # It only waited, to hold the namespace open while it was found.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate()


def _entered(ns: int, work: Callable[[], _T]) -> _T:
    """`work` run by a new thread that entered the namespace `ns` (and ends with `work`)."""
    result: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(ns, _CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"setns: {os.strerror(code)}")
            result.append(work())
        except BaseException as err:  # handed to the caller's thread
            failure.append(err)

    thread = threading.Thread(target=run, name="ztsim-netns-open")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
