"""Hosts as network namespaces on one bridge, for tests and benchmarks of several
processes that must each have an address of their own (needs root and iproute2).

`Fabric` makes a bridge in the root namespace (its address `gateway`, the .1 of a /24
picked at random among those the root namespace does not use), then one namespace per
`add_host`, joined to the bridge by a veth pair. Every name carries a tag unique to the
run, so runs side by side never meet, and `close` removes all of it, also after a
failure half-way (a namespace's end of a veth pair goes with the namespace; the root
end is deleted explicitly in case the namespace is gone already). The tag holds the
creating process's id: what a run killed outright (SIGKILL) left behind is removed by
the next one (`reap_stale`).

The root namespace's routes are left alone apart from the bridge's own /24: prefixes
behind a host (a packet gateway's UE addresses) are routed inside the namespaces
(`route`), and `local_prefix` lets a host's sockets bind any address of a prefix
(the UE addresses a packet gateway speaks for) without adding each one.

`entered(ns)` moves the calling thread, and only it, into a namespace: sockets made
there stay in it, whichever thread uses them afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import random
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Network

IP = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_unusable() -> str:
    """Why namespaces cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if IP is None:
        return "needs ip (iproute2)"
    probe = subprocess.run([IP, "netns", "list"], capture_output=True, check=False)
    return "" if probe.returncode == 0 else "ip netns is not available here"


def ip(*args: str, check: bool = True) -> str:
    assert IP is not None
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), path)
    finally:
        os.close(fd)


@contextmanager
def entered(ns: str) -> Iterator[None]:
    """The calling thread in namespace `ns` for the block (network namespaces are per
    thread: the rest of the process stays where it was)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(f"{NETNS_DIR}/{ns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:  # never leave a thread stranded
                raise OSError(ctypes.get_errno(), "could not return to the own namespace")
    finally:
        os.close(own)


def enter_for_good(ns: str) -> None:
    """Move the calling thread into `ns` for the rest of its life (a thread that only
    talks from inside it)."""
    _setns(f"{NETNS_DIR}/{ns}")


def udp_socket_in(ns: str, bind: tuple[str, int]) -> socket.socket:
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(bind)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class Host:
    name: str
    ns: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        assert IP is not None
        return [IP, "netns", "exec", self.ns, *argv]

    def run(self, *argv: str, timeout: float = 30) -> str:
        done = subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        return done.stdout + done.stderr


_made = itertools.count()
_TAGGED = re.compile(r"^z([0-9a-f]{6})[0-9a-f](?:-|br$|[hn][0-9]+$)")


def new_tag() -> str:
    """8 characters: "z", this process's id, a counter (interface names hold 15)."""
    return f"z{os.getpid() % 0x1000000:06x}{next(_made) % 16:x}"


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def reap_stale() -> None:
    """Remove the namespaces and links of fabrics whose process is gone."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        found = _TAGGED.match(name)
        if found and not _alive(int(found.group(1), 16)):
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show").splitlines():
        fields = line.split(":")
        name = fields[1].strip().split("@")[0] if len(fields) > 1 else ""
        found = _TAGGED.match(name)
        if found and not _alive(int(found.group(1), 16)):
            ip("link", "del", name, check=False)


def _used_networks() -> list[IPv4Network]:
    used = []
    for line in ip("-4", "-o", "addr", "show").splitlines():
        fields = line.split()
        if "inet" in fields:
            used.append(IPv4Network(fields[fields.index("inet") + 1], strict=False))
    for line in ip("-4", "route", "show").splitlines():
        first = line.split()[0] if line.split() else ""
        if first and first != "default":
            with contextlib.suppress(ValueError):
                used.append(IPv4Network(first, strict=False))
    return used


def _free_subnet(base: str) -> IPv4Network:
    """A /24 of `base` (a /16) that nothing in the root namespace touches."""
    used = _used_networks()
    candidates = list(IPv4Network(base).subnets(new_prefix=24))
    random.shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /24 left in {base}")


@dataclass
class Fabric:
    """A bridge with hosts on it. Use as a context manager; `close` undoes everything."""

    base: str = "10.77.0.0/16"
    tag: str = field(default_factory=new_tag)
    subnet: IPv4Network | None = None
    hosts: dict[str, Host] = field(default_factory=dict)
    _links: list[str] = field(default_factory=list)
    _spaces: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def open(self) -> Fabric:
        reap_stale()
        self.subnet = _free_subnet(self.base)
        ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def __enter__(self) -> Fabric:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str, number: int) -> Host:
        """A namespace with address .`number` of the subnet (2-254)."""
        assert self.subnet is not None
        assert 2 <= number <= 254
        index = len(self.hosts)
        ns, outside, inside = f"{self.tag}-{name}", f"{self.tag}h{index}", f"{self.tag}n{index}"
        address = str(self.subnet.network_address + number)
        ip("netns", "add", ns)
        self._spaces.append(ns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        self._links.append(outside)
        ip("link", "set", inside, "netns", ns)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        inner = ("netns", "exec", ns, IP or "ip")
        ip(*inner, "addr", "add", f"{address}/24", "dev", inside)
        ip(*inner, "link", "set", inside, "up")
        ip(*inner, "link", "set", "lo", "up")
        ip(*inner, "route", "add", "default", "via", self.gateway)
        host = Host(name, ns, address)
        self.hosts[name] = host
        return host

    def route(self, host: Host, prefix: str, via: Host) -> None:
        """Inside `host`: `prefix` lies behind `via` (a packet gateway's UE addresses)."""
        ip("netns", "exec", host.ns, IP or "ip", "route", "add", prefix, "via", via.address)

    def local_prefix(self, host: Host, prefix: str) -> None:
        """`host` owns every address of `prefix`: its sockets may bind any of them."""
        ip("netns", "exec", host.ns, IP or "ip", "route", "add", "local", prefix, "dev", "lo")

    def refuse(self, host: Host, address: str, refused: bool = True) -> None:
        """Inside `host`: connections to `address` fail at once (a prohibit route), or
        work again (`refused=False`)."""
        verb = "add" if refused else "del"
        ip("netns", "exec", host.ns, IP or "ip", "route", verb, "prohibit", f"{address}/32")

    def close(self) -> None:
        for link in reversed(self._links):
            ip("link", "del", link, check=False)
        for ns in reversed(self._spaces):
            ip("netns", "del", ns, check=False)
        self._links.clear()
        self._spaces.clear()
