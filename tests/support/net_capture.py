"""tshark on a gateway's underlay veth (`u0`), for the first UDP datagram the gateway sends
to a tunnel port: what the tunnel tests read the Geneve or VXLAN header from. It returns
once tshark says it is capturing, so the datagram a test sends next is not missed."""

from __future__ import annotations

import select
import shutil
import subprocess
import time
from collections.abc import Sequence

TSHARK = shutil.which("tshark")
# RFC 8926's header and ztsim's option as tshark names them (its Geneve dissector).
GENEVE_FIELDS = ("geneve.vni", "geneve.option.class", "geneve.option.type",
                 "geneve.option.unknown.data")  # fmt: skip


def capture_first(ns: str, port: int, source: str, fields: Sequence[str]) -> subprocess.Popen[str]:
    """tshark in `ns` on `u0` for the first datagram from `source` to UDP `port`, printing
    `fields` separated by "|"; it gives up after 10 s."""
    assert TSHARK is not None
    argv = ["ip", "netns", "exec", ns, TSHARK, "-n", "-l", "-i", "u0"]
    argv += ["-f", f"udp dst port {port} and src host {source}", "-c", "1"]
    argv += ["-a", "duration:10", "-T", "fields", "-E", "separator=|"]
    for name in fields:
        argv += ["-e", name]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen, deadline = "", time.monotonic() + 10
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        line = proc.stderr.readline() if ready else ""
        if "Capture started" in line or (not ready and "Capturing on" in seen):
            return proc
        seen += line
    proc.kill()
    proc.communicate()
    raise AssertionError(f"tshark did not start capturing: {seen}")
