"""An Open vSwitch site for interop tests: an independent Geneve implementation that
reads ztsim's policy class option and forwards or drops by it.

Three namespaces of our own, nothing in the root namespace:

- `gw`: the ztsim gateway's side (the test puts its TUN device and endpoint here), with
  the underlay address `GW_UNDERLAY` on a veth to the OVS namespace;
- `ovs`: a private ovsdb-server and ovs-vswitchd (userspace datapath: this kernel has no
  geneve device, and no openvswitch module is needed), bridges `brphy` (the underlay
  veth, and the tunnel address `SITE_UNDERLAY` on its internal port, as OVS's userspace
  tunnelling wants) and `brint` (the Geneve port, and a veth to the service);
- `svc`: the site's service, `SERVICE` on the other end of that veth.

The OpenFlow rules on `brint` are the site's enforcement: the policy class option is
mapped to `tun_metadata0`, packets from the tunnel go to the service only when it
equals the allowed (generation, class), everything else from the tunnel is dropped by a
rule of its own (`COOKIE_DROP`), so its counter says how many were refused.

OVS runs from a private directory (database, sockets, pid and log files), never as a
system service; `close` stops both daemons by their pids and deletes the namespaces.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ztsim.net.geneve import PORT
from ztsim.net.identity_option import OPTION_CLASS, TYPE_POLICY_CLASS, ClassTag

from support.netns_hosts import IP, entered, ip, netns_unusable, new_tag, reap_stale

BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")

GW_UNDERLAY, SITE_UNDERLAY = "192.0.2.1", "192.0.2.2"  # RFC 5737 TEST-NET-1, private here
SERVICE, SERVICE_ROUTER = "10.20.0.5", "10.20.0.1"
UE_PREFIX = "10.45.0.0/16"
# The MAC ztsim's end of the tunnel uses (locally administered, RFC 7042 §2.1); the
# service reaches it through a permanent neighbour entry for its router's address.
GATEWAY_MAC = "02:5a:00:00:00:01"
SITE_UNDERLAY_MAC = "02:5a:00:00:00:02"  # brphy's, fixed so the gateway need not ARP

COOKIE_ALLOW, COOKIE_DROP, COOKIE_RETURN = 0x5A01, 0x5A02, 0x5A03
_WAIT = 10.0  # seconds for a daemon to come up
# ovs-vswitchd's revalidators read the datapath's flow statistics every 500 ms
# (other_config:max-revalidator): a little more than that between two readings.
_REVALIDATED = 0.6
_ETH_P_IP = 0x0800  # linux/if_ether.h: the packet socket's protocol, IPv4 frames
_SIOCETHTOOL = 0x8946  # linux/sockios.h
_ETHTOOL_STXCSUM = 0x17  # linux/ethtool.h: set transmit checksum offload


def ovs_unusable() -> str:
    """Why an OVS site cannot be built here ("" when it can)."""
    reason = netns_unusable()
    if reason:
        return reason
    missing = [b for b in BINARIES if _which(b) is None]
    if missing:
        return f"needs Open vSwitch (Debian openvswitch-switch): {', '.join(missing)} not found"
    if not SCHEMA.exists():
        return f"needs Open vSwitch's schema {SCHEMA}"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (OVS's internal ports in the userspace datapath)"
    return ""


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def tlv_map() -> str:
    """The site operator's mapping of ztsim's policy class option to a match field."""
    return f"{{class={OPTION_CLASS:#06x},type={TYPE_POLICY_CLASS:#04x},len=8}}->tun_metadata0"


def tag_value(tag: ClassTag) -> str:
    """tun_metadata0 as OVS shows and matches it: generation then class, 8 octets."""
    return f"{(tag.generation << 32) | tag.class_id:#018x}"


@dataclass
class OvsSite:
    """The three namespaces and the OVS daemons. A context manager; `close` undoes all."""

    vni: int
    allowed: ClassTag
    tag: str = field(default_factory=new_tag)
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ztsim-ovs-")))
    service_mac: str = ""
    _spaces: list[str] = field(default_factory=list)
    _daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def gw_ns(self) -> str:
        return f"{self.tag}-gw"

    @property
    def ovs_ns(self) -> str:
        return f"{self.tag}-ovs"

    @property
    def svc_ns(self) -> str:
        return f"{self.tag}-svc"

    def __enter__(self) -> OvsSite:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the commands, all against our private run directory ------------------------

    def _env(self) -> dict[str, str]:
        run = str(self.run_dir)
        return {**os.environ, "OVS_RUNDIR": run, "OVS_DBDIR": run, "OVS_LOGDIR": run}

    def _tool(self, *argv: str, timeout: float = 10) -> str:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=self._env()
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def vsctl(self, *args: str) -> str:
        return self._tool("ovs-vsctl", f"--db=unix:{self.run_dir}/db.sock", "--timeout=10", *args)

    def ofctl(self, *args: str) -> str:
        return self._tool("ovs-ofctl", *args)

    def appctl(self, *args: str) -> str:
        return self._tool("ovs-appctl", f"--target={self.run_dir}/ovs-vswitchd.ctl", *args)

    def flow_packets(self, cookie: int) -> int:
        """n_packets of the rule with `cookie` on brint (OVS adds a datapath flow's
        packets to its rule when the revalidator pulls the statistics)."""
        text = self.ofctl("dump-flows", "brint", f"cookie={cookie:#x}/-1")
        counts = [int(n) for n in re.findall(r"n_packets=(\d+)", text)]
        if not counts:
            raise AssertionError(f"no rule with cookie {cookie:#x}: {text}")
        return sum(counts)

    def settled_packets(self, cookie: int) -> int:
        """n_packets of a rule once two readings a revalidator round apart agree, so
        that a count taken before sending is not still catching up with earlier packets."""
        last = self.flow_packets(cookie)
        for _ in range(10):
            time.sleep(_REVALIDATED)
            now = self.flow_packets(cookie)
            if now == last:
                return now
            last = now
        raise AssertionError(f"rule {cookie:#x} kept counting: {last}")

    def packets_reaching(self, cookie: int, expected: int) -> int:
        """n_packets of a rule once it is at least `expected` (or after 5 s)."""
        deadline = time.monotonic() + 5
        count = self.flow_packets(cookie)
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.flow_packets(cookie)
        return count

    def pin_gateway_mac(self, mac: str) -> None:
        """What the site's operator does with ztsim's MAC on the tunnel (the API's
        `gateway_mac`): the permanent neighbour entry of the service's route to the UEs."""
        neighbour = f"{SERVICE_ROUTER} lladdr {mac} nud permanent dev svc"
        ip("-n", self.svc_ns, "neigh", "replace", *neighbour.split())

    def frames_to_service(self) -> socket.socket:
        """A packet socket on the service's link (AF_PACKET, IPv4 frames, with their
        Ethernet header): what came out of the tunnel, addresses included. The caller
        closes it."""
        with entered(self.svc_ns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP))
            try:
                sock.bind(("svc", _ETH_P_IP))
            except BaseException:
                sock.close()
                raise
        return sock

    def vswitchd_log(self) -> str:
        path = self.run_dir / "ovs-vswitchd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- building it ----------------------------------------------------------------

    def _open(self) -> None:
        reap_stale()
        for ns in (self.gw_ns, self.ovs_ns, self.svc_ns):
            ip("netns", "add", ns)
            self._spaces.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            # IPv4 only: no router solicitations or MLD reports to wander into OVS.
            for scope in ("all", "default"):
                ip("netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1")
        # The underlay: gw <-> ovs; the service's leg: ovs <-> svc (peers made in place).
        for ns, link, peer, peer_ns in (
            (self.gw_ns, "under", "under", self.ovs_ns),
            (self.ovs_ns, "tosvc", "svc", self.svc_ns),
        ):
            ip(
                "-n",
                ns,
                "link",
                "add",
                link,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                peer_ns,
            )
            ip("-n", ns, "link", "set", link, "up")
            ip("-n", peer_ns, "link", "set", peer, "up")
        ip("-n", self.gw_ns, "addr", "add", f"{GW_UNDERLAY}/24", "dev", "under")
        ip("-n", self.svc_ns, "addr", "add", f"{SERVICE}/24", "dev", "svc")
        # The service answers the UEs through its "router", which is ztsim's end of the
        # tunnel: a permanent neighbour, since nothing in the tunnel answers ARP.
        ip("-n", self.svc_ns, "route", "add", UE_PREFIX, "via", SERVICE_ROUTER)
        self.pin_gateway_mac(GATEWAY_MAC)
        self.service_mac = _mac(self.svc_ns, "svc")
        # Both senders into OVS's AF_PACKET sockets: ztsim's underlay and the service.
        transmit_checksums_in_software(self.gw_ns, "under")
        transmit_checksums_in_software(self.svc_ns, "svc")
        self._start_daemons()
        self._bridges()

    def _spawn(self, daemon: str, *args: str) -> subprocess.Popen[bytes]:
        """`daemon` in the OVS namespace, in the foreground (its pid is ours to stop),
        its pid file, control socket and log in the run directory."""
        run = self.run_dir
        files = f"--pidfile={run}/{daemon}.pid --unixctl={run}/{daemon}.ctl"
        files += f" --log-file={run}/{daemon}.log --no-chdir -vconsole:off -vfile:info"
        # setpriv (util-linux): SIGTERM when the test's thread goes (the parent death
        # signal survives exec), so a run killed outright leaves no daemon behind.
        setpriv = _which("setpriv")
        guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        proc = subprocess.Popen(
            [*guard, IP or "ip", "netns", "exec", self.ovs_ns, daemon, *args, *files.split()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env(),
        )
        self._daemons.append(proc)
        return proc

    def _wait_for(self, path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
        deadline = time.monotonic() + _WAIT
        while not path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {self._logs()}")
            time.sleep(0.02)

    def _logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-2000:] for p in sorted(self.run_dir.glob("*.log"))
        )

    def _start_daemons(self) -> None:
        run = self.run_dir
        self._tool("ovsdb-tool", "create", f"{run}/conf.db", str(SCHEMA))
        db = self._spawn("ovsdb-server", f"{run}/conf.db", f"--remote=punix:{run}/db.sock")
        self._wait_for(run / "db.sock", db, "ovsdb-server")
        self.vsctl("--no-wait", "init")  # the database's root row
        vswitchd = self._spawn("ovs-vswitchd", f"unix:{run}/db.sock", "--disable-system")
        self._wait_for(run / "ovs-vswitchd.ctl", vswitchd, "ovs-vswitchd")

    def _bridges(self) -> None:
        # brphy: the underlay NIC and, on its internal port, the tunnel's own address:
        # OVS's userspace tunnelling routes and resolves through it (tnl/neigh).
        self.vsctl(
            *shlex.split(
                "add-br brphy -- set bridge brphy datapath_type=netdev"
                f" other_config:hwaddr='\"{SITE_UNDERLAY_MAC}\"' -- add-port brphy under"
            )
        )
        ip("-n", self.ovs_ns, "addr", "add", f"{SITE_UNDERLAY}/24", "dev", "brphy")
        ip("-n", self.ovs_ns, "link", "set", "brphy", "up")
        # brint: the tunnel (port 1) and the service (port 2); secure: only our rules.
        self.vsctl(
            *shlex.split(
                "add-br brint -- set bridge brint datapath_type=netdev fail-mode=secure"
                " -- add-port brint tosvc -- set interface tosvc ofport_request=2"
                " -- add-port brint gnv -- set interface gnv type=geneve ofport_request=1"
                f" options:remote_ip={GW_UNDERLAY} options:key={self.vni}"
                f" options:dst_port={PORT}"
            )
        )
        self.ofctl("add-tlv-map", "brint", tlv_map())
        flows = [
            f"cookie={COOKIE_ALLOW:#x},priority=100,in_port=1,"
            f"tun_metadata0={tag_value(self.allowed)},actions=output:2",
            f"cookie={COOKIE_DROP:#x},priority=10,in_port=1,actions=drop",
            f"cookie={COOKIE_RETURN:#x},priority=100,in_port=2,ip,nw_dst={UE_PREFIX},"
            "actions=output:1",
            "priority=0,actions=drop",
        ]
        (self.run_dir / "flows.txt").write_text("\n".join(flows) + "\n")
        self.ofctl("add-flows", "brint", str(self.run_dir / "flows.txt"))
        # Each end's underlay neighbour, fixed: the packet that set off an ARP exchange
        # through OVS was seen lost, and a test's TCP would wait a second to resend it.
        self.appctl("tnl/neigh/set", "brphy", GW_UNDERLAY, _mac(self.gw_ns, "under"))
        neighbour = f"{SITE_UNDERLAY} lladdr {SITE_UNDERLAY_MAC} nud permanent dev under"
        ip("-n", self.gw_ns, "neigh", "replace", *neighbour.split())

    def close(self) -> None:
        for proc in reversed(self._daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._daemons.clear()
        for ns in reversed(self._spaces):
            ip("netns", "del", ns, check=False)
        self._spaces.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def transmit_checksums_in_software(ns: str, link: str) -> None:
    """Turn off `link`'s transmit checksum offload (ethtool -K LINK tx off, without
    ethtool). A veth hands its peer packets whose UDP/TCP checksum is only started (the
    offload a real NIC completes on the wire); OVS reads the peer with an AF_PACKET
    socket, takes the checksum as it is, and drops the Geneve datagram as corrupt
    (coverage counter datapath_drop_tunnel_pop_error). With the offload off, the kernel
    writes the whole checksum, as a real wire would carry it."""
    value = ctypes.create_string_buffer(struct.pack("=II", _ETHTOOL_STXCSUM, 0))
    request = struct.pack("@16sP16x", link.encode(), ctypes.addressof(value))
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        fcntl.ioctl(sock, _SIOCETHTOOL, request)


def _mac(ns: str, link: str) -> str:
    found = re.search(r"link/ether ([0-9a-f:]{17})", ip("-n", ns, "link", "show", link))
    if found is None:
        raise RuntimeError(f"{link} in {ns} has no MAC")
    return found.group(1)
