"""Cutting the flows of many addresses over one netlink socket, not two processes each.

A revocation deletes the conntrack entries from and to each address that lost or
changed its class, so that its next packet is judged again (`Nft.cut_flows`: two
`conntrack -D` processes per address, some milliseconds each; a policy edit that moves
thousands of subjects pays that thousands of times). `delete_flows(addresses)` does the
same work in the calling thread's namespace on one socket: for each address and side, a
dump the kernel filters (`ctnetlink_requests.dump_request`, CTA_FILTER: Linux 5.8+; for more
than `FILTERED_MAX` addresses one dump of the whole table, matched here), then one
IPCTNL_MSG_CT_DELETE per entry found, sent many to a datagram, each acknowledged. An
entry is named by its tuple and id, so one that went meanwhile (ENOENT) is not counted
and a new entry that reuses the tuple is left alone.

Dumps cannot overlap on one socket, so they run one after the other; the deletes are
sent in datagrams of at most `_CHUNK` octets and their answers read after each.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable

from ztsim.net.ctnetlink import (
    AF_INET,
    AF_INET6,
    ConntrackError,
    ConntrackEvent,
    Done,
    FlowTuple,
    parse,
)
from ztsim.net.ctnetlink_requests import delete_request, dump_all_request, dump_request
from ztsim.net.netlink import NETLINK_NETFILTER, Ack

_BUFFER = 1 << 17
_SO_RCVBUFFORCE = 33  # asm-generic/socket.h
_SOCKET_BUFFER = 4 << 20
_CHUNK = 32 << 10  # octets of delete requests a datagram: about 300 entries
_KERNEL = 0
# Every dump walks the kernel's whole hash table (about 12 ms on the development machine,
# whatever it holds), a filtered one included: up to this many addresses, two filtered
# dumps each; beyond, one dump of everything matched here (some 30 us an entry).
FILTERED_MAX = 8


class _Exchange:
    """One socket, numbered requests, answers read until a deadline."""

    def __init__(self, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.deadline = time.monotonic() + timeout
        self.seq = 0
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BUFFER)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        self.sock.bind((0, 0))

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def receive(self) -> list[ConntrackEvent | Ack | Done]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ConntrackError("the kernel did not answer the conntrack requests in time")
        self.sock.settimeout(remaining)
        try:
            data, (sender, _) = self.sock.recvfrom(_BUFFER)
        except TimeoutError:
            raise ConntrackError("the kernel did not answer the conntrack requests") from None
        return parse(data) if sender == _KERNEL else []

    def dump(self, request: Callable[[int], bytes]) -> list[ConntrackEvent]:
        seq = self.next_seq()
        self.sock.send(request(seq))
        found: list[ConntrackEvent] = []
        while True:
            for message in self.receive():
                if isinstance(message, ConntrackEvent):
                    found.append(message)
                elif isinstance(message, Done) and message.seq == seq:
                    return found
                elif isinstance(message, Ack) and message.seq == seq and message.error:
                    code = -message.error
                    name = errno.errorcode.get(code, str(code))
                    raise ConntrackError(f"the kernel refused a conntrack dump: {name}")

    def delete(self, entries: list[ConntrackEvent]) -> int:
        deleted = 0
        start = 0
        while start < len(entries):
            chunk, size, waiting = [], 0, set()
            while start < len(entries) and size < _CHUNK:
                seq = self.next_seq()
                request = delete_request(seq, entries[start])
                chunk.append(request)
                size += len(request)
                waiting.add(seq)
                start += 1
            self.sock.send(b"".join(chunk))
            while waiting:
                for message in self.receive():
                    if isinstance(message, Ack) and message.seq in waiting:
                        waiting.discard(message.seq)
                        if message.error == 0:
                            deleted += 1
                        elif message.error != -errno.ENOENT:  # gone already: not ours to count
                            code = errno.errorcode.get(-message.error, str(-message.error))
                            raise ConntrackError(f"the kernel refused a conntrack delete: {code}")
        return deleted


def delete_flows(addresses: Iterable[str], timeout: float = 10.0) -> int:
    """Delete the conntrack entries whose original source or destination is one of
    `addresses`, in the calling thread's namespace; how many were deleted.
    ConntrackError if an address is not one, or the kernel refuses or does not answer."""
    wanted: set[str] = set()
    for address in addresses:
        try:
            wanted.add(str(ipaddress.ip_address(address)))
        except ValueError:
            raise ConntrackError(f"{address!r} is not an IP address") from None
    exchange = _Exchange(timeout)
    try:
        found: dict[tuple[int | None, FlowTuple], ConntrackEvent] = {}
        if len(wanted) <= FILTERED_MAX:
            for address in sorted(wanted):
                for side in ("source", "destination"):
                    request = functools.partial(dump_request, address=address, side=side)
                    for entry in exchange.dump(request):
                        found[(entry.id, entry.original)] = entry  # a flow between two: once
        else:
            for family in sorted({AF_INET6 if ":" in a else AF_INET for a in wanted}):
                for entry in exchange.dump(functools.partial(dump_all_request, family=family)):
                    t = entry.original
                    if t.source in wanted or t.destination in wanted:
                        found[(entry.id, t)] = entry
        return exchange.delete(list(found.values()))
    finally:
        exchange.sock.close()
