"""A model of what the tunnel plan's steps do to a gateway, strict where the kernel is:
a device made twice, a route into a missing device, a route deleted that is not there
all fail, so a plan that relies on luck fails its property test."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_network

from ztsim.net.sites import Prefix
from ztsim.net.tunnel_plan import Action, CloseTun, Command, OpenTun, UseGeneve
from ztsim.net.tunnel_state import GeneveConfig, Link, Route, State

FRESH_MTU = 1500  # what a new device starts with


@dataclass
class Gateway:
    links: dict[str, Link] = field(default_factory=dict)
    routes: dict[Prefix, tuple[str, int | None]] = field(default_factory=dict)  # device, MTU
    geneve: GeneveConfig | None = None
    proxy_arp: set[str] = field(default_factory=set)

    def state(self) -> State:
        routes = frozenset(Route(p, d, mtu) for p, (d, mtu) in self.routes.items())
        return State(dict(self.links), routes, self.geneve)

    def run(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if isinstance(action, Command):
                self._command(action)
            elif isinstance(action, OpenTun):
                assert self.geneve is None, "opened twice"
                assert action.name not in self.links, "opened over a device"
                self.links[action.name] = Link(action.name, "tun", FRESH_MTU, False)
                self.geneve = GeneveConfig((), ())
            elif isinstance(action, CloseTun):
                assert self.geneve is not None, "closed when not open"
                self._remove(action.name)
                self.geneve = None
            elif isinstance(action, UseGeneve):
                assert self.geneve is not None, "configured when not open"
                self.geneve = action.config

    def _remove(self, name: str) -> None:
        self.links.pop(name, None)
        self.proxy_arp.discard(name)
        self.routes = {p: r for p, r in self.routes.items() if r[0] != name}

    def _command(self, command: Command) -> None:
        args = command.args
        if command.tool == "sysctl":
            name = args[1].split(".")[3]
            assert name in self.links, args
            assert args[1:] == (
                f"net.ipv4.conf.{name}.proxy_arp=1",
                f"net.ipv4.neigh.{name}.proxy_delay=0",
            ), args
            self.proxy_arp.add(name)
            return
        assert command.tool == "ip", command
        match args:
            case ("link", "add", name, "type", "vxlan", "id", vni, "remote", remote, *rest):
                assert name not in self.links, f"{name} exists"
                assert rest[0::2] == ["local", "dstport"], rest
                link = Link(
                    name, "vxlan", FRESH_MTU, False, int(vni), remote, rest[1], int(rest[3])
                )
                self.links[name] = link
            case ("link", "del", "dev", name):
                assert name in self.links, f"no {name} to delete"
                self._remove(name)
            case ("link", "set", "dev", name, "mtu", mtu, "up"):
                old = self.links[name]
                self.links[name] = Link(
                    name, old.kind, int(mtu), True, old.vni, old.remote, old.local, old.port
                )
            case ("route", "replace", prefix, "dev", name, *mtu):
                assert name in self.links, f"route into missing {name}"
                assert not mtu or (len(mtu) == 2 and mtu[0] == "mtu"), args
                # `replace` sets the route anew: an MTU not given is the device's again.
                self.routes[ip_network(prefix)] = (name, int(mtu[1]) if mtu else None)
            case ("route", "del", prefix, "dev", name):
                assert self.routes.pop(ip_network(prefix))[0] == name, args
            case _:
                raise AssertionError(f"unexpected ip {args}")
