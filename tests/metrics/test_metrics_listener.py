"""The scrape endpoint on a real loopback socket: GET /metrics, and nothing else."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from ztsim.metrics.exposition import CONTENT_TYPE
from ztsim.metrics.listener import MAX_HEAD, MetricsListener

BODY = b"# HELP ztsim_x Test.\n# TYPE ztsim_x gauge\nztsim_x 1\n"


async def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data`, read until the server closes (or `timeout` of silence)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open>")
    except ConnectionResetError:
        pass  # closed with our request unread
    writer.close()
    return b"".join(chunks)


async def _listener(render: Callable[[], bytes] = lambda: BODY, **kw: float) -> MetricsListener:
    listener = MetricsListener(render, **kw)  # type: ignore[arg-type]
    await listener.start("127.0.0.1", 0)
    return listener


def _with_listener(check: Callable[[MetricsListener], Awaitable[None]]) -> None:
    async def main() -> None:
        listener = await _listener()
        try:
            await check(listener)
        finally:
            await listener.stop()

    asyncio.run(main())


def test_get_metrics_answers_the_text_format() -> None:
    _with_listener(_test_get_metrics_answers_the_text_format)


async def _test_get_metrics_answers_the_text_format(listener: MetricsListener) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.port}") as client:
        first = await client.get("/metrics")
        again = await client.get("/metrics?name[]=x")  # a query is ignored
    assert first.status_code == 200
    assert first.headers["content-type"] == CONTENT_TYPE
    assert first.content == BODY
    assert again.content == BODY


def test_other_paths_are_404_and_other_methods_405() -> None:
    _with_listener(_test_other_paths_are_404_and_other_methods_405)


async def _test_other_paths_are_404_and_other_methods_405(listener: MetricsListener) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.port}") as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/metrics/x")).status_code == 404
        refused = await client.post("/metrics")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET"
        assert (await client.head("/metrics")).status_code == 405


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    _with_listener(_test_keep_alive_serves_several_requests_on_one_connection)


async def _test_keep_alive_serves_several_requests_on_one_connection(
    listener: MetricsListener,
) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    last = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    out = await _raw(listener.port, request + request + last)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert out.endswith(BODY)


def test_http_1_0_is_closed_after_its_answer() -> None:
    _with_listener(_test_http_1_0_is_closed_after_its_answer)


async def _test_http_1_0_is_closed_after_its_answer(listener: MetricsListener) -> None:
    out = await _raw(listener.port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in out
    assert out.endswith(BODY)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
)
def test_malformed_requests_and_bodies_are_400_and_closed(request_bytes: bytes) -> None:
    _with_listener(
        lambda lis: _test_malformed_requests_and_bodies_are_400_and_closed(lis, request_bytes)
    )


async def _test_malformed_requests_and_bodies_are_400_and_closed(
    listener: MetricsListener, request_bytes: bytes
) -> None:
    out = await _raw(listener.port, request_bytes)
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in out
    assert out.count(b"HTTP/1.1") == 1


def test_a_head_past_the_bound_is_431() -> None:
    _with_listener(_test_a_head_past_the_bound_is_431)


async def _test_a_head_past_the_bound_is_431(listener: MetricsListener) -> None:
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n"
    out = await _raw(listener.port, big)
    assert out.startswith(b"HTTP/1.1 431 ")


def test_an_idle_connection_is_closed() -> None:
    asyncio.run(_test_an_idle_connection_is_closed())


async def _test_an_idle_connection_is_closed() -> None:
    listener = await _listener(idle_seconds=0.5)
    try:
        out = await _raw(listener.port, b"GET /metr", timeout=10)
        assert out == b""  # closed by the server, well before our 10 s
    finally:
        await listener.stop()


def test_connections_past_the_bound_are_closed() -> None:
    asyncio.run(_test_connections_past_the_bound_are_closed())


async def _test_connections_past_the_bound_are_closed() -> None:
    listener = await _listener(max_connections=1)
    try:
        with socket.create_connection(("127.0.0.1", listener.port)):
            await asyncio.sleep(0.2)
            out = await _raw(listener.port, b"GET /metrics HTTP/1.1\r\n\r\n")
            assert out == b""
    finally:
        await listener.stop()


def test_a_failing_render_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_test_a_failing_render_is_500_and_logged(caplog))


async def _test_a_failing_render_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> bytes:
        raise RuntimeError("boom")

    listener = await _listener(broken)
    try:
        out = await _raw(listener.port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 500 ")
        assert "rendering the metrics failed" in caplog.text
    finally:
        await listener.stop()


def test_stop_closes_open_connections() -> None:
    asyncio.run(_test_stop_closes_open_connections())


async def _test_stop_closes_open_connections() -> None:
    listener = await _listener()
    port = listener.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
    await writer.drain()
    await reader.readuntil(BODY)
    await listener.stop()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
