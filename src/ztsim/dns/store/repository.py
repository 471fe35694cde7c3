"""DNS settings, rules, lists and device tokens in the database. Every query is scoped by org,
except the gateway's loaders at the end, which read every org into one snapshot.

Writes are the building blocks of the use cases in `service` (which record and publish
them); `store_download`, the URL refresher's write, is its own use case.

Rules are stored as data (`spec`: the selectors and answer of `policy.Rule`) and are
validated by building the `Rule` before anything is written. Lists keep their last good
text; the gateway parses it when it rebuilds its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ztsim import netguard
from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.dns.policy.identity import NetworkDefault, token_digest
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import OrgSettings, Rule
from ztsim.errors import Conflict, NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.sessions import claims
from ztsim.usecase import use_case

_s, _r, _l, _t = (
    schema.dns_settings,
    schema.policy_rules,
    schema.dns_lists,
    schema.dns_device_tokens,
)
PLANE = "dns"  # the DNS plane's rows of policy_rules (ztsim.policy.rules.Plane.DNS)
_IN_PLANE = _r.c.plane == PLANE
SPEC_FIELDS: tuple[str, ...] = ("domains", "lists", "categories", "qtypes", "identities")
SPEC_FIELDS += ("groups", "fleets", "sim_kinds", "answer")
# Requirements (issue 17), named as every plane's rules name them (`ztsim.policy.rules`).
SPEC_FIELDS += ("identity_kinds", "posture", "sim")
REFRESH_ACTOR = "system:dns-refresh"  # who downloads URL lists


@dataclass(frozen=True, slots=True)
class StoredRule:
    id: str
    name: str
    position: int
    rule: Rule
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredList:
    id: str
    name: str
    format: str | None
    url: str | None
    good_lines: int
    bad_lines: int
    bad_samples: list[dict[str, Any]]
    refreshed_at: datetime | None
    refresh_error: str
    created_at: datetime


def _rule(m: RowMapping) -> StoredRule:
    spec = {k: tuple(v) for k, v in m["spec"].items() if k in SPEC_FIELDS}
    return StoredRule(
        m["id"], m["name"], m["position"], Rule(m["name"], m["action"], **spec), m["created_at"]
    )


def _list(m: RowMapping) -> StoredList:
    return StoredList(
        m["id"],
        m["name"],
        m["format"],
        m["url"],
        m["good_lines"],
        m["bad_lines"],
        list(m["bad_samples"]),
        m["refreshed_at"],
        m["refresh_error"],
        m["created_at"],
    )


def _spec(rule: Rule) -> dict[str, list[Any]]:
    return {name: list(getattr(rule, name)) for name in SPEC_FIELDS if getattr(rule, name)}


# -- settings ------------------------------------------------------------------------------


def get_settings(conn: Connection, org_id: str) -> tuple[OrgSettings, tuple[str, ...]]:
    """The org's settings and default-policy networks (defaults if never set)."""
    m = conn.execute(select(_s).where(_s.c.org_id == org_id)).mappings().first()
    if m is None:
        return OrgSettings(), ()
    settings = OrgSettings(
        m["block_answer"],
        m["block_page_ipv4"],
        m["block_page_ipv6"],
        m["privacy"],
        m["pseudonymise"],
        frozenset(m["allow_list_only_fleets"]),
    )
    return settings, tuple(m["networks"])


def put_settings(
    conn: Connection, org_id: str, settings: OrgSettings, networks: tuple[str, ...], now: datetime
) -> None:
    checked = [NetworkDefault(org_id, cidr).network() for cidr in networks]
    # The most specific network wins the DNS lookup: another org's space is refused.
    claims.claim(conn, org_id, checked)
    values = {
        "block_answer": settings.block_answer.value,
        "block_page_ipv4": settings.block_page_ipv4,
        "block_page_ipv6": settings.block_page_ipv6,
        "privacy": settings.privacy.value,
        "pseudonymise": settings.pseudonymise,
        "allow_list_only_fleets": sorted(settings.allow_list_only_fleets),
        "networks": list(networks),
        "updated_at": now,
    }
    done = conn.execute(update(_s).where(_s.c.org_id == org_id).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(_s).values(org_id=org_id, **values))


