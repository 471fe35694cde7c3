"""The accounting journal: records that read back as written, a torn or damaged tail that
ends the reading there (and only there), arbitrary octets that never raise, the backlog
bound, rotation, and files that a living process holds left alone."""

from __future__ import annotations

import os
import socket
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.radius.serve.journal import (
    Journal,
    Record,
    decode_records,
    encode_record,
    orphans,
)

T0 = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)

# As the socket layer names a sender: inet_ntop's text.
_peers = st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
    st.tuples(
        st.ip_addresses(v=6).map(lambda a: socket.inet_ntop(socket.AF_INET6, a.packed)),
        st.integers(0, 65535),
    ),
)
_records = st.builds(
    Record,
    st.binary(max_size=4096),
    _peers,
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)


def _encoded(records: list[Record]) -> bytes:
    return b"".join(encode_record(r.datagram, r.peer, r.when) for r in records)


@given(st.lists(_records, max_size=8))
def test_records_read_back_as_written(records: list[Record]) -> None:
    data = _encoded(records)
    assert decode_records(data) == (records, len(data))


@given(st.lists(_records, min_size=1, max_size=5), st.data())
def test_a_torn_tail_ends_the_reading_at_the_last_whole_record(
    records: list[Record], data: st.DataObject
) -> None:
    encoded = _encoded(records)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    ends = [len(_encoded(records[: n + 1])) for n in range(len(records))]
    whole = sum(end <= cut for end in ends)
    assert decode_records(encoded[:cut]) == (records[:whole], ends[whole - 1] if whole else 0)


@given(st.lists(_records, min_size=2, max_size=4), st.data())
def test_a_damaged_record_ends_the_reading_before_it(
    records: list[Record], data: st.DataObject
) -> None:
    encoded = bytearray(_encoded(records))
    first = len(_encoded(records[:1]))
    at = data.draw(st.integers(first, len(encoded) - 1))
    encoded[at] ^= data.draw(st.integers(1, 255))
    read, end = decode_records(bytes(encoded))
    assert read[:1] == records[:1]  # what precedes the damage is read
    assert read == records[: len(read)]  # and nothing damaged or after it
    assert len(read) < len(records)
    assert end == len(_encoded(read))


@given(st.binary(max_size=2048), st.integers(0, 64))
def test_arbitrary_octets_never_raise(data: bytes, start: int) -> None:
    records, end = decode_records(data, start)
    assert start <= end <= max(start, len(data))
    assert all(isinstance(r, Record) for r in records)


def test_the_offset_reads_on_from_a_mark() -> None:
    records = [Record(b"%d" % n, ("127.0.0.1", 1000 + n), T0) for n in range(3)]
    data = _encoded(records)
    mark = len(_encoded(records[:1]))
    assert decode_records(data, mark) == (records[1:], len(data))


def _journal_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.journal"))


def test_appends_are_in_the_file_owned_by_this_user_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    first = encode_record(b"one", ("127.0.0.1", 1), T0)
    second = encode_record(b"two", ("::1", 2), T0 + timedelta(seconds=1))
    assert journal.append([first])
    assert journal.append([second])
    path = tmp_path / "j" / journal.name
    assert path.read_bytes() == first + second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o700
    assert journal.backlog == len(first + second)
    journal.close()
    assert path.exists()  # nothing of it committed: it stays for the next start


def test_the_backlog_bound_refuses_until_a_commit_takes_it(tmp_path: Path) -> None:
    record = encode_record(b"x" * 100, ("127.0.0.1", 1), T0)
    journal = Journal(tmp_path, max_backlog=3 * len(record))
    assert all(journal.append([record]) for _ in range(3))
    assert not journal.append([record])
    assert journal.full == 1
    marks = journal.mark()
    assert marks.offsets == {journal.name: 3 * len(record)}
    assert not journal.append([record])  # taken, not yet committed
    journal.committed(marks)
    assert journal.backlog == 0
    assert journal.append([record])
    assert (tmp_path / journal.name).stat().st_size == 4 * len(record)


def test_a_full_file_is_replaced_and_goes_once_a_commit_covers_it(tmp_path: Path) -> None:
    record = encode_record(b"y" * 50, ("127.0.0.1", 1), T0)
    journal = Journal(tmp_path, rotate_bytes=2 * len(record))
    old = journal.name
    assert journal.append([record, record])
    marks = journal.mark()  # past the size: a new file for what comes next
    assert marks.offsets == {old: 2 * len(record)}
    assert marks.finished == [old]
    assert journal.name != old
    assert journal.append([record])
    assert _journal_files(tmp_path) == sorted([old, journal.name])
    journal.committed(marks)
    assert _journal_files(tmp_path) == [journal.name]
    later = journal.mark()  # the next commit deletes the finished file's mark
    assert later.forget == [old]
    assert later.offsets == {journal.name: len(record)}
    journal.committed(later)
    assert journal.close() == [journal.name]  # all committed: the file goes too
    assert _journal_files(tmp_path) == []


def test_a_living_journal_is_nobody_elses_to_replay(tmp_path: Path) -> None:
    living = Journal(tmp_path)
    ended = Journal(tmp_path)
    assert ended.append([encode_record(b"z", ("127.0.0.1", 1), T0)])
    ended.close()  # its process ended: the lock went with it
    with orphans(tmp_path) as paths:
        assert [p.name for p in paths] == [ended.name]
        with orphans(tmp_path) as again:
            assert again == []  # held by the first replay meanwhile
    living.close()


def test_a_failed_write_is_cut_back_and_the_reply_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path)
    record = encode_record(b"w" * 40, ("127.0.0.1", 1), T0)
    assert journal.append([record])
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    assert not journal.append([record])
    monkeypatch.setattr(os, "write", real_write)
    path = tmp_path / journal.name
    assert path.read_bytes() == record  # the half record is cut off
    assert journal.append([record])
    assert decode_records(path.read_bytes()) == (
        [Record(b"w" * 40, ("127.0.0.1", 1), T0)] * 2,
        2 * len(record),
    )
