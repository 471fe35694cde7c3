"""The org's DNS policy: settings, ordered rules, block lists and DoH device tokens.

Admins write; operators, analysts and auditors read (operators troubleshoot devices,
analysts read the policy behind the DNS events they investigate). A device token is
shown once, at creation, and stored as its SHA-256. The gateway picks changes up at
its next snapshot rebuild.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import ObjectId, Request, _storable
from ztsim.dns.policy.lists import ListFormat
from ztsim.dns.policy.rules import Action, BlockAnswer, Category, OrgSettings, PrivacyMode, Rule
from ztsim.dns.store import repository as repo
from ztsim.errors import InvalidInput
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, subject_of
from ztsim.identity.roles import Permission, Principal
from ztsim.inventory.models import SimKind

router = APIRouter()
DnsRead = Annotated[Principal, Depends(require(Permission.DNS_READ))]
DnsWrite = Annotated[Principal, Depends(require(Permission.DNS_WRITE))]
Text = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_storable)]
ListName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"), AfterValidator(_storable)
]
MAX_LIST_TEXT = 64 * 1024 * 1024  # an uploaded list; larger lists come from a URL
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,1990}$")]


class SettingsBody(Request):
    block_answer: BlockAnswer = BlockAnswer.NULL_IP
    block_page_ipv4: Text | None = None
    block_page_ipv6: Text | None = None
    privacy: PrivacyMode = PrivacyMode.BLOCKED_ONLY
    pseudonymise: bool = False
    allow_list_only_fleets: list[ObjectId] = Field(default_factory=list, max_length=100)
    networks: list[Text] = Field(default_factory=list, max_length=100)


class RuleIn(Request):
    name: ListName
    action: Action
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    domains: list[Text] = Field(default_factory=list, max_length=1000)
    lists: list[ListName] = Field(default_factory=list, max_length=64)
    categories: list[Category] = Field(default_factory=list, max_length=10)
    qtypes: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list, max_length=50)
    identities: list[ObjectId] = Field(default_factory=list, max_length=1000)
    groups: list[ObjectId] = Field(default_factory=list, max_length=100)
    fleets: list[ObjectId] = Field(default_factory=list, max_length=100)
    sim_kinds: list[SimKind] = Field(default_factory=list, max_length=2)
    answer: list[Text] = Field(default_factory=list, max_length=20)

    def to_rule(self) -> Rule:
        fields = self.model_dump(exclude={"name", "action", "position"})
        return Rule(self.name, self.action, **{k: tuple(v) for k, v in fields.items()})


class RuleOut(BaseModel):
    id: str
    name: str
    position: int
    action: Action
    domains: list[str]
    lists: list[str]
    categories: list[Category]
    qtypes: list[int]
    identities: list[str]
    groups: list[str]
    fleets: list[str]
    sim_kinds: list[str]
    answer: list[str]
    created_at: datetime


class ListIn(Request):
    name: ListName
    format: ListFormat | None = None
    content: Annotated[str, StringConstraints(max_length=MAX_LIST_TEXT)] | None = None
    url: Url | None = None


class BadLineOut(BaseModel):
    line: int
    reason: str


class ListOut(BaseModel):
    id: str
    name: str
    format: str | None
    url: str | None
    good_lines: int
    bad_lines: int
    bad_samples: list[BadLineOut]
    refreshed_at: datetime | None
    refresh_error: str
    created_at: datetime


class DeviceTokenIn(Request):
    device_id: ObjectId


class DeviceTokenOut(BaseModel):
    id: str
    device_id: str
    token: str = Field(description="Shown once: the device's DoH URL is /dns-query/<token>.")
    path: str


def _rule_out(stored: repo.StoredRule) -> RuleOut:
    r = stored.rule
    return RuleOut(
        id=stored.id,
        name=stored.name,
        position=stored.position,
        action=r.action,
        domains=list(r.domains),
        lists=list(r.lists),
        categories=list(r.categories),
        qtypes=list(r.qtypes),
        identities=list(r.identities),
        groups=list(r.groups),
        fleets=list(r.fleets),
        sim_kinds=list(r.sim_kinds),
        answer=list(r.answer),
        created_at=stored.created_at,
    )


def _list_out(s: repo.StoredList) -> ListOut:
    samples = [BadLineOut(**sample) for sample in s.bad_samples]
    return ListOut(
        id=s.id,
        name=s.name,
        format=s.format,
        url=s.url,
        good_lines=s.good_lines,
        bad_lines=s.bad_lines,
        bad_samples=samples,
        refreshed_at=s.refreshed_at,
        refresh_error=s.refresh_error,
        created_at=s.created_at,
    )


def _audit(p: Principal, kind: str, subject: str, **payload: object) -> NewEvent:
    return NewEvent(p.org_id, kind, p.actor, subject, payload=dict(payload))


@router.get("/dns/settings", tags=["dns"])
def get_settings(ctx: Ctx, p: DnsRead) -> SettingsBody:
    with ctx.read() as conn:
        settings, networks = repo.get_settings(conn, p.org_id)
    return SettingsBody(
        block_answer=settings.block_answer,
        block_page_ipv4=settings.block_page_ipv4,
        block_page_ipv6=settings.block_page_ipv6,
        privacy=settings.privacy,
        pseudonymise=settings.pseudonymise,
        allow_list_only_fleets=sorted(settings.allow_list_only_fleets),
        networks=list(networks),
    )


@router.put("/dns/settings", tags=["dns"])
def put_settings(ctx: Ctx, p: DnsWrite, body: SettingsBody) -> SettingsBody:
    settings = OrgSettings(
        body.block_answer,
        body.block_page_ipv4,
        body.block_page_ipv6,
        body.privacy,
        body.pseudonymise,
        frozenset(body.allow_list_only_fleets),
    )
    now = ctx.clock()
    with ctx.tx() as conn:
        repo.put_settings(conn, p.org_id, settings, tuple(body.networks), now)
        payload = {"privacy": body.privacy.value, "block_answer": body.block_answer.value}
        event = _audit(p, "dns.settings.updated", subject_of("org", p.org_id), **payload)
        events.append(conn, [event], now)
    return body


@router.get("/dns/rules", tags=["dns"])
def list_rules(ctx: Ctx, p: DnsRead) -> list[RuleOut]:
    with ctx.read() as conn:
        return [_rule_out(r) for r in repo.list_rules(conn, p.org_id)]


@router.post("/dns/rules", status_code=201, tags=["dns"])
def create_rule(ctx: Ctx, p: DnsWrite, body: RuleIn) -> RuleOut:
    rule, now = body.to_rule(), ctx.clock()
    with ctx.tx() as conn:
        stored = repo.create_rule(conn, p.org_id, rule, body.position, now)
        subject = subject_of("dns-rule", stored.id)
        events.append(conn, [_audit(p, "dns.rule.created", subject, name=rule.id)], now)
    return _rule_out(stored)


@router.get("/dns/rules/{rule_id}", tags=["dns"])
def get_rule(ctx: Ctx, p: DnsRead, rule_id: str) -> RuleOut:
    with ctx.read() as conn:
        return _rule_out(repo.get_rule(conn, p.org_id, rule_id))


@router.put("/dns/rules/{rule_id}", tags=["dns"])
def replace_rule(ctx: Ctx, p: DnsWrite, rule_id: str, body: RuleIn) -> RuleOut:
    rule, now = body.to_rule(), ctx.clock()
    with ctx.tx() as conn:
        position = body.position
        if position is None:
            position = repo.get_rule(conn, p.org_id, rule_id).position
        stored = repo.replace_rule(conn, p.org_id, rule_id, rule, position, now)
        subject = subject_of("dns-rule", rule_id)
        events.append(conn, [_audit(p, "dns.rule.updated", subject, name=rule.id)], now)
    return _rule_out(stored)


@router.delete("/dns/rules/{rule_id}", status_code=204, tags=["dns"])
def delete_rule(ctx: Ctx, p: DnsWrite, rule_id: str) -> Response:
    now = ctx.clock()
    with ctx.tx() as conn:
        stored = repo.delete_rule(conn, p.org_id, rule_id)
        subject = subject_of("dns-rule", rule_id)
        events.append(conn, [_audit(p, "dns.rule.deleted", subject, name=stored.name)], now)
    return Response(status_code=204)


@router.get("/dns/lists", tags=["dns"])
def list_lists(ctx: Ctx, p: DnsRead) -> list[ListOut]:
    with ctx.read() as conn:
        return [_list_out(s) for s in repo.list_lists(conn, p.org_id)]


@router.post("/dns/lists", status_code=201, tags=["dns"])
def create_list(ctx: Ctx, p: DnsWrite, body: ListIn) -> ListOut:
    if (body.content is None) == (body.url is None):
        raise InvalidInput("give exactly one of content and url")
    if body.content is not None:
        _storable(body.content)
    now = ctx.clock()
    fmt = body.format.value if body.format else None
    with ctx.tx() as conn:
        stored = repo.create_list(
            conn,
            p.org_id,
            name=body.name,
            fmt=fmt,
            content=body.content or "",
            url=body.url,
            now=now,
        )
        counts = {"good_lines": stored.good_lines, "bad_lines": stored.bad_lines}
        event = _audit(p, "dns.list.created", subject_of("dns-list", stored.id), **counts)
        events.append(conn, [event], now)
    return _list_out(stored)


@router.get("/dns/lists/{list_id}", tags=["dns"])
def get_list(ctx: Ctx, p: DnsRead, list_id: str) -> ListOut:
    with ctx.read() as conn:
        return _list_out(repo.get_list(conn, p.org_id, list_id))


@router.delete("/dns/lists/{list_id}", status_code=204, tags=["dns"])
def delete_list(ctx: Ctx, p: DnsWrite, list_id: str) -> Response:
    now = ctx.clock()
    with ctx.tx() as conn:
        stored = repo.delete_list(conn, p.org_id, list_id)
        subject = subject_of("dns-list", list_id)
        events.append(conn, [_audit(p, "dns.list.deleted", subject, name=stored.name)], now)
    return Response(status_code=204)


@router.post("/dns/device-tokens", status_code=201, tags=["dns"])
def create_device_token(ctx: Ctx, p: DnsWrite, body: DeviceTokenIn) -> DeviceTokenOut:
    token = "ztdns_" + secrets.token_urlsafe(32)
    now = ctx.clock()
    with ctx.tx() as conn:
        token_id = repo.add_device_token(conn, p.org_id, body.device_id, token, now)
        subject = subject_of("device", body.device_id)
        events.append(conn, [_audit(p, "dns.device_token.created", subject, id=token_id)], now)
    return DeviceTokenOut(
        id=token_id, device_id=body.device_id, token=token, path=f"/dns-query/{token}"
    )


@router.delete("/dns/device-tokens/{dns_token_id}", status_code=204, tags=["dns"])
def revoke_device_token(ctx: Ctx, p: DnsWrite, dns_token_id: str) -> Response:
    now = ctx.clock()
    with ctx.tx() as conn:
        repo.revoke_device_token(conn, p.org_id, dns_token_id, now)
        subject = subject_of("dns-token", dns_token_id)
        events.append(conn, [_audit(p, "dns.device_token.revoked", subject)], now)
    return Response(status_code=204)