# -- rules ---------------------------------------------------------------------------------


def list_rules(conn: Connection, org_id: str) -> list[StoredRule]:
    rows = conn.execute(
        select(_r).where(_r.c.org_id == org_id, _IN_PLANE).order_by(_r.c.position, _r.c.id)
    )
    return [_rule(m) for m in rows.mappings()]


def get_rule(conn: Connection, org_id: str, rule_id: str) -> StoredRule:
    query = select(_r).where(_r.c.org_id == org_id, _r.c.id == rule_id, _IN_PLANE)
    m = conn.execute(query).mappings().first()
    if m is None:
        raise NotFound("no such DNS rule")
    return _rule(m)


def _check_lists(conn: Connection, org_id: str, rule: Rule) -> None:
    if rule.lists:
        known = set(conn.execute(select(_l.c.name).where(_l.c.org_id == org_id)).scalars())
        missing = sorted(set(rule.lists) - known)
        if missing:
            raise NotFound(f"no such DNS lists: {missing}")


def create_rule(
    conn: Connection, org_id: str, rule: Rule, position: int | None, now: datetime
) -> StoredRule:
    _check_lists(conn, org_id, rule)
    if position is None:
        last = conn.execute(
            select(func.max(_r.c.position)).where(_r.c.org_id == org_id, _IN_PLANE)
        ).scalar()
        position = 0 if last is None else int(last) + 1
    rule_id = new_id()
    try:
        conn.execute(
            insert(_r).values(
                id=rule_id,
                org_id=org_id,
                plane=PLANE,
                name=rule.id,
                position=position,
                action=rule.action.value,
                spec=_spec(rule),
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityError:
        raise Conflict("a DNS rule with this name exists") from None
    return get_rule(conn, org_id, rule_id)


def replace_rule(
    conn: Connection, org_id: str, rule_id: str, rule: Rule, position: int, now: datetime
) -> StoredRule:
    get_rule(conn, org_id, rule_id)
    _check_lists(conn, org_id, rule)
    try:
        conn.execute(
            update(_r)
            .where(_r.c.org_id == org_id, _r.c.id == rule_id, _IN_PLANE)
            .values(
                name=rule.id,
                position=position,
                action=rule.action.value,
                spec=_spec(rule),
                updated_at=now,
            )
        )
    except IntegrityError:
        raise Conflict("a DNS rule with this name exists") from None
    return get_rule(conn, org_id, rule_id)


def delete_rule(conn: Connection, org_id: str, rule_id: str) -> StoredRule:
    rule = get_rule(conn, org_id, rule_id)
    conn.execute(delete(_r).where(_r.c.org_id == org_id, _r.c.id == rule_id, _IN_PLANE))
    return rule


# -- lists ---------------------------------------------------------------------------------


def list_lists(conn: Connection, org_id: str) -> list[StoredList]:
    rows = conn.execute(select(_l).where(_l.c.org_id == org_id).order_by(_l.c.name))
    return [_list(m) for m in rows.mappings()]


def get_list(conn: Connection, org_id: str, list_id: str) -> StoredList:
    m = conn.execute(select(_l).where(_l.c.org_id == org_id, _l.c.id == list_id)).mappings().first()
    if m is None:
        raise NotFound("no such DNS list")
    return _list(m)


def _counts(content: str, fmt: str | None) -> dict[str, Any]:
    parsed = parse_list(content, ListFormat(fmt) if fmt else None)
    samples = [{"line": b.number, "reason": b.reason} for b in parsed.bad_samples]
    return {"good_lines": parsed.good_lines, "bad_lines": parsed.bad_lines, "bad_samples": samples}


def create_list(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    fmt: str | None,
    content: str,
    url: str | None,
    now: datetime,
) -> StoredList:
    if url is not None:
        # Syntax only (http/https, a host, no credentials): addresses are checked at
        # every download, against the ranges allowed then (ztsim.outbound).
        netguard.parse_target(url)
    list_id = new_id()
    try:
        conn.execute(
            insert(_l).values(
                id=list_id,
                org_id=org_id,
                name=name,
                format=fmt,
                url=url,
                content=content,
                refresh_error="",
                created_at=now,
                updated_at=now,
                **_counts(content, fmt),
            )
        )
    except IntegrityError:
        raise Conflict("a DNS list with this name exists") from None
    return get_list(conn, org_id, list_id)


def replace_list(
    conn: Connection,
    org_id: str,
    list_id: str,
    *,
    fmt: str | None,
    content: str | None,
    url: str | None,
    now: datetime,
) -> StoredList:
    """New text (`content`) or a new source (`url`) for a list, under its id and name,
    counted again. A URL list keeps its last good text until the refresher downloads the
    new URL (a block list that went empty meanwhile would let its names through); its
    validators and last error are dropped, so that download comes at the next round."""
    current = get_list(conn, org_id, list_id)
    if url is not None:
        netguard.parse_target(url)  # syntax only, as at creation
    text = current_content(conn, org_id, list_id) if content is None else content
    conn.execute(
        update(_l)
        .where(_l.c.org_id == org_id, _l.c.id == list_id)
        .values(
            format=fmt,
            url=url,
            content=text,
            etag=None,
            last_modified=None,
            refreshed_at=None if url is not None else current.refreshed_at,
            refresh_error="",
            updated_at=now,
            **_counts(text, fmt),
        )
    )
    return get_list(conn, org_id, list_id)


def current_content(conn: Connection, org_id: str, list_id: str) -> str:
    found = conn.execute(
        select(_l.c.content).where(_l.c.org_id == org_id, _l.c.id == list_id)
    ).scalar()
    return "" if found is None else str(found)


def store_download(
    conn: Connection, org_id: str, list_id: str, content: str | None, now: datetime, **meta: Any
) -> None:
    """Record a refresh: new content (None: unchanged or failed), validators, error text.
    New content is a policy change: recorded (`dns.list.refreshed`) and published
    (`Topic.DNS`) with it; a refresh that changed nothing publishes nothing."""
    values: dict[str, Any] = {"refreshed_at": now, **meta}
    with use_case(conn, now) as uc:
        if content is not None:
            current = get_list(conn, org_id, list_id)
            counts = _counts(content, current.format)
            values |= {"content": content, "updated_at": now, **counts}
            lines = {"good_lines": counts["good_lines"], "bad_lines": counts["bad_lines"]}
            subject = subject_of("dns-list", list_id)
            uc.audit(org_id, "dns.list.refreshed", REFRESH_ACTOR, subject, **lines)
            uc.change(org_id, Topic.DNS, org_id)
        conn.execute(update(_l).where(_l.c.org_id == org_id, _l.c.id == list_id).values(**values))


def delete_list(conn: Connection, org_id: str, list_id: str) -> StoredList:
    stored = get_list(conn, org_id, list_id)
    used = [r.name for r in list_rules(conn, org_id) if stored.name in r.rule.lists]
    if used:
        raise Conflict(f"the list is used by rules {used}")
    conn.execute(delete(_l).where(_l.c.org_id == org_id, _l.c.id == list_id))
    return stored


# -- device tokens -------------------------------------------------------------------------


def add_device_token(
    conn: Connection, org_id: str, device_id: str, token: str, now: datetime
) -> str:
    devices = schema.devices
    found = conn.execute(
        select(devices.c.id).where(devices.c.org_id == org_id, devices.c.id == device_id)
    ).first()
    if found is None:
        raise NotFound("no such device")
    token_id = new_id()
    conn.execute(
        insert(_t).values(
            id=token_id,
            org_id=org_id,
            device_id=device_id,
            token_hash=token_digest(token),
            prefix=token[:8],
            created_at=now,
        )
    )
    return token_id


def revoke_device_token(conn: Connection, org_id: str, token_id: str, now: datetime) -> None:
    done = conn.execute(
        update(_t)
        .where(_t.c.org_id == org_id, _t.c.id == token_id, _t.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if done.rowcount == 0:
        raise NotFound("no such DNS device token")
