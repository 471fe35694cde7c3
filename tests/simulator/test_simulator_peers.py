"""The simulator's protocol parts against independent peers: kdig queries the demo's
internet, radclient sends the gateway a Disconnect-Request."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from ztsim.radius import SharedSecret
from ztsim.simulator import internet, resolver
from ztsim.simulator.pgw import CoaListener, PacketGateway, Session
from ztsim.simulator.scenario import Behaviour, Device

ZONE = internet.Zone(frozenset({"intranet.acme.test", "news.example"}))


async def _kdig(port: int, name: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "kdig",
        "@127.0.0.1",
        "-p",
        str(port),
        name,
        "A",
        "+timeout=2",
        "+retry=0",
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode()


@pytest.mark.skipif(shutil.which("kdig") is None, reason="needs kdig (knot-dnsutils)")
def test_internet_answers_kdig_and_our_resolver() -> None:
    async def run() -> None:
        transport, port = await internet.serve(ZONE)
        try:
            out = await _kdig(port, "news.example")
            assert "status: NOERROR" in out
            assert internet.address_for("news.example") in out
            assert "Flags: qr aa" in out
            assert "status: NXDOMAIN" in await _kdig(port, "unknown.example")
            answer = await resolver.query(("127.0.0.1", port), "127.0.0.7", "intranet.acme.test")
            assert answer.rcode == 0
            assert answer.addresses == (internet.address_for("intranet.acme.test"),)
            assert not answer.blocked
            assert (await resolver.query(("127.0.0.1", port), "127.0.0.7", "x.example")).rcode == 3
        finally:
            transport.close()

    asyncio.run(run())


def test_internet_ignores_garbage() -> None:
    assert ZONE.answer(b"\x00\x01garbage") is None


@pytest.mark.skipif(shutil.which("radclient") is None, reason="needs radclient (freeradius-utils)")
def test_gateway_honours_a_radclient_disconnect() -> None:
    secret = "coa-test-secret"
    device = Device("d", "001010000000077", "3534900698733277", None, Behaviour.EMPLOYEE)

    async def run() -> None:
        gw = PacketGateway(("127.0.0.1", 9), ("127.0.0.1", 9), SharedSecret(secret))
        import ipaddress

        gw.sessions[device.imsi] = Session(
            device, device.imeisv, ipaddress.IPv4Address("127.70.0.5"), "s1", 0.0
        )
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: CoaListener(gw), local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            proc = await asyncio.create_subprocess_exec(
                "radclient",
                "-x",
                "-r",
                "1",
                "-t",
                "2",
                f"127.0.0.1:{port}",
                "disconnect",
                secret,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            out, _ = await proc.communicate(
                b'User-Name = "001010000000077"\nFramed-IP-Address = 127.70.0.5\nMessage-Authenticator = 0x00\n'
            )
            text = out.decode()
            assert "Received Disconnect-ACK" in text, text
            assert gw.sessions == {}
            assert [imsi for imsi, _ in gw.disconnects] == [device.imsi]
            proc = await asyncio.create_subprocess_exec(
                "radclient",
                "-x",
                "-r",
                "1",
                "-t",
                "2",
                f"127.0.0.1:{port}",
                "disconnect",
                secret,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            out, _ = await proc.communicate(b'User-Name = "001010000000077"\n')
            assert "Received Disconnect-NAK" in out.decode()
        finally:
            transport.close()

    asyncio.run(run())
