"""DNS policy use cases (settings, rules, lists, DoH device tokens), shared by the API and
any other caller: each writes the change, its audit event and its change for the DNS
gateways in the caller's transaction (`ztsim.usecase`). Policy changes publish
`Topic.DNS` (key: the org: the gateway rebuilds that org's policy); device tokens publish
`Topic.DEVICE_TOKEN` (key: the token's id). Neither events nor changes carry a token.
URL list downloads publish from `repository.store_download`, where the refresher calls.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Connection

from ztsim.dns.policy.rules import OrgSettings, Rule
from ztsim.dns.store import repository as repo
from ztsim.errors import InvalidInput
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.usecase import UseCase, use_case

TOKEN_PREFIX = "ztdns_"  # noqa: S105 - a prefix, not a secret


def _policy_changed(
    uc: UseCase, org_id: str, kind: str, actor: str, subject: str, **payload: object
) -> None:
    uc.audit(org_id, kind, actor, subject, **payload)
    uc.change(org_id, Topic.DNS, org_id)


def put_settings(
    conn: Connection,
    org_id: str,
    settings: OrgSettings,
    networks: tuple[str, ...],
    *,
    actor: str,
    now: datetime,
) -> None:
    with use_case(conn, now) as uc:
        repo.put_settings(conn, org_id, settings, networks, now)
        payload = {"privacy": settings.privacy.value, "block_answer": settings.block_answer.value}
        _policy_changed(
            uc, org_id, "dns.settings.updated", actor, subject_of("org", org_id), **payload
        )


def create_rule(
    conn: Connection, org_id: str, rule: Rule, position: int | None, *, actor: str, now: datetime
) -> repo.StoredRule:
    with use_case(conn, now) as uc:
        stored = repo.create_rule(conn, org_id, rule, position, now)
        subject = subject_of("dns-rule", stored.id)
        _policy_changed(uc, org_id, "dns.rule.created", actor, subject, name=rule.id)
        return stored


def replace_rule(
    conn: Connection,
    org_id: str,
    rule_id: str,
    rule: Rule,
    position: int | None,
    *,
    actor: str,
    now: datetime,
) -> repo.StoredRule:
    """Replace a rule; with no position it keeps its place."""
    with use_case(conn, now) as uc:
        if position is None:
            position = repo.get_rule(conn, org_id, rule_id).position
        stored = repo.replace_rule(conn, org_id, rule_id, rule, position, now)
        subject = subject_of("dns-rule", rule_id)
        _policy_changed(uc, org_id, "dns.rule.updated", actor, subject, name=rule.id)
        return stored


def delete_rule(conn: Connection, org_id: str, rule_id: str, *, actor: str, now: datetime) -> None:
    with use_case(conn, now) as uc:
        stored = repo.delete_rule(conn, org_id, rule_id)
        subject = subject_of("dns-rule", rule_id)
        _policy_changed(uc, org_id, "dns.rule.deleted", actor, subject, name=stored.name)


def create_list(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    fmt: str | None,
    content: str,
    url: str | None,
    actor: str,
    now: datetime,
) -> repo.StoredList:
    with use_case(conn, now) as uc:
        stored = repo.create_list(
            conn, org_id, name=name, fmt=fmt, content=content, url=url, now=now
        )
        counts = {"good_lines": stored.good_lines, "bad_lines": stored.bad_lines}
        subject = subject_of("dns-list", stored.id)
        _policy_changed(uc, org_id, "dns.list.created", actor, subject, **counts)
        return stored


def replace_list(
    conn: Connection,
    org_id: str,
    list_id: str,
    *,
    fmt: str | None,
    content: str | None,
    url: str | None,
    actor: str,
    now: datetime,
) -> repo.StoredList:
    """New text or a new URL for a list; its id and name (what rules name) stay."""
    if (content is None) == (url is None):
        raise InvalidInput("give exactly one of content and url")
    with use_case(conn, now) as uc:
        stored = repo.replace_list(
            conn, org_id, list_id, fmt=fmt, content=content, url=url, now=now
        )
        counts = {"good_lines": stored.good_lines, "bad_lines": stored.bad_lines}
        subject = subject_of("dns-list", list_id)
        _policy_changed(uc, org_id, "dns.list.updated", actor, subject, name=stored.name, **counts)
        return stored


def delete_list(conn: Connection, org_id: str, list_id: str, *, actor: str, now: datetime) -> None:
    with use_case(conn, now) as uc:
        stored = repo.delete_list(conn, org_id, list_id)
        subject = subject_of("dns-list", list_id)
        _policy_changed(uc, org_id, "dns.list.deleted", actor, subject, name=stored.name)


# -- DoH device tokens ----------------------------------------------------------------------


def issue_device_token(
    conn: Connection, org_id: str, device_id: str, *, actor: str, now: datetime
) -> tuple[str, str]:
    """A new token for a device: (its id, the token), the token shown once and stored as
    its digest only."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with use_case(conn, now) as uc:
        token_id = repo.add_device_token(conn, org_id, device_id, token, now)
        subject = subject_of("device", device_id)
        uc.audit(org_id, "dns.device_token.created", actor, subject, id=token_id)
        uc.change(org_id, Topic.DEVICE_TOKEN, token_id)
        return token_id, token


def revoke_device_token(
    conn: Connection, org_id: str, token_id: str, *, actor: str, now: datetime
) -> None:
    with use_case(conn, now) as uc:
        repo.revoke_device_token(conn, org_id, token_id, now)
        uc.audit(org_id, "dns.device_token.revoked", actor, subject_of("dns-token", token_id))
        uc.change(org_id, Topic.DEVICE_TOKEN, token_id)
