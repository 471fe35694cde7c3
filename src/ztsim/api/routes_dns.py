"""The org's DNS policy: settings, ordered rules, block lists and DoH device tokens.

Admins write; operators, analysts and auditors read (operators troubleshoot devices,
analysts read the policy behind the DNS events they investigate). A device token is
shown once, at creation, and stored as its SHA-256. Each change is one use case of
`ztsim.dns.store.service`, which records it and publishes it to the DNS gateways.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import ObjectId, Request, _storable
from ztsim.dns.policy.lists import ListFormat
from ztsim.dns.policy.rules import Action, BlockAnswer, Category, OrgSettings, PrivacyMode, Rule
from ztsim.dns.store import repository as repo
from ztsim.dns.store import service
from ztsim.errors import InvalidInput
from ztsim.identity.models import IdentityKind
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
# A posture check a rule requires (`!name`: must not pass) and a SIM condition; checked
# in full by `Rule` (`ztsim.policy.rules`, `ztsim.policy.conditions`).
CheckRef = Annotated[str, StringConstraints(pattern=r"^!?[a-z0-9][a-z0-9-]{0,62}$")]
SimCondition = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(_storable)
]
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
    identity_kinds: list[IdentityKind] = Field(default_factory=list, max_length=2)
    posture: list[CheckRef] = Field(
        default_factory=list,
        max_length=20,
        description="Posture checks that must pass (`!name`: must not pass) for it to apply.",
    )
    sim: list[SimCondition] = Field(
        default_factory=list,
        max_length=20,
        description="SIM conditions that must hold for it to apply: `sim.swap_age < 24h`.",
    )

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
    identity_kinds: list[str]
    posture: list[str]
    sim: list[str]
    created_at: datetime


class ListIn(Request):
    name: ListName
    format: ListFormat | None = None
    content: Annotated[str, StringConstraints(max_length=MAX_LIST_TEXT)] | None = None
    url: Url | None = None


class ListUpdate(Request):
    """A list's new text or URL; its id and name stay. Without `format` each line's format
    is guessed, as at creation."""

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
        identity_kinds=list(r.identity_kinds),
        posture=list(r.posture),
        sim=list(r.sim),
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


@router.get("/dns/settings", tags=["dns"])
def get_settings(ctx: Ctx, p: DnsRead) -> SettingsBody:
    """The org's DNS settings (defaults until first set): what a blocked name gets
    (`block_answer`, the block page addresses), which queries are logged (`privacy`:
    blocked-only, all or none) and whether pseudonymised, the fleets limited to what allow
    rules let through, and `networks`: source networks without a SIM session whose queries
    get the org's policy. Admins, operators, analysts and auditors (`dns:read`)."""
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
    """Replace the org's DNS settings as a whole: a field left out goes back to its default.
    The DNS gateways apply them at once. Admins only (`dns:write`); 409 when a network
    overlaps address space another org holds (the answer names nothing of it), 422 for an
    invalid value."""
    settings = OrgSettings(
        body.block_answer,
        body.block_page_ipv4,
        body.block_page_ipv6,
        body.privacy,
        body.pseudonymise,
        frozenset(body.allow_list_only_fleets),
    )
    with ctx.tx() as conn:
        service.put_settings(
            conn, p.org_id, settings, tuple(body.networks), actor=p.actor, now=ctx.clock()
        )
    return body


@router.get("/dns/rules", tags=["dns"])
def list_rules(ctx: Ctx, p: DnsRead) -> list[RuleOut]:
    """The org's DNS rules in the order the gateway reads them: the first rule that matches
    a query decides (allow, block, override with a fixed answer, or safe search), and a name
    no rule matches is allowed, except for members of an allow-list-only fleet. Admins,
    operators, analysts and auditors (`dns:read`)."""
    with ctx.read() as conn:
        return [_rule_out(r) for r in repo.list_rules(conn, p.org_id)]


@router.post("/dns/rules", status_code=201, tags=["dns"])
def create_rule(ctx: Ctx, p: DnsWrite, body: RuleIn) -> RuleOut:
    """Add a DNS rule: the names it matches (`domains`, `lists`, `categories`), who it
    applies to (identities, groups, fleets, SIM and identity kinds), what must hold for it
    to apply (`posture`, `sim`) and its action; without `position` it goes last. The DNS
    gateways apply it at once. Admins only (`dns:write`); 409 when the name is taken, 404
    for a list the org does not have, 422 for an invalid rule."""
    with ctx.tx() as conn:
        stored = service.create_rule(
            conn, p.org_id, body.to_rule(), body.position, actor=p.actor, now=ctx.clock()
        )
    return _rule_out(stored)


@router.get("/dns/rules/{rule_id}", tags=["dns"])
def get_rule(ctx: Ctx, p: DnsRead, rule_id: str) -> RuleOut:
    """One DNS rule. Admins, operators, analysts and auditors (`dns:read`); 404 for a rule
    that is unknown or another org's."""
    with ctx.read() as conn:
        return _rule_out(repo.get_rule(conn, p.org_id, rule_id))


