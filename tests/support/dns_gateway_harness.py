"""Running pieces for the gateway's end-to-end tests: dnsmasq as the upstream, the gateway
in a thread with its own event loop, and kdig as the client."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ztsim.dns.answercache import AnswerCache
from ztsim.dns.engine import Engine
from ztsim.dns.policy.identity import IdentityResolver, IdentitySnapshot
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.querylog import QueryLog
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.serve.tcp import serve_tcp, tcp_socket, tls_context
from ztsim.dns.serve.udp import UdpServer, serve_udp, udp_socket
from ztsim.dns.serve.upstream import UpstreamPool, UpstreamSpec

DNSMASQ = shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin")
KDIG = shutil.which("kdig")
STORE_KEY = bytes(range(16))
LOG_KEY = b"pseudonym-test-key-0123456789abc"
T = TypeVar("T")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def udp_ask(port: int, wire: bytes, *, source: str = "127.0.0.1", timeout: float = 2) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(wire, ("127.0.0.1", port))
        return sock.recvfrom(65535)[0]


@contextmanager
def dnsmasq(hosts: Path, *extra: str, port: int | None = None) -> Iterator[int]:
    """dnsmasq answering from `hosts` on `port` (default: a free one); yields the port."""
    assert DNSMASQ is not None
    port = free_port() if port is None else port
    process = subprocess.Popen(
        [
            DNSMASQ,
            "--keep-in-foreground",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--pid-file=",
            f"--user={getpass.getuser()}",
            "--local-ttl=300",
            f"--addn-hosts={hosts}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        probe = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
        for _ in range(50):
            try:
                udp_ask(port, probe, timeout=0.2)
                break
            except TimeoutError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()


class RunningGateway:
    """The gateway on 127.0.0.1:`port` (UDP and TCP), served by a loop in its own thread."""

    def __init__(
        self,
        policy: PolicySnapshot,
        identities: IdentitySnapshot,
        upstreams: Sequence[tuple[str, int] | UpstreamSpec],
        *,
        timeout: float = 0.5,
        tls: tuple[Path, Path] | None = None,
        upstream_tls: ssl.SSLContext | None = None,
        down_for: float = 0.2,
        probe_interval: float = 2.0,
        batched: bool = True,
    ) -> None:
        """`tls`: (certificate, key) to serve DoT on `tls_port` too; `batched`: UDP served
        with recvmmsg/sendmmsg where the system has them."""
        self.batched = batched
        self.udp: UdpServer | None = None
        self.log = QueryLog(policy, LOG_KEY)
        self.cache = AnswerCache()
        self.gateway = Gateway(
            Engine(policy, self.cache, self.log),
            IdentityResolver(identities),
            UpstreamPool(
                upstreams,
                timeout=timeout,
                down_for=down_for,
                tls=upstream_tls,
                probe_interval=probe_interval,
            ),
        )
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._closers: list[Any] = []

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def run(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.call(wrapper())

    def __enter__(self) -> RunningGateway:
        self._thread.start()

        async def start() -> None:
            udp = await serve_udp(
                self.gateway, udp_socket("127.0.0.1", self.port), batched=self.batched
            )
            self.udp = udp
            tcp = await serve_tcp(self.gateway, tcp_socket("127.0.0.1", self.port))
            self._closers = [udp, tcp]
            if self.tls is not None:
                context = tls_context(str(self.tls[0]), str(self.tls[1]))
                sock = tcp_socket("127.0.0.1", self.tls_port)
                self._closers.append(await serve_tcp(self.gateway, sock, context))

        self.call(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for closer in self._closers:
                closer.close()
            await self.gateway.upstreams.close()
            await asyncio.sleep(0.05)  # let closed connections finish their handlers

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


def kdig(port: int, *args: str, source: str = "127.0.0.1") -> str:
    assert KDIG is not None
    result = subprocess.run(
        [KDIG, "@127.0.0.1", "-p", str(port), "-b", source, "+timeout=2", "+retry=0", *args],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    return result.stdout + result.stderr


def records(output: str) -> list[list[str]]:
    """Record lines of kdig's output, split on whitespace."""
    return [
        line.split()
        for line in output.splitlines()
        if line and not line.startswith(";") and len(line.split()) >= 5
    ]
