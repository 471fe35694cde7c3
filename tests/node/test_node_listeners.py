"""Listener lines, and a failed bind told as the one listener that could not be bound."""

from __future__ import annotations

import errno
import socket

import pytest

from ztsim.errors import Conflict
from ztsim.node.listeners import Listener, bind_tcp, binding, check_free, http, probe


def test_lines() -> None:
    assert Listener("RADIUS auth", "127.0.0.1", 1812).line() == "RADIUS auth: 127.0.0.1:1812/udp"
    assert Listener("DNS", "::1", 53, "tcp").line() == "DNS: [::1]:53/tcp"
    api = http("API", "::1", 8080, "/docs")
    assert api.line() == "API: [::1]:8080/tcp http://[::1]:8080/docs"


def test_the_listener_held_elsewhere_is_named() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        free = Listener("RADIUS auth", "127.0.0.1", 0)
        taken = Listener("RADIUS acct", "127.0.0.1", port)
        assert probe(taken) == errno.EADDRINUSE
        mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with mine, pytest.raises(Conflict) as caught, binding([free, taken]):
            mine.bind(("127.0.0.1", port))
        assert str(caught.value) == f"RADIUS acct port 127.0.0.1:{port}/udp is already in use"
        with pytest.raises(Conflict):
            check_free([free, taken])


def test_other_errors_pass_through_untouched() -> None:
    with pytest.raises(OSError, match="disk") as caught, binding([Listener("DNS", "127.0.0.1", 1)]):
        raise OSError(errno.EIO, "disk")
    assert caught.value.errno == errno.EIO


def test_bind_tcp_listens_and_names_a_taken_port() -> None:
    sock = bind_tcp(http("API", "127.0.0.1", 0), 16)
    with sock:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with pytest.raises(Conflict, match=rf"^API port 127.0.0.1:{port}/tcp is already in use$"):
            bind_tcp(http("API", "127.0.0.1", port), 16)
