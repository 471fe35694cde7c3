"""The accounting journal: Accounting-Requests made durable with one write(2) per batch of
datagrams, so that their responses need not wait for the database's commit.

RFC 2866 §2 asks the server to answer only once it has recorded the request. A record
appended to this file survives the process's crash as a commit of SQLite in WAL mode
(`synchronous=NORMAL`) or FreeRADIUS's detail file does (neither syncs to the disk per
request: a power cut may lose the last of them). The writer still commits the sessions and
events as soon as it can, and each commit records, in the same transaction, how far into
each journal file its records reach (`radius_journals`). A process that starts replays
what the files of a process that ended left beyond that mark, through its core, before it
serves; then the files go.

A record is the datagram as received, with its sender and its time: the replay decides it
again on the database's state at the restart, as a retransmission after a restart is
decided today (sessions are idempotent by key). Each is framed with its length and a
CRC-32, so a torn tail (a crash mid-write) or garbage ends the reading there; nothing after
it was answered.

One file per process (`radius-acct-<id>.journal`, mode 0600: it holds IMSIs), held with
flock(2) while the process lives, so a sibling process's start leaves it alone; a file
past `ROTATE_BYTES` is replaced by a new one once its records are all taken for a commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ztsim.clock import new_id
from ztsim.datagram import Peer

log = logging.getLogger("ztsim.radius.serve.journal")

PREFIX, SUFFIX = "radius-acct-", ".journal"
ROTATE_BYTES = 64 << 20
# Records appended and not yet committed, at most: past it, replies wait for the commit
# again (and past that bound the core defers requests). About 20,000 requests.
MAX_BACKLOG_BYTES = 4 << 20
# CRC-32 of the rest, the rest's length; then the time (microseconds since the epoch), the
# sender's port, its address's length and the address (4 or 16 octets), the datagram.
_FRAME = struct.Struct(">IH")
_HEAD = struct.Struct(">qHB")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Record:
    datagram: bytes
    peer: Peer
    when: datetime


def record_head(peer: Peer, when: datetime) -> bytes:
    """What precedes the datagram in a record (the datagrams of a batch share it, per peer)."""
    host, port = peer
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = socket.inet_pton(family, host)
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    return _HEAD.pack(micros, port, len(address)) + address


def framed(head: bytes, datagram: bytes) -> bytes:
    body = head + datagram
    return _FRAME.pack(zlib.crc32(body), len(body)) + body


def encode_record(datagram: bytes, peer: Peer, when: datetime) -> bytes:
    return framed(record_head(peer, when), datagram)


def decode_records(data: bytes, start: int = 0) -> tuple[list[Record], int]:
    """The whole, intact records from `start` on, and the offset after the last of them."""
    records: list[Record] = []
    offset, end = start, len(data)
    while offset + _FRAME.size <= end:
        crc, length = _FRAME.unpack_from(data, offset)
        body_at = offset + _FRAME.size
        body = data[body_at : body_at + length]
        if len(body) != length or length < _HEAD.size or zlib.crc32(body) != crc:
            break
        micros, port, size = _HEAD.unpack_from(body)
        if size not in (4, 16) or length < _HEAD.size + size:
            break
        address = body[_HEAD.size : _HEAD.size + size]
        family = socket.AF_INET if size == 4 else socket.AF_INET6
        host = socket.inet_ntop(family, address)
        when = _EPOCH + timedelta(microseconds=micros)
        records.append(Record(body[_HEAD.size + size :], (host, port), when))
        offset = body_at + length
    return records, offset


@dataclass
class Marks:
    """What a batch taken for a commit covers: per journal file, the offset its records
    reach; the files it finishes (to unlink after the commit) and the marks of files gone
    (to delete in it)."""

    offsets: dict[str, int] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    total: int = 0  # bytes appended in this process up to the mark

    def then(self, later: Marks) -> Marks:
        return Marks(
            {**self.offsets, **later.offsets},
            self.finished + later.finished,
            self.forget + later.forget,
            later.total,
        )


class Journal:
    """This process's journal in `directory`. `append` on the accounting thread; `mark` by
    whoever takes a batch, under the same lock as `append`; `committed` after its commit."""

    def __init__(
        self,
        directory: Path,
        *,
        rotate_bytes: int = ROTATE_BYTES,
        max_backlog: int = MAX_BACKLOG_BYTES,
    ) -> None:
        self.directory = directory
        self._rotate_bytes = rotate_bytes
        self._max_backlog = max_backlog
        self.name, self._fd = _create(directory)
        self._offset = 0
        self._appended = 0  # bytes, all files
        self._committed = 0
        self._finished: list[str] = []  # rotated out, not yet covered by a commit
        self._forget: list[str] = []
        self.broken = False
        self.full = 0  # batches refused for the backlog bound

    def append(self, records: list[bytes]) -> bool:
        """Whether the records are in the file (False: they are to wait for the commit)."""
        if self.broken:
            return False
        data = b"".join(records)
        if self._appended - self._committed + len(data) > self._max_backlog:
            self.full += 1
            return False
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._undo(exc)
            return False
        self._offset += len(data)
        self._appended += len(data)
        return True

    def _undo(self, exc: OSError) -> None:
        # A part of a record would end every later reading: cut it, or stop journaling.
        try:
            os.ftruncate(self._fd, self._offset)
            log.warning("writing the accounting journal failed (%s): answered after commit", exc)
        except OSError:
            self.broken = True
            log.error("the accounting journal cannot be written or cut back (%s): off", exc)

    def mark(self) -> Marks:
        marks = Marks({self.name: self._offset}, self._finished, self._forget, total=self._appended)
        self._finished, self._forget = [], []
        if self._offset >= self._rotate_bytes and not self.broken:
            try:
                name, fd = _create(self.directory)
            except OSError as exc:
                log.warning("a new accounting journal file could not be made (%s)", exc)
            else:
                marks.finished.append(self.name)
                os.close(self._fd)
                self.name, self._fd, self._offset = name, fd, 0
        return marks

    def committed(self, marks: Marks) -> None:
        """`marks`'s batch is committed: its finished files go; their marks in the next."""
        self._committed = max(self._committed, marks.total)
        for name in marks.finished:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
            self._forget.append(name)

    @property
    def backlog(self) -> int:
        return self._appended - self._committed

    def close(self) -> list[str]:
        """Closed; the file goes if every record in it is committed. The names whose
        marks are left to delete."""
        os.close(self._fd)
        forget = self._forget
        if self.backlog == 0 and not self._finished:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / self.name).unlink()
            forget = [*forget, self.name]
        return forget


def _create(directory: Path) -> tuple[str, int]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{PREFIX}{new_id()}{SUFFIX}"
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(directory / name, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        (directory / name).unlink(missing_ok=True)
        raise
    return name, fd


@contextlib.contextmanager
def orphans(directory: Path) -> Iterator[list[Path]]:
    """The journal files in `directory` that no living process holds, held meanwhile."""
    held: list[tuple[Path, int]] = []
    try:
        for path in sorted(directory.glob(f"{PREFIX}*{SUFFIX}")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # its process ended cleanly meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a living process's
                continue
            held.append((path, fd))
        yield [path for path, _ in held]
    finally:
        for _, fd in held:
            os.close(fd)
