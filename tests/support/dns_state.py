"""Whether a DNS host's state equals the database's, seen from outside: every address
in question asked, from several source ports (a host with workers spreads queries over
them by the source's port: each worker's table is checked), and the answers compared
with what the database says they must be.

What the database says about an address: answered (NOERROR with the override rule's
current answer) when a live session holds it and that session's SIM is active, else
REFUSED (no session, a stopped one, or a SIM that must not resolve). The comparison is
a digest: (address, outcome) pairs, sorted.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Iterable

from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.dns.store import repository as dns_repo

from support.netns_clients import NO_ANSWER, NOERROR, REFUSED, dns_query, dns_reply
from support.netns_hosts import udp_socket_in

Outcome = str  # "answer <address>", "refused", "rcode <n>", "no answer", "mixed: ..."
Digest = tuple[tuple[str, Outcome], ...]


def expected_digest(engine: Engine, org_id: str, rule_id: str, addresses: Iterable[str]) -> Digest:
    sessions, sims = schema.radius_sessions, schema.sims
    with engine.connect() as conn:
        answer = dns_repo.get_rule(conn, org_id, rule_id).rule.answer[0]
        live = conn.execute(
            select(sessions.c.ue_address, sims.c.state)
            .join(sims, sims.c.iccid == sessions.c.iccid)
            .where(sessions.c.stopped_at.is_(None), sessions.c.ue_address.is_not(None))
        ).all()
    active = {address for address, state in live if state == "active"}
    return tuple(
        (a, f"answer {answer}" if a in active else "refused") for a in sorted(set(addresses))
    )


def _outcome(rcode: int, found: tuple[str, ...]) -> Outcome:
    if rcode == NOERROR and found:
        return f"answer {found[-1]}"
    if rcode == REFUSED:
        return "refused"
    return "no answer" if rcode == NO_ANSWER else f"rcode {rcode}"


def observed_digest(
    ns: str,
    server: str,
    addresses: Iterable[str],
    name: str,
    *,
    ports_per_address: int = 6,
    timeout: float = 1.0,
) -> Digest:
    """Each address asks `ports_per_address` times, each time from a new source port, all
    queries at once; an address whose answers differ is reported as "mixed"."""
    asked: dict[socket.socket, tuple[str, int]] = {}
    seen: dict[str, set[Outcome]] = {a: set() for a in sorted(set(addresses))}
    with selectors.DefaultSelector() as selector:
        try:
            for address in seen:
                for _ in range(ports_per_address):
                    sock = udp_socket_in(ns, (address, 0))
                    query_id = int.from_bytes(os.urandom(2), "big")
                    asked[sock] = (address, query_id)
                    selector.register(sock, selectors.EVENT_READ)
                    sock.sendto(dns_query(name, query_id), (server, 53))
            deadline = time.monotonic() + timeout
            waiting = set(asked)
            while waiting and (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    ready = key.fileobj
                    assert isinstance(ready, socket.socket)
                    address, query_id = asked[ready]
                    parsed = dns_reply(ready.recv(4096))
                    if parsed is not None and parsed[0] == query_id:
                        seen[address].add(_outcome(parsed[1].rcode, parsed[1].addresses))
                        waiting.discard(ready)
                        selector.unregister(ready)
            for sock in waiting:
                seen[asked[sock][0]].add("no answer")
        finally:
            for sock in asked:
                sock.close()
    return tuple(
        (a, next(iter(o)) if len(o) == 1 else "mixed: " + ", ".join(sorted(o)))
        for a, o in seen.items()
    )


def differences(want: Digest, got: Digest) -> list[str]:
    mine = dict(got)
    return [f"{a}: want {o}, got {mine.get(a)}" for a, o in want if mine.get(a) != o]
