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
    return MeOut(org_id=p.org_id, role=p.role.value, token_id=p.token_id, identity_id=p.identity_id)


@router.get("/org", tags=["identity"])
def get_org(ctx: Ctx, p: OrgRead) -> OrgOut:
    with ctx.read() as conn:
        return OrgOut.model_validate(repository.get_org(conn, p.org_id), from_attributes=True)


@router.patch("/org", tags=["identity"])
def patch_org(ctx: Ctx, p: OrgWrite, body: OrgPatch) -> OrgOut:
    with ctx.tx() as conn:
        org = service.update_org(
            conn, p.org_id, tofu_binding=body.tofu_binding, actor=p.actor, now=ctx.clock()
        )
    return OrgOut.model_validate(org, from_attributes=True)


# -- identities ---------------------------------------------------------------------------


@router.post("/identities", status_code=201, tags=["identity"])
def create_identity(ctx: Ctx, p: IdentitiesWrite, body: IdentityIn) -> IdentityOut:
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
    with ctx.read() as conn:
        ident = repository.get_identity(conn, p.org_id, identity_id)
    return IdentityOut.model_validate(ident, from_attributes=True)


@router.patch("/identities/{identity_id}", tags=["identity"])
def patch_identity(
    ctx: Ctx, p: IdentitiesWrite, identity_id: str, body: IdentityPatch
) -> IdentityOut:
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

    @router.post(plural, status_code=201, tags=["identity"], name=f"create_{noun}")
    def create(ctx: Ctx, p: IdentitiesWrite, body: CollectionIn) -> CollectionOut:
        with ctx.tx() as conn:
            c = service.create_collection(
                conn, p.org_id, body.name, fleet=fleet, actor=p.actor, now=ctx.clock()
            )
            return _collection_out(c)

    @router.get(plural, tags=["identity"], name=f"list_{noun}s")
    def list_all(ctx: Ctx, p: IdentitiesRead) -> list[CollectionOut]:
        with ctx.tx() as conn:
            return [
                _collection_out(c) for c in repository.list_collections(conn, p.org_id, fleet=fleet)
            ]

    @router.get(one, tags=["identity"], name=f"get_{noun}")
    def get_one(ctx: Ctx, p: IdentitiesRead, cid: Annotated[str, _path(noun)]) -> CollectionOut:
        with ctx.tx() as conn:
            return _collection_out(repository.get_collection(conn, p.org_id, cid, fleet=fleet))

    @router.put(member, tags=["identity"], name=f"add_{noun}_member")
    def add(
        ctx: Ctx, p: IdentitiesWrite, cid: Annotated[str, _path(noun)], identity_id: str
    ) -> CollectionOut:
        with ctx.tx() as conn:
            c = service.add_members(
                conn, p.org_id, cid, [identity_id], fleet=fleet, actor=p.actor, now=ctx.clock()
            )
            return _collection_out(c)

    @router.delete(member, tags=["identity"], name=f"remove_{noun}_member")
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
    with ctx.read() as conn:
        return [
            TokenOut.model_validate(t, from_attributes=True)
            for t in token_store.list_tokens(conn, p.org_id)
        ]


@router.delete("/tokens/{token_id}", tags=["identity"])
def revoke_token(ctx: Ctx, p: TokensWrite, token_id: str) -> TokenOut:
    with ctx.tx() as conn:
        info = service.revoke_token(conn, p.org_id, token_id, actor=p.actor, now=ctx.clock())
        return TokenOut.model_validate(info, from_attributes=True)
