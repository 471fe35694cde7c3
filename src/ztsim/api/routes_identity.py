# No `from __future__ import annotations`: the group and fleet routes are built in a
# function, and FastAPI must see their parameter annotations evaluated.
"""Routes for the org, identities, groups, fleets and API tokens: each change is one use
case of `ztsim.identity.service` (its audit event and plane change included)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ztsim.api.deps import (
    AnyPrincipal,
    Ctx,
    IdentitiesRead,
    IdentitiesWrite,
    OrgRead,
    OrgWrite,
    TokensRead,
    TokensWrite,
)
from ztsim.api.schemas import (
    CollectionIn,
    CollectionOut,
    IdentityIn,
    IdentityOut,
    IdentityPatch,
    MeOut,
    OrgOut,
    OrgPatch,
    Page,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from ztsim.identity import repository, service, token_store
from ztsim.identity.models import Collection, IdentityKind
from ztsim.identity.roles import Role

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/me", tags=["identity"])
def me(p: AnyPrincipal) -> MeOut:
    """Who the presented token is: its org, its role, its id and, for a token that names a
    person, that identity. Any valid token may call it, whatever its role; 401 for a token
    that is missing, unknown, expired or revoked, or whose identity is disabled."""
    return MeOut(org_id=p.org_id, role=p.role.value, token_id=p.token_id, identity_id=p.identity_id)


@router.get("/org", tags=["identity"])
def get_org(ctx: Ctx, p: OrgRead) -> OrgOut:
    """The caller's org: its name, slug and whether trust on first attach (`tofu_binding`)
    is on. Roles admin, operator, analyst, auditor and self (`org:read`)."""
    with ctx.read() as conn:
        return OrgOut.model_validate(repository.get_org(conn, p.org_id), from_attributes=True)


@router.patch("/org", tags=["identity"])
def patch_org(ctx: Ctx, p: OrgWrite, body: OrgPatch) -> OrgOut:
    """Change the org's settings; today only `tofu_binding`, trust on first attach: when on,
    a SIM with no bound device is bound to the first device it attaches from; when off, such
    a SIM is refused. Every AAA server applies the change at once, and it is audited
    (`org.updated`). Admins only (`org:write`)."""
    with ctx.tx() as conn:
        org = service.update_org(
            conn, p.org_id, tofu_binding=body.tofu_binding, actor=p.actor, now=ctx.clock()
        )
    return OrgOut.model_validate(org, from_attributes=True)


# -- identities ---------------------------------------------------------------------------


@router.post("/identities", status_code=201, tags=["identity"])
def create_identity(ctx: Ctx, p: IdentitiesWrite, body: IdentityIn) -> IdentityOut:
    """Create an identity: a person (`user`) or a service identity for machines such as an
    IoT fleet (`service`). It holds no SIM until one is assigned or ordered for it. Admins
    only (`identities:write`); 409 when the org already has an identity with that email or
    external id."""
    with ctx.tx() as conn:
        ident = service.create_identity(
            conn,
            p.org_id,
            kind=IdentityKind(body.kind),
            name=body.name,
            email=body.email,
            external_id=body.external_id,
            actor=p.actor,
            now=ctx.clock(),
        )
        return IdentityOut.model_validate(ident, from_attributes=True)


@router.get("/identities", tags=["identity"])
def list_identities(
    ctx: Ctx,
    p: IdentitiesRead,
    kind: Annotated[IdentityKind | None, Query()] = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[IdentityOut]:
    """The org's identities, a page at a time (`limit`, then `next_cursor` as `cursor`),
    optionally users or service identities only (`kind`). Admins, operators and auditors
    (`identities:read`)."""
    with ctx.read() as conn:
        items, next_cursor = repository.list_identities(
            conn, p.org_id, kind=kind, limit=limit, cursor=cursor
        )
    return Page[IdentityOut](
        items=[IdentityOut.model_validate(i, from_attributes=True) for i in items],
        next_cursor=next_cursor,
    )


@router.get("/identities/{identity_id}", tags=["identity"])
def get_identity(ctx: Ctx, p: IdentitiesRead, identity_id: str) -> IdentityOut:
    """One identity of the org. Admins, operators and auditors (`identities:read`); 404 for
    an id that is unknown or another org's."""
    with ctx.read() as conn:
        ident = repository.get_identity(conn, p.org_id, identity_id)
    return IdentityOut.model_validate(ident, from_attributes=True)


@router.patch("/identities/{identity_id}", tags=["identity"])
def patch_identity(
    ctx: Ctx, p: IdentitiesWrite, identity_id: str, body: IdentityPatch
) -> IdentityOut:
    """Rename, enable or disable an identity; fields left out stay. Disabling cuts the
    person off at once: the RADIUS server refuses their SIMs and disconnects their live
    sessions, the DNS gateway answers their addresses REFUSED, and tokens that name them
    stop working. Admins only (`identities:write`); 404 for an identity that is unknown or
    another org's."""
    with ctx.tx() as conn:
        ident = service.update_identity(
            conn,
            p.org_id,
            identity_id,
            name=body.name,
            enabled=body.enabled,
            actor=p.actor,
            now=ctx.clock(),
        )
    ctx.principals.forget_all()  # a disabled identity's tokens: refused from now on
    return IdentityOut.model_validate(ident, from_attributes=True)


# -- groups and fleets --------------------------------------------------------------------


def _collection_out(c: Collection) -> CollectionOut:
    return CollectionOut(
        id=c.id, name=c.name, member_ids=list(c.member_ids), created_at=c.created_at
    )


