"""Active health checks: the probe schedule on its own (fake time), then a real pool whose
UDP upstream (dnsmasq) is restarted, one that never answers, and the pool's close."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from ztsim.dns.serve.upstream import UpstreamPool
from ztsim.dns.serve.upstream_health import PROBE, ProbeSchedule
from ztsim.dns.wire.constants import RRType
from ztsim.dns.wire.message import Flag, Message, Question, decode_message

from support.dns_gateway_harness import DNSMASQ, dnsmasq, free_port

needs_dnsmasq = pytest.mark.skipif(DNSMASQ is None, reason="needs dnsmasq (dnsmasq-base)")
UP = 0.0


def test_probe_is_a_root_ns_query() -> None:
    message = decode_message(PROBE)
    assert message.questions == (Question("", RRType.NS),)  # the root
    assert Flag.RD in message.flags
    assert Flag.QR not in message.flags


def test_first_probe_comes_an_interval_after_the_failure() -> None:
    schedule = ProbeSchedule(2, interval=2.0)
    schedule.marked_down(0, now=100.0)
    down = [105.0, UP]
    assert schedule.due(down, 100.0) == []
    assert schedule.wait(down, 100.0) == 2.0
    assert schedule.due(down, 101.9) == []
    assert schedule.due(down, 102.0) == [0]


def test_one_probe_in_flight_per_upstream() -> None:
    schedule = ProbeSchedule(2, interval=1.0)
    down = [50.0, 50.0]
    assert schedule.due(down, 10.0) == [0, 1]
    # Both still out, long past the interval: nothing more is sent.
    assert schedule.due(down, 15.0) == []
    assert schedule.wait(down, 15.0) == 1.0  # look again later, they are in flight
    schedule.finished(1)
    assert schedule.due(down, 15.0) == [1]
    assert schedule.due(down, 15.5) == []
    schedule.finished(1)
    assert schedule.wait(down, 15.5) == pytest.approx(0.5)
    assert schedule.due(down, 16.0) == [1]


def test_nothing_down_nothing_probed_and_the_watch_ends() -> None:
    schedule = ProbeSchedule(2, interval=1.0)
    assert schedule.due([UP, 9.0], 10.0) == []  # down until 9: up again at 10
    assert schedule.wait([UP, 9.0], 10.0) is None
    assert schedule.due([UP, 11.0], 10.0) == [1]
    schedule.finished(1)
    assert schedule.wait([UP, UP], 10.5) is None


def test_repeated_failures_do_not_push_the_probe_back() -> None:
    schedule = ProbeSchedule(1, interval=2.0)
    schedule.marked_down(0, now=10.0)
    schedule.marked_down(0, now=11.0)  # a client's query failed there again
    assert schedule.due([20.0], 12.0) == [0]


def _query(name: str) -> bytes:
    return Message(id=7, flags=Flag.RD, questions=(Question(name, 1),)).to_wire()


@needs_dnsmasq
def test_restarted_upstream_is_back_before_down_for_ends(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 back.example.test\n")
    port = free_port()

    async def main() -> None:
        pool = UpstreamPool([("127.0.0.1", port)], timeout=0.3, down_for=60, probe_interval=0.1)
        try:
            assert await pool.query(_query("back.example.test")) is None  # nobody there
            upstream = pool.upstreams[0]
            assert upstream.down_until > time.monotonic() + 50
            with dnsmasq(hosts, port=port):
                deadline = time.monotonic() + 5
                while upstream.down_until > 0:
                    assert time.monotonic() < deadline, "the restarted upstream was not probed"
                    await asyncio.sleep(0.05)
                answer = await pool.query(_query("back.example.test"))
                assert answer is not None
                assert decode_message(answer).answers[0].rdata == bytes([192, 0, 2, 7])
        finally:
            await pool.close()

    asyncio.run(main())


def test_probes_of_a_silent_upstream_stay_bounded() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        port = silent.getsockname()[1]

        async def main() -> list[bytes]:
            # Each probe waits 1 s for an answer; one every 0.05 s would be 30 in 1.5 s.
            pool = UpstreamPool([("127.0.0.1", port)], timeout=1.0, probe_interval=0.05)
            try:
                assert await pool.query(_query("x.example.test")) is None
                await asyncio.sleep(1.5)
            finally:
                await pool.close()
            received = []
            while True:
                try:
                    received.append(silent.recv(512))
                except BlockingIOError:
                    return received

        received = asyncio.run(main())
    queries, probes = received[:1], received[1:]
    assert decode_message(queries[0]).questions == (Question("x.example.test", 1),)
    assert 1 <= len(probes) <= 2, len(probes)
    assert all(probe[2:] == PROBE[2:] for probe in probes)


def test_close_ends_the_background_checks() -> None:
    async def main() -> None:
        pool = UpstreamPool(
            [("127.0.0.1", free_port())], timeout=0.1, down_for=60, probe_interval=0.05
        )
        assert await pool.query(_query("x.example.test")) is None
        await asyncio.sleep(0.1)  # a probe is out by now
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert others, "no background check was started"
        await pool.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert all(task.cancelled() for task in others)

    asyncio.run(main())
