"""What the net role reads for one step, and the stage it makes of it.

A step is the whole state (`read_whole`: the load, a resync) or a batch of the change
feed (`read_changes`). A batch re-reads only what its changes name: SESSION, the
address and the SIM's other held addresses; SIM, IDENTITY, POSTURE, the addresses held
for that key; POLICY, the org's policy (its sessions re-classified when it decides
differently now; its generation the change's sequence number); NET, the sites. The
result is a `Stage`: what the step changes, for the role to apply to the kernel and take
in only once the kernel took it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from ztsim.feed import outbox
from ztsim.feed.change import Change, Topic
from ztsim.feed.follower import consistent_read
from ztsim.net.gateway_plan import generation_of
from ztsim.net.serve.classes import OrgClasses, classify
from ztsim.net.serve.holdings import Held, Holdings
from ztsim.net.store.network_policy import canonical, read_policies, read_sessions
from ztsim.net.store.tunnel_view import SiteTunnel, read_site_tunnels
from ztsim.policy.store.compiled import same_policy


@dataclass
class Stage:
    """What one step changes (None: gone), taken in only once the kernel applied it."""

    orgs: dict[str, OrgClasses | None] = field(default_factory=dict)
    held: dict[str, Held | None] = field(default_factory=dict)
    sites: list[SiteTunnel] | None = None  # None: unchanged
    dns: set[str] = field(default_factory=set)  # orgs with a DNS change (privacy modes)


def read_whole(
    engine: Engine, orgs: Mapping[str, OrgClasses], holdings: Holdings, now: datetime
) -> tuple[int, Stage]:
    """Everything, in one consistent read, replacing what is held; and its position."""
    with consistent_read(engine) as conn:
        position = outbox.position(conn)
        policies = read_policies(conn)
        sessions = read_sessions(conn)
        sites = read_site_tunnels(conn)
    generation = generation_of(position)
    fresh = {o: OrgClasses(p, generation) for o, p in policies.items()}
    held = {a: classify(s, fresh.get(s.org_id), now) for a, s in sessions.items()}
    gone: dict[str, Held | None] = {a: None for a, _ in holdings.items() if a not in held}
    return position, Stage({**dict.fromkeys(orgs), **fresh}, {**gone, **held}, sites)


def read_changes(
    engine: Engine,
    changes: Sequence[Change],
    orgs: Mapping[str, OrgClasses],
    holdings: Holdings,
    now: datetime,
) -> Stage:
    """What a batch of changes names, read again and classified."""
    stage = Stage()
    addresses: dict[str, set[str]] = {}
    policy_orgs: dict[str, int] = {}
    sites = False
    for change in changes:
        holdings.named(change, addresses)
        if change.topic is Topic.POLICY:
            policy_orgs[change.org_id] = change.seq
        elif change.topic is Topic.NET:
            sites = True
        elif change.topic is Topic.DNS:
            stage.dns.add(change.org_id)
    if not (addresses or policy_orgs or sites):
        return stage
    with consistent_read(engine) as conn:
        sessions = read_sessions(conn, addresses) if addresses else {}
        wanted = set(policy_orgs) | ({s.org_id for s in sessions.values()} - orgs.keys())
        policies = read_policies(conn, wanted) if wanted else {}
        if sites:
            stage.sites = read_site_tunnels(conn)
    for org_id in wanted:
        new, old = policies.get(org_id), orgs.get(org_id)
        if new is None:
            stage.orgs[org_id] = None
        elif old is None or not same_policy(old.policy, new):
            seq = policy_orgs.get(org_id, changes[-1].seq)
            stage.orgs[org_id] = OrgClasses(new, generation_of(seq))
    merged = {**orgs, **stage.orgs}
    for org_addresses in addresses.values():
        for stored in org_addresses:
            address = canonical(stored)
            session = sessions.get(address)
            stage.held[address] = (
                None if session is None else classify(session, merged.get(session.org_id), now)
            )
    changed = {o for o in stage.orgs if o in orgs}
    if changed:
        for address, held in holdings.items():
            if held.session.org_id in changed and address not in stage.held:
                stage.held[address] = classify(held.session, merged.get(held.session.org_id), now)
    return stage