def _collection_routes(noun: str, fleet: bool) -> None:
    plural = f"/{noun}s"
    one = f"/{noun}s/{{{noun}_id}}"
    member = f"{one}/members/{{identity_id}}"
    # One function makes both nouns' routes: their descriptions name the noun.
    what = (
        "a set of service identities, such as an IoT fleet"
        if fleet
        else "a set of identities, such as a team"
    )
    allow_only = (
        " The DNS settings can also limit a fleet to what allow rules let through." if fleet else ""
    )
    members_only = ", 422 for a person: a fleet holds service identities only" if fleet else ""
    readers = "Admins, operators and auditors (`identities:read`)"

    @router.post(
        plural,
        status_code=201,
        tags=["identity"],
        name=f"create_{noun}",
        description=f"Create a {noun}: {what}. DNS and policy rules can select on it."
        f"{allow_only} Admins only (`identities:write`); 409 when the org has a {noun} of "
        "that name.",
    )
    def create(ctx: Ctx, p: IdentitiesWrite, body: CollectionIn) -> CollectionOut:
        with ctx.tx() as conn:
            c = service.create_collection(
                conn, p.org_id, body.name, fleet=fleet, actor=p.actor, now=ctx.clock()
            )
            return _collection_out(c)

    @router.get(
        plural,
        tags=["identity"],
        name=f"list_{noun}s",
        description=f"The org's {noun}s by name, with their members' identity ids. {readers}.",
    )
    def list_all(ctx: Ctx, p: IdentitiesRead) -> list[CollectionOut]:
        with ctx.tx() as conn:
            return [
                _collection_out(c) for c in repository.list_collections(conn, p.org_id, fleet=fleet)
            ]

    @router.get(
        one,
        tags=["identity"],
        name=f"get_{noun}",
        description=f"One {noun} with its members' identity ids. {readers}; 404 for a "
        f"{noun} that is unknown or another org's.",
    )
    def get_one(ctx: Ctx, p: IdentitiesRead, cid: Annotated[str, _path(noun)]) -> CollectionOut:
        with ctx.tx() as conn:
            return _collection_out(repository.get_collection(conn, p.org_id, cid, fleet=fleet))

    @router.put(
        member,
        tags=["identity"],
        name=f"add_{noun}_member",
        description=f"Add an identity to the {noun} (adding a member again is harmless). "
        f"The gateways re-read that identity at once, so rules that select the {noun} "
        f"apply to it. Admins only (`identities:write`); 404 for a {noun} or identity not "
        f"in the org{members_only}.",
    )
    def add(
        ctx: Ctx, p: IdentitiesWrite, cid: Annotated[str, _path(noun)], identity_id: str
    ) -> CollectionOut:
        with ctx.tx() as conn:
            c = service.add_members(
                conn, p.org_id, cid, [identity_id], fleet=fleet, actor=p.actor, now=ctx.clock()
            )
            return _collection_out(c)

    @router.delete(
        member,
        tags=["identity"],
        name=f"remove_{noun}_member",
        description=f"Remove an identity from the {noun}: rules that select the {noun} "
        f"stop applying to it at once. Admins only (`identities:write`); 404 when the "
        f"identity is not a member or the {noun} is not the org's.",
    )
    def remove(
        ctx: Ctx, p: IdentitiesWrite, cid: Annotated[str, _path(noun)], identity_id: str
    ) -> CollectionOut:
        with ctx.tx() as conn:
            c = service.remove_member(
                conn, p.org_id, cid, identity_id, fleet=fleet, actor=p.actor, now=ctx.clock()
            )
            return _collection_out(c)


def _path(noun: str) -> Any:
    return Path(alias=f"{noun}_id")


_collection_routes("group", fleet=False)
_collection_routes("fleet", fleet=True)


# -- tokens -------------------------------------------------------------------------------


@router.post("/tokens", status_code=201, tags=["identity"])
def create_token(ctx: Ctx, p: TokensWrite, body: TokenIn) -> TokenCreated:
    """Issue an API token with a role: admin, operator, analyst, auditor, self (one person's
    own SIMs, devices and data; `identity_id` required), network (a core's AUSF:
    authentication vectors only), smdp (eSIM progress reports only) or posture (an MDM
    connector: posture reports only). The token is in this response only; ztsim keeps its
    hash. Admins only (`tokens:write`); 422 for a self token without an identity or an
    `expires_at` in the past, 404 for an identity not in the org."""
    with ctx.tx() as conn:
        info, token = service.issue_token(
            conn,
            p.org_id,
            name=body.name,
            role=Role(body.role),
            identity_id=body.identity_id,
            expires_at=body.expires_at,
            actor=p.actor,
            now=ctx.clock(),
        )
    return TokenCreated(
        **TokenOut.model_validate(info, from_attributes=True).model_dump(), token=token
    )


@router.get("/tokens", tags=["identity"])
def list_tokens(ctx: Ctx, p: TokensRead) -> list[TokenOut]:
    """The org's API tokens, oldest first: name, role, identity, the first characters to
    recognise one by (`prefix`), expiry and revocation; never the token itself. Admins and
    auditors (`tokens:read`)."""
    with ctx.read() as conn:
        return [
            TokenOut.model_validate(t, from_attributes=True)
            for t in token_store.list_tokens(conn, p.org_id)
        ]


@router.delete("/tokens/{token_id}", tags=["identity"])
def revoke_token(ctx: Ctx, p: TokensWrite, token_id: str) -> TokenOut:
    """Revoke a token: this server refuses it from its next request on, other API
    servers of the deployment within a second (their gate remembers valid tokens for a
    second). Revoking a revoked token changes nothing. Admins only (`tokens:write`); 404
    for a token that is unknown or another org's."""
    with ctx.tx() as conn:
        info = service.revoke_token(conn, p.org_id, token_id, actor=p.actor, now=ctx.clock())
    ctx.principals.forget_all()
    return TokenOut.model_validate(info, from_attributes=True)
