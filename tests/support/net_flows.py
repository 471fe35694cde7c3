"""TCP traffic from a UE namespace, as the net role's end-to-end tests make it: a command
run in a namespace, curl's status for a GET, the time a new connection takes, and a
long-lived echo flow that shows when the gateway stops carrying it.

The gateway topologies (`net_role_topology`, `net_gateway_world`) and `test_net_nft`
differ in their namespaces and addresses, not in how they probe them; this is that part.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time

from support.netns_hosts import entered


def run_in(ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """`argv` under `ip netns exec ns`, its output captured; never raises on failure."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def curl_status(ns: str, source: str, url: str) -> str:
    """The HTTP status of a GET of `url` from `source` in `ns`, or "failed (rc)"."""
    done = run_in(
        ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
        "--interface", source, url,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else f"failed ({done.returncode})"


def connect_time(ns: str, source: str, to: tuple[str, int], timeout: float = 1.0) -> float:
    """Seconds a new TCP connection from `source` in `ns` to `to` took; OSError if refused."""
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        started = time.monotonic()
        sock.connect(to)
        return time.monotonic() - started


def serve_one_echo(ns: str, at: tuple[str, int]) -> socket.socket:
    """A listener in `ns` on `at` that echoes its first connection on a thread, until the
    peer closes it or the gateway resets it; the caller closes the listener."""
    with entered(ns):
        listener = socket.create_server(at)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(ConnectionResetError):
            # A revoked flow's echo is refused by the gateway with a TCP reset.
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return listener


class EchoFlow:
    """One long-lived TCP flow from `source` in `ns` to the echo service at `to`, talking
    every 10 ms; `echoes` holds when each answer came."""

    def __init__(self, ns: str, source: str, to: tuple[str, int]) -> None:
        with entered(ns):
            self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.client.bind((source, 0))
        self.client.settimeout(2)
        self.client.connect(to)
        self.client.settimeout(0.05)
        self.echoes: list[float] = []
        self.running = True
        self.thread = threading.Thread(target=self._talk, daemon=True)
        self.thread.start()

    def _talk(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever the test does
        while self.running and time.monotonic() < deadline:
            try:
                self.client.sendall(b"x")
                if self.client.recv(4096):
                    self.echoes.append(time.monotonic())
            except TimeoutError:
                pass
            except OSError:
                time.sleep(0.05)  # reset or refused by the gateway: an app would try again
            time.sleep(0.01)

    def wait_for_echo(self, timeout: float = 3.0) -> None:
        """Returns once an answer came; fails the test if none did within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.echoes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.echoes, "the long-lived flow never echoed"

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.client.close()
