"""The lean RADIUS load generator against ztsim's AAA role running in this process: every
request answered and matched to its own reply, across more than one socket; silence
counted as loss within the timeout; datagrams that verify as the RFCs say."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from ztsim.errors import InvalidInput
from ztsim.radius import Attribute, Code, Packet, SharedSecret, make_attribute, verify_request
from ztsim.sealing import Sealer
from ztsim.simulator.radius_load import LoadResult, RadiusLoad, precompute

from support.radius_world import APN, IMEISV, SECRET, RunningAaa, World, build_world


def access(imsi: str) -> list[Attribute]:
    return [
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
        make_attribute("3GPP-IMEISV", IMEISV),
        make_attribute("Called-Station-Id", APN),
        make_attribute("Framed-Protocol", 7),  # GPRS-PDP-Context
    ]


def accounting(status: int, session: str, imsi: str) -> list[Attribute]:
    return [
        make_attribute("Acct-Status-Type", status),
        make_attribute("Acct-Session-Id", session),
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
        make_attribute("3GPP-IMEISV", IMEISV),
        make_attribute("Called-Station-Id", APN),
    ]


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    return build_world(engine, sealer)


@pytest.fixture
def aaa(engine: Engine, sealer: Sealer, world: World) -> Iterator[RunningAaa]:
    running = RunningAaa(engine, sealer)
    try:
        yield running
    finally:
        running.close()


def test_precomputed_requests_carry_their_identifier_and_verify() -> None:
    secret = SharedSecret(SECRET)
    accesses = precompute(Code.ACCESS_REQUEST, [access("001010000000001")] * 300, secret)
    starts = precompute(
        Code.ACCOUNTING_REQUEST,
        [accounting(1, f"s{n}", "001010000000001") for n in range(3)],
        secret,
    )
    for n, datagram in enumerate(accesses + starts):
        packet = Packet.decode(datagram)
        assert packet.identifier == (n % 256 if n < 300 else n - 300)
        verify_request(packet, secret, require_message_authenticator=packet.code == 1)
    # Each Access-Request has its own Request Authenticator (RFC 2865 §3: a nonce).
    assert len({Packet.decode(d).authenticator for d in accesses}) == 300
    with pytest.raises(InvalidInput):
        precompute(Code.ACCESS_ACCEPT, [access("001010000000001")], secret)


def test_every_access_request_is_answered_and_matched(aaa: RunningAaa, world: World) -> None:
    secret = SharedSecret(SECRET)
    # 400 accepted, then 200 rejected (a suspended SIM): the counts tell replies apart,
    # and a window over 256 needs a second socket.
    requests = [access(world.active)] * 400 + [access(world.suspended)] * 200
    load = RadiusLoad(
        ("127.0.0.1", aaa.auth_port),
        precompute(Code.ACCESS_REQUEST, requests, secret),
        window=300,
        timeout=5,
    )
    result = load.run(deadline=30)
    assert (result.sent, result.answered, result.accepted, result.lost) == (600, 600, 400, 0)
    assert result.rps > 0
    assert result.client_cpu > 0
    assert 0 < result.client_cpu_us < 1e6


def test_accounting_starts_and_stops_are_answered(aaa: RunningAaa, world: World) -> None:
    secret = SharedSecret(SECRET)
    sessions = 150
    requests = [accounting(1, f"lean-{n}", world.active) for n in range(sessions)]
    requests += [accounting(2, f"lean-{n}", world.active) for n in range(sessions)]
    datagrams = precompute(Code.ACCOUNTING_REQUEST, requests, secret)
    result = RadiusLoad(("127.0.0.1", aaa.acct_port), datagrams, window=64).run(deadline=30)
    assert (result.answered, result.accepted, result.lost) == (300, 300, 0)


def test_a_silent_server_loses_every_request_within_the_timeout() -> None:
    secret = SharedSecret(SECRET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        datagrams = precompute(Code.ACCESS_REQUEST, [access("001010000000001")] * 20, secret)
        began = time.monotonic()
        result = RadiusLoad(silent.getsockname(), datagrams, window=8, timeout=0.2).run()
        # Eight at a time, each waiting its 0.2 s: three windows' worth.
        assert time.monotonic() - began < 5
        assert os.read(silent.fileno(), 4096)[1] == 0  # the first request did arrive
    assert result == LoadResult(20, 0, 0, 20, result.elapsed, result.client_cpu)
    assert result.elapsed >= 0.2 * 3


def test_a_run_is_bounded_by_its_deadline() -> None:
    secret = SharedSecret(SECRET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        datagrams = precompute(Code.ACCESS_REQUEST, [access("001010000000001")] * 10, secret)
        result = RadiusLoad(silent.getsockname(), datagrams, window=1, timeout=60).run(deadline=0.3)
    assert (result.sent, result.lost) == (1, 1)
    assert result.elapsed < 5


def test_misuse_is_refused() -> None:
    secret = SharedSecret(SECRET)
    datagrams = precompute(Code.ACCESS_REQUEST, [access("001010000000001")] * 3, secret)
    with pytest.raises(InvalidInput):
        RadiusLoad(("127.0.0.1", 9), datagrams[1:])  # identifiers do not start at 0
    with pytest.raises(InvalidInput):
        RadiusLoad(("127.0.0.1", 9), datagrams, window=0)
    with pytest.raises(InvalidInput):
        RadiusLoad(("127.0.0.1", 9), datagrams).run(4)  # a request would be sent twice