@router.put("/dns/rules/{rule_id}", tags=["dns"])
def replace_rule(ctx: Ctx, p: DnsWrite, rule_id: str, body: RuleIn) -> RuleOut:
    """Replace a DNS rule; without `position` it keeps its place. The DNS gateways apply it
    at once. Admins only (`dns:write`); 409 when another rule has the name, 404 for a rule
    or list that is unknown or another org's, 422 for an invalid rule."""
    with ctx.tx() as conn:
        stored = service.replace_rule(
            conn, p.org_id, rule_id, body.to_rule(), body.position, actor=p.actor, now=ctx.clock()
        )
    return _rule_out(stored)


@router.delete("/dns/rules/{rule_id}", status_code=204, tags=["dns"])
def delete_rule(ctx: Ctx, p: DnsWrite, rule_id: str) -> Response:
    """Delete a DNS rule; the DNS gateways stop applying it at once. Admins only
    (`dns:write`); 404 for a rule that is unknown or another org's."""
    with ctx.tx() as conn:
        service.delete_rule(conn, p.org_id, rule_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


@router.get("/dns/lists", tags=["dns"])
def list_lists(ctx: Ctx, p: DnsRead) -> list[ListOut]:
    """The org's domain lists, which DNS rules name: for each, how many lines parsed and
    samples of those that did not, and for a URL list when it was last downloaded and the
    last download error. The lists' text is not returned. Admins, operators, analysts and
    auditors (`dns:read`)."""
    with ctx.read() as conn:
        return [_list_out(s) for s in repo.list_lists(conn, p.org_id)]


@router.post("/dns/lists", status_code=201, tags=["dns"])
def create_list(ctx: Ctx, p: DnsWrite, body: ListIn) -> ListOut:
    """Add a named domain list, from its text (`content`, up to 64 MiB) or from a URL
    (`url`) that ztsim downloads and refreshes; without `format` each line's format is
    guessed. Rules name it by its name. Admins only (`dns:write`); 409 when the name is
    taken, 422 unless exactly one of `content` and `url` is given."""
    if (body.content is None) == (body.url is None):
        raise InvalidInput("give exactly one of content and url")
    if body.content is not None:
        _storable(body.content)
    with ctx.tx() as conn:
        stored = service.create_list(
            conn,
            p.org_id,
            name=body.name,
            fmt=body.format.value if body.format else None,
            content=body.content or "",
            url=body.url,
            actor=p.actor,
            now=ctx.clock(),
        )
    return _list_out(stored)


@router.get("/dns/lists/{list_id}", tags=["dns"])
def get_list(ctx: Ctx, p: DnsRead, list_id: str) -> ListOut:
    """One domain list's source and line counts, without its text. Admins, operators,
    analysts and auditors (`dns:read`); 404 for a list that is unknown or another org's."""
    with ctx.read() as conn:
        return _list_out(repo.get_list(conn, p.org_id, list_id))


@router.put("/dns/lists/{list_id}", tags=["dns"])
def replace_list(ctx: Ctx, p: DnsWrite, list_id: str, body: ListUpdate) -> ListOut:
    """New text or a new URL for a domain list; its id and name, which rules use, stay. A
    URL list keeps its last text until the new URL is downloaded. Admins only (`dns:write`);
    422 unless exactly one of `content` and `url` is given, 404 for a list that is unknown
    or another org's."""
    if body.content is not None:
        _storable(body.content)
    with ctx.tx() as conn:
        stored = service.replace_list(
            conn,
            p.org_id,
            list_id,
            fmt=body.format.value if body.format else None,
            content=body.content,
            url=body.url,
            actor=p.actor,
            now=ctx.clock(),
        )
    return _list_out(stored)


@router.delete("/dns/lists/{list_id}", status_code=204, tags=["dns"])
def delete_list(ctx: Ctx, p: DnsWrite, list_id: str) -> Response:
    """Delete a domain list. Admins only (`dns:write`); 409 while DNS rules name it (the
    answer lists them), 404 for a list that is unknown or another org's."""
    with ctx.tx() as conn:
        service.delete_list(conn, p.org_id, list_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


@router.post("/dns/device-tokens", status_code=201, tags=["dns"])
def create_device_token(ctx: Ctx, p: DnsWrite, body: DeviceTokenIn) -> DeviceTokenOut:
    """Issue a DNS-over-HTTPS token for a device of the org: the device sends its queries to
    `/dns-query/<token>` and gets its owner's DNS policy wherever it is connected. The token
    is in this response only; ztsim keeps its digest. Admins only (`dns:write`); 404 for a
    device not in the org."""
    with ctx.tx() as conn:
        token_id, token = service.issue_device_token(
            conn, p.org_id, body.device_id, actor=p.actor, now=ctx.clock()
        )
    return DeviceTokenOut(
        id=token_id, device_id=body.device_id, token=token, path=f"/dns-query/{token}"
    )


@router.delete("/dns/device-tokens/{dns_token_id}", status_code=204, tags=["dns"])
def revoke_device_token(ctx: Ctx, p: DnsWrite, dns_token_id: str) -> Response:
    """Revoke a device's DNS-over-HTTPS token: the DNS gateway refuses its queries from then
    on. Admins only (`dns:write`); 404 for a token that is unknown, another org's or already
    revoked."""
    with ctx.tx() as conn:
        service.revoke_device_token(conn, p.org_id, dns_token_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)
