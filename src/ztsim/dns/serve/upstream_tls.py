"""DNS over TLS to an upstream (RFC 7858): one long-lived connection, queries pipelined.

Answers are matched to queries by ID and question (RFC 7766 §7: they may come in any
order). A broken connection fails every query waiting on it (the pool then tries the
next upstream) and is opened again by the next query.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct

from ztsim.dns.wire.constants import HEADER_LEN

_ID = struct.Struct("!H")
_LENGTH = struct.Struct("!H")  # RFC 1035 §4.2.2 framing, also inside TLS (RFC 7858 §3.3)


def response_question(wire: bytes) -> bytes | None:
    """A message's first question, lowercased; None if it has none or it is malformed.

    The first name of a message cannot be compressed (nothing precedes it to
    point to), so label lengths are followed until the root label.
    """
    if len(wire) < HEADER_LEN or wire[4:6] != b"\x00\x01":
        return None
    end = HEADER_LEN
    while end < len(wire) and 0 < wire[end] < 0x40:
        end += wire[end] + 1
    if end >= len(wire) or wire[end] != 0 or end + 5 > len(wire):
        return None
    return wire[HEADER_LEN : end + 5].lower()


class TlsChannel:
    def __init__(self, host: str, port: int, context: ssl.SSLContext, server_name: str) -> None:
        self.host, self.port = host, port
        self.context, self.server_name = context, server_name
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.context, server_hostname=self.server_name
            )
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader, writer))
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(2))
                answer = await reader.readexactly(length)
                if len(answer) < HEADER_LEN:
                    continue
                entry = self.pending.get(_ID.unpack_from(answer)[0])
                matches = entry is not None and response_question(answer) == entry[1]
                if entry is not None and matches and not entry[0].done():
                    entry[0].set_result(answer)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            for future, _ in list(self.pending.values()):
                if not future.done():
                    future.set_exception(OSError("DoT connection closed"))
            writer.close()

    async def ask(self, query: bytes, ident: int, question: bytes, timeout: float) -> bytes:
        """Send `query` (whose ID is `ident`) and wait for its answer; OSError/TimeoutError."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[ident] = (future, question)
        try:
            async with asyncio.timeout(timeout):
                writer = await self._connection()
                writer.write(_LENGTH.pack(len(query)) + query)
                return await future
        finally:
            self.pending.pop(ident, None)

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await self._writer.wait_closed()
            self._writer = None
