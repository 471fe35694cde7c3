"""The gateway's tunnels made real: kernel VXLAN devices, the Geneve endpoint, routes.

`Tunnels.apply(sites)` reads what the kernel has (`ip -j`), asks `tunnel_plan.plan` for
the steps and runs them: `ip` commands in one `ip -batch -` process per run of them,
`sysctl` for the VXLAN devices' proxy ARP, and the userspace Geneve endpoint (a TUN
device and a UDP socket on the underlay address, port 6081, pumped by one thread)
opened, reconfigured or closed. Every command runs as a separate process under
`prefix` (e.g. `ip netns exec NS`), the way `net.nft` runs nft: no netlink library in
ztsim's process.

The TUN device and the socket must live where the commands act: `tun.open_endpoint`
opens them in the namespace of a process started under the same `prefix`; the role's
own threads stay where they were.

Failures (a missing tool, a refused command, a device that cannot be opened) come back
as `TunnelError` with the tool's message; the kernel is read again on the next `apply`,
so a failed one is finished by the next.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from ipaddress import ip_network
from typing import Any

from ztsim.errors import ZtsimError
from ztsim.net.endpoint import Endpoint, Site, SubjectLookup
from ztsim.net.identity_option import Subject
from ztsim.net.sites import endpoint_of
from ztsim.net.store.tunnel_view import SiteTunnel
from ztsim.net.tun import TunnelPump, open_endpoint
from ztsim.net.tunnel_plan import CloseTun, Command, OpenTun, UseGeneve, plan
from ztsim.net.tunnel_routes import TunnelRoutes
from ztsim.net.tunnel_state import GeneveConfig, Link, Route, State, Underlay, is_ours

_log = logging.getLogger(__name__)
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
_MESSAGE = 2_000  # characters of a tool's message kept


class TunnelError(ZtsimError):
    """ip or sysctl failed, or the Geneve endpoint could not be opened."""


def _tool(name: str) -> str:
    return shutil.which(name) or shutil.which(name, path=_SBIN) or name


class Tunnels:
    """The tunnels of one gateway whose underlay address is `underlay`. `subjects` names
    the sender of a packet into a Geneve site (None: dropped, nothing unclassified
    leaves). Not thread-safe: one caller (the role's feed loop) applies."""

    def __init__(
        self,
        underlay: str,
        subjects: Callable[[bytes], Subject | None],
        prefix: tuple[str, ...] = (),
        *,
        timeout: float = 10.0,
        with_identity: bool = True,
    ) -> None:
        self.underlay = str(endpoint_of(underlay))  # InvalidInput when it is not one address
        self._subjects: SubjectLookup = subjects
        self.prefix = prefix
        self._timeout = timeout
        self._with_identity = with_identity
        self._pump: TunnelPump | None = None
        self._config: GeneveConfig | None = None

    @property
    def pump(self) -> TunnelPump | None:
        """The Geneve endpoint's pump (its engine's counters), None while no Geneve site."""
        return self._pump

    def apply(self, sites: Sequence[SiteTunnel]) -> None:
        """Make the gateway carry exactly `sites`; nothing is run when it does already."""
        state, underlay = self._read()
        steps = plan(sites, state, underlay)
        for skipped in steps.skipped:
            _log.warning("site %s not carried: %s", skipped.site_id, skipped.reason)
        batch: list[str] = []
        for action in steps.actions:
            if isinstance(action, Command) and action.tool == "ip":
                batch.append(" ".join(action.args))
                continue
            self._ip_batch(batch)
            batch = []
            if isinstance(action, Command):
                self._run([_tool(action.tool), *action.args])
            elif isinstance(action, OpenTun):
                self._open(action.name)
            elif isinstance(action, CloseTun):
                self._close_pump()
            elif isinstance(action, UseGeneve):
                self._use(action.config)
        self._ip_batch(batch)

    def close(self) -> None:
        """Stop the Geneve endpoint (its device and routes go with it). Kernel devices stay
        for the next role to adopt; `apply([])` first removes everything."""
        self._close_pump()

    # -- the Geneve endpoint -----------------------------------------------------------------

    def _engine(self, config: GeneveConfig) -> Endpoint:
        return Endpoint(
            [Site(s.site_id, s.vni, s.address, s.port, s.ethernet) for s in config.sites],
            TunnelRoutes(config.routes),
            self._subjects,
            with_identity=self._with_identity,
        )

    def _open(self, name: str) -> None:
        self._close_pump()
        try:
            fd, sock = open_endpoint(name, self.underlay, self.prefix, self._timeout)
        except OSError as err:
            raise TunnelError(f"could not open the Geneve endpoint {name}: {err}") from None
        # An engine with no site until the plan's UseGeneve, which comes next.
        self._pump = TunnelPump(self._engine(GeneveConfig((), ())), fd, sock)
        self._config = None
        self._pump.start()

    def _use(self, config: GeneveConfig) -> None:
        if self._pump is None:
            raise TunnelError("the Geneve endpoint is not open")
        self._pump.swap(self._engine(config))
        self._config = config

    def _close_pump(self) -> None:
        if self._pump is not None:
            self._pump.stop()
        self._pump, self._config = None, None

    # -- reading and running -------------------------------------------------------------------

    def _read(self) -> tuple[State, Underlay]:
        ip = _tool("ip")
        addresses = self._json([ip, "-j", "-d", "addr", "show"])
        mtu = underlay_mtu(addresses, self.underlay)
        if mtu is None:
            raise TunnelError(f"the underlay address {self.underlay} is on no device")
        routes = routes_of(self._json([ip, "-j", "-4", "route", "show", "table", "main"]), 4)
        routes |= routes_of(self._json([ip, "-j", "-6", "route", "show", "table", "main"]), 6)
        state = State(links_of(addresses), frozenset(routes), self._config)
        return state, Underlay(self.underlay, mtu)

    def _json(self, argv: list[str]) -> list[Mapping[str, Any]]:
        out = self._run(argv)
        try:
            parsed = json.loads(out or "[]")
        except ValueError:
            raise TunnelError(f"{' '.join(argv[1:])} printed something that is not JSON") from None
        return [p for p in parsed if isinstance(p, dict)] if isinstance(parsed, list) else []

    def _ip_batch(self, lines: list[str]) -> None:
        if lines:
            self._run([_tool("ip"), "-batch", "-"], "\n".join(lines) + "\n")

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - our tool, fixed verbs, parsed values
                [*self.prefix, *argv],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TunnelError(f"{argv[0]} did not finish within {self._timeout} s") from None
        except OSError as err:
            raise TunnelError(f"{argv[0]} could not be started: {err.strerror}") from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip()[:_MESSAGE]
            name = os.path.basename(argv[0])
            raise TunnelError(f"{name} failed: {message or f'exit status {done.returncode}'}")
        return done.stdout


# -- reading `ip -j` ------------------------------------------------------------------------


def underlay_mtu(listing: Sequence[Mapping[str, Any]], address: str) -> int | None:
    """The MTU of the device that holds `address` in `ip -j addr show` output."""
    for item in listing:
        for info in item.get("addr_info", []):
            if isinstance(info, Mapping) and info.get("local") == address:
                mtu = item.get("mtu")
                return mtu if isinstance(mtu, int) else None
    return None


def links_of(listing: Sequence[Mapping[str, Any]]) -> dict[str, Link]:
    """Our devices in `ip -j -d link show` (or `addr show`) output."""
    found: dict[str, Link] = {}
    for item in listing:
        name = item.get("ifname")
        if not isinstance(name, str) or not is_ours(name):
            continue
        info = item.get("linkinfo")
        info = info if isinstance(info, Mapping) else {}
        data = info.get("info_data")
        data = data if isinstance(data, Mapping) else {}
        flags = item.get("flags")
        found[name] = Link(
            name,
            str(info.get("info_kind", "")),
            _int(item.get("mtu")) or 0,
            isinstance(flags, list) and "UP" in flags,
            _int(data.get("id")),
            _text(data.get("remote")),
            _text(data.get("local")),
            _int(data.get("port")),
        )
    return found


def routes_of(listing: Sequence[Mapping[str, Any]], family: int) -> set[Route]:
    """Our routes in `ip -j route show` output of one family (4 or 6), with their own
    MTU (`"metrics": [{"mtu": N}]`) if they have one: a host route is shown without its
    length, the default route as `default`; the kernel's own routes (link-local) are not
    ours."""
    found: set[Route] = set()
    for item in listing:
        device, destination = item.get("dev"), item.get("dst")
        if not isinstance(device, str) or not is_ours(device) or not isinstance(destination, str):
            continue
        if item.get("protocol") == "kernel" or item.get("type", "unicast") != "unicast":
            continue
        text = ("0.0.0.0/0" if family == 4 else "::/0") if destination == "default" else destination
        try:
            found.add(Route(ip_network(text), device, _route_mtu(item.get("metrics"))))
        except ValueError:
            continue
    return found


def _route_mtu(metrics: object) -> int | None:
    """A route's own MTU among its metrics (`ip -j` shows a locked one the same way)."""
    if not isinstance(metrics, list):
        return None
    for metric in metrics:
        if isinstance(metric, Mapping) and "mtu" in metric:
            return _int(metric["mtu"])
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
