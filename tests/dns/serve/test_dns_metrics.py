"""The DNS process's collector: the feed's lag and position, drops, unknown sources,
upstream states, read from a gateway process on the database; rendered and read back."""

from __future__ import annotations

import asyncio
import socket
import struct

from sqlalchemy import Engine

from ztsim.dns.serve.metrics import dns_collector
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.serve.upstream import UpstreamSpec
from ztsim.metrics.exposition import render
from ztsim.metrics.registry import Kind, merge

from support.prometheus_text import Scrape, parse


def _query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)


def _scrape(process: GatewayProcess) -> Scrape:
    return parse(render(dns_collector(process)()).decode())


def test_a_serving_process_reports_its_feed_sources_and_upstreams(engine: Engine) -> None:
    options = GatewayOptions(
        "127.0.0.1",
        0,
        [UpstreamSpec("127.0.0.1", 9), UpstreamSpec("127.0.0.1", 19)],
        None,
        database=engine,
        store_key=lambda: b"k" * 16,
    )
    process = GatewayProcess(options, None)
    before = _scrape(process)
    assert before.value("ztsim_feed_connected", role="dns") == 1
    assert before.value("ztsim_feed_position", role="dns") == process.position()
    assert before.value("ztsim_dns_upstreams", state="up") == 2
    assert before.value("ztsim_dns_upstreams", state="down") == 0

    async def ask_from_nowhere() -> Scrape:
        await process.start()
        try:
            port = process.options.port or _udp_port(process)
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.setblocking(False)
                await loop.sock_connect(client, ("127.0.0.1", port))
                await loop.sock_sendall(client, _query("example.test"))
                async with asyncio.timeout(10):
                    answer = await loop.sock_recv(client, 512)
            assert answer[3] & 0x0F == 5  # REFUSED: nobody is behind 127.0.0.1
            return _scrape(process)
        finally:
            await process.stop()

    after = asyncio.run(ask_from_nowhere())
    # The unknown source waited once for the feed's next read before it was refused.
    assert after.value("ztsim_dns_unknown_source_total", result="waited") == 1
    assert after.value("ztsim_dns_unknown_source_waiting") == 0
    assert after.value("ztsim_dns_dropped_total", transport="udp") == 0
    assert 0 <= after.value("ztsim_feed_lag_seconds", role="dns") < 30
    assert after.types["ztsim_dns_querylog_dropped_total"] == "counter"
    assert after.value("ztsim_dns_queries_total", transport="udp") == 1
    assert after.value("ztsim_dns_queries_total", transport="tcp") == 0
    assert after.value("ztsim_dns_responses_total", verdict="refused_unknown_source") == 1
    assert after.value("ztsim_dns_responses_total", verdict="allowed") == 0


def _udp_port(process: GatewayProcess) -> int:
    for server in process._servers:
        sock = getattr(server, "sock", None)
        if sock is not None and sock.type == socket.SOCK_DGRAM:
            return int(sock.getsockname()[1])
    raise AssertionError("no UDP server")


def test_workers_merge_into_one_scrape(engine: Engine) -> None:
    options = GatewayOptions("127.0.0.1", 0, [], None, database=engine, store_key=lambda: b"k" * 16)
    first, second = GatewayProcess(options, None), GatewayProcess(options, None)
    merged = merge({"1": dns_collector(first)(), "2": dns_collector(second)()})
    kinds = {family.name: family.kind for family in merged}
    assert kinds["ztsim_feed_lag_seconds"] is Kind.GAUGE
    scrape = parse(render(merged).decode())
    assert set(scrape.series("ztsim_feed_lag_seconds")) == {
        (("process", "1"), ("role", "dns")),
        (("process", "2"), ("role", "dns")),
    }
    assert scrape.value("ztsim_dns_querylog_dropped_total") == 0
