"""Two orgs, each with its packet gateway in a network namespace of its own, real RADIUS
(radclient) and DNS (kdig) traffic: the second org's pool overlapping the first's is
refused, and neither org's gateway or devices ever reach the other org's sessions or
policy."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.store import repository as dns_repo
from ztsim.errors import Conflict
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.serve.service import AaaService, AaaSettings
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo

from support.radius_world import RADCLIENT, SECRET, World, access, accounting, build_world

KDIG = shutil.which("kdig")
IP = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
T = TypeVar("T")
# The test's own link networks, one /30 per namespace: host end .1, namespace end .2.
HOST_A, NS_A, HOST_B, NS_B = "10.200.71.1", "10.200.71.2", "10.200.72.1", "10.200.72.2"
UE_A, UE_B = "10.64.0.1", "10.66.0.1"  # the first address of each org's pool


def _netns_usable() -> str:
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if IP is None or RADCLIENT is None or KDIG is None:
        return "needs ip (iproute2), radclient (freeradius-utils) and kdig (knot-dnsutils)"
    probe = subprocess.run([IP, "netns", "list"], capture_output=True, check=False)
    return "" if probe.returncode == 0 else "ip netns is not available here"


_SKIP = _netns_usable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")]


def _ip(*args: str) -> None:
    assert IP is not None
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


@contextmanager
def _namespaces() -> Iterator[tuple[str, str]]:
    tag = f"zt{os.getpid() % 100000}"
    made: list[tuple[str, str]] = []
    try:
        for side, host, peer, ue in (("a", HOST_A, NS_A, UE_A), ("b", HOST_B, NS_B, UE_B)):
            ns, veth = f"{tag}{side}", f"{tag}{side}h"
            _ip("netns", "add", ns)
            made.append((ns, veth))
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{tag}{side}n")
            _ip("link", "set", f"{tag}{side}n", "netns", ns)
            _ip("addr", "add", f"{host}/30", "dev", veth)
            _ip("link", "set", veth, "up")
            inside = ("netns", "exec", ns, IP or "ip")
            _ip(*inside, "addr", "add", f"{peer}/30", "dev", f"{tag}{side}n")
            _ip(*inside, "addr", "add", f"{ue}/32", "dev", f"{tag}{side}n")
            _ip(*inside, "link", "set", f"{tag}{side}n", "up")
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "route", "add", "default", "via", host)
            # The UE address lives behind its packet gateway, as in a mobile core.
            _ip("route", "add", f"{ue}/32", "via", peer, "dev", veth)
        yield made[0][0], made[1][0]
    finally:
        for ns, veth in made:
            subprocess.run([IP or "ip", "link", "del", veth], capture_output=True, check=False)
            subprocess.run([IP or "ip", "netns", "del", ns], capture_output=True, check=False)


def _in(ns: str, *command: str, stdin: str = "") -> str:
    done = subprocess.run(
        [IP or "ip", "netns", "exec", ns, *command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


def _radclient(ns: str, port: int, kind: str, attributes: str) -> str:
    assert RADCLIENT is not None
    target = f"{HOST_A}:{port}"
    return _in(ns, RADCLIENT, "-x", "-r", "1", "-t", "2", target, kind, SECRET, stdin=attributes)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def _override(engine: Engine, world: World, answer: str) -> None:
    rule = Rule("who", Action.OVERRIDE, domains=("who.test",), answer=(answer,))
    with engine.begin() as conn:
        dns_repo.create_rule(conn, world.org_id, rule, None, datetime.now(UTC))


def _orgs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.orgs)).scalar_one())


def test_two_orgs_gateways_in_namespaces_never_reach_each_other(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    engine = sqlite_engine
    alpha = build_world(engine, sealer, seed=41, address=NS_A)
    # The same pool for the second org: refused, and nothing of that org is written.
    with pytest.raises(Conflict, match="already claimed"):
        build_world(engine, sealer, seed=42, address=NS_B)
    assert _orgs(engine) == 1
    bravo = build_world(
        engine, sealer, seed=42, address=NS_B, pool=("10.66.0.0/16", "10.67.0.0/24")
    )
    _override(engine, alpha, "192.0.2.101")
    _override(engine, bravo, "192.0.2.102")

    with _namespaces() as (ns_a, ns_b):
        loop = _Loop()
        settings = AaaSettings(
            host=HOST_A, auth_port=0, acct_port=0, reply=ReplySettings(dns_primary=HOST_A)
        )
        aaa = AaaService(engine, sealer, settings)
        dns_port = _free_port(HOST_A)
        dns = GatewayProcess(
            GatewayOptions(
                HOST_A, dns_port, [], None, database=engine, store_key=lambda: b"k" * 16
            ),
            None,
        )
        try:
            server = loop.run(aaa.start())
            loop.run(dns.start(refresher=False))
            auth, acct = server.auth_port, server.acct_port
            # Bravo's gateway sends accounting for alpha's SIM at alpha's address first,
            # and asks to attach it: no session, a reject.
            steal = accounting("Start", "steal-1", alpha.active)
            assert "Received Accounting-Response" in _radclient(ns_b, acct, "acct", steal)
            assert "Access-Reject" in _radclient(ns_b, auth, "auth", access(alpha.active))
            # Each org's own SIM through its own gateway.
            out = _radclient(ns_a, auth, "auth", access(alpha.active))
            assert f"Framed-IP-Address = {UE_A}" in out, out
            out = _radclient(ns_a, acct, "acct", accounting("Start", "a-1", alpha.active))
            assert "Received Accounting-Response" in out, out
            out = _radclient(ns_b, auth, "auth", access(bravo.active))
            assert f"Framed-IP-Address = {UE_B}" in out, out
            start_b = accounting("Start", "b-1", bravo.active).replace(UE_A, UE_B)
            assert "Received Accounting-Response" in _radclient(ns_b, acct, "acct", start_b)
            loop.run(aaa.flush())

            async def reload() -> None:
                dns.reload()

            loop.run(reload())
            assert KDIG is not None
            ask = (KDIG, "-p", str(dns_port), "+notcp", "+short", "+time=2", "+retry=1")
            answer_a = _in(ns_a, *ask, "-b", UE_A, f"@{HOST_A}", "who.test", "A")
            answer_b = _in(ns_b, *ask, "-b", UE_B, f"@{HOST_A}", "who.test", "A")
            assert answer_a.split() == ["192.0.2.101"], answer_a
            assert answer_b.split() == ["192.0.2.102"], answer_b
        finally:
            loop.run(dns.stop())
            loop.run(aaa.stop())
            loop.close()

    with engine.connect() as conn:
        for world, imsi, ue in ((alpha, alpha.active, UE_A), (bravo, bravo.active, UE_B)):
            live, _ = sessions_repo.list_sessions(conn, world.org_id, sessions_repo.SessionFilter())
            assert [(s.session.imsi, s.session.ue_address) for s in live] == [(imsi, ue)]
        refused = conn.execute(
            select(schema.events.c.org_id, schema.events.c.payload).where(
                schema.events.c.kind == "radius.accounting_refused"
            )
        ).all()
    # In bravo's log only, with nothing of alpha's SIM but the IMSI bravo's gateway sent.
    assert [org for org, _ in refused] == [bravo.org_id]
    assert "imei" not in refused[0][1]
