"""A TCP forwarder, run as its own process: `python tcp_forward.py LISTEN_HOST:PORT
TARGET_HOST:PORT`. Prints "ready" once it listens; stops on SIGTERM.

Why: PostgreSQL listens on 127.0.0.1 of the root namespace, which a network namespace
cannot reach; the forwarder listens on the root namespace's bridge address instead.
Its own process, so that relaying the database traffic of every host never competes
with the test (or benchmark) process for the GIL. A connection closed at one end
(e.g. `pg_terminate_backend`) is closed at the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    server = await asyncio.start_server(relay, *listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(_split(sys.argv[1]), _split(sys.argv[2])))
