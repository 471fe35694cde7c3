"""Handing the parent's policy to its forked workers: one file per compiled list, one index.

The parent publishes `(position, snapshot, subjects)` into a private (0700) directory: each
compiled list (and the feeds) is written once, to a file named by its key, and the index
pickles references to those files (`persistent_id`), so publishing one org's rule edit
writes a few kilobytes, not every list again. A worker loads the index when it changed and
maps (mmap, read-only) only the list files it does not hold yet: the pages of a list are
shared by every worker through the page cache. The index is written whole, then renamed.

Files of lists the index no longer uses are removed after it is published; a worker that
still maps one keeps its pages. A worker that reads an index while a newer one replaces a
file it names finds the file gone and tries again with the newer index.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ztsim.dns.policy.domainstore import DomainStore
from ztsim.dns.policy.liststores import CompiledList
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.policies import Subjects

INDEX = "policy.index"
POSITION = "policy.position"  # "<index generation> <position>": how far the index is current
Published = tuple[int, PolicySnapshot, Subjects]


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".store"


def compiled_lists(snapshot: PolicySnapshot) -> Iterable[CompiledList]:
    yield from snapshot.lists_in_use().values()
    if snapshot.feeds.compiled is not None:
        yield snapshot.feeds.compiled


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, share: PolicyShare) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.share = share

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, CompiledList) and obj.key:
            self.share.write_list(obj)
            return obj.key
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, share: PolicyShare) -> None:
        super().__init__(file)
        self.share = share

    def persistent_load(self, pid: Any) -> CompiledList:
        return self.share.read_list(str(pid))


class PolicyShare:
    """The parent writes (`publish`); each worker reads (`load`), with a cache of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._written: set[str] = set()  # parent: list keys whose file exists
        self._held: dict[str, CompiledList] = {}  # worker: lists loaded (or inherited)
        self._stamp: tuple[int, int] | None = None
        self._generation = 0  # parent: indexes published; worker: the one loaded

    # -- the parent ----------------------------------------------------------------------

    def write_list(self, compiled: CompiledList) -> None:
        if compiled.key in self._written:
            return
        path = self.directory / _file_name(compiled.key)
        partial = path.with_suffix(".partial")
        partial.write_bytes(compiled.store.to_bytes())
        os.replace(partial, path)
        self._written.add(compiled.key)

    def publish(self, position: int, snapshot: PolicySnapshot, subjects: Subjects) -> None:
        self._generation += 1
        buffer = io.BytesIO()
        _Pickler(buffer, self).dump((self._generation, position, snapshot, subjects))
        self._replace(INDEX, buffer.getvalue())
        self.advance(position)
        used = {c.key for c in compiled_lists(snapshot) if c.key}
        for key in self._written - used:
            (self.directory / _file_name(key)).unlink(missing_ok=True)
        self._written &= used

    def advance(self, position: int) -> None:
        """The index published last is current through `position` (changes since were
        none of the policy's)."""
        self._replace(POSITION, f"{self._generation} {position}".encode())

    def _replace(self, name: str, data: bytes) -> None:
        partial = self.directory / (name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, self.directory / name)

    # -- a worker ------------------------------------------------------------------------

    def hold(self, snapshot: PolicySnapshot) -> None:
        """Lists this worker already has (inherited at fork): never loaded again."""
        self._held = {c.key: c for c in compiled_lists(snapshot) if c.key}

    def _index_stamp(self) -> tuple[int, int]:
        stat = (self.directory / INDEX).stat()
        return stat.st_ino, stat.st_mtime_ns

    def changed(self) -> bool:
        """Whether a newer index was published since the last `load` (one stat)."""
        try:
            return self._index_stamp() != self._stamp
        except OSError:
            return False

    def position(self) -> int | None:
        """How far the index this worker loaded is current, if the parent says so."""
        try:
            generation, position = (self.directory / POSITION).read_text().split()
        except (OSError, ValueError):
            return None
        return int(position) if int(generation) == self._generation else None

    def read_list(self, key: str) -> CompiledList:
        held = self._held.get(key)
        if held is not None:
            return held
        with (self.directory / _file_name(key)).open("rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return CompiledList(DomainStore.from_buffer(memoryview(mapped)), key)

    def load(self) -> Published | None:
        """The newest index, if it changed since the last load; None if not (or not yet
        readable: a file it names went meanwhile, and a newer index follows)."""
        try:
            stamp = self._index_stamp()
            if stamp == self._stamp:
                return None
            data = (self.directory / INDEX).read_bytes()
            # Written by this worker's own parent into a private (0700) directory.
            generation, position, snapshot, subjects = _Unpickler(io.BytesIO(data), self).load()
        except FileNotFoundError:
            return None
        self._stamp, self._generation = stamp, generation
        self.hold(snapshot)  # lists the new index no longer uses are let go
        return position, snapshot, subjects
