"""`ztsim tokens create|list|revoke`: API tokens, through the API's use cases
(`ztsim.identity.service`). A token is printed once, at creation; afterwards only its id
and prefix are shown."""

from __future__ import annotations

from typing import Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import (
    ConfigOpt,
    DataDirOpt,
    OrgOpt,
    err,
    org_transaction,
    out,
    platform_for,
)
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import service, token_store
from ztsim.identity.roles import Role

# The prefix and name identify a token to `revoke`; its hex id is shown when there is room.
TOKEN_COLUMNS = (
    Col("prefix", whole=True),
    Col("name"),
    Col("role", whole=True),
    Col("identity", whole=True, drop=1),
    Col("state", whole=True),
    Col("id", whole=True, drop=2),
)


def create(
    role: Annotated[Role, typer.Option("--role", case_sensitive=False)],
    name: Annotated[str, typer.Option("--name")] = "cli",
    identity: Annotated[
        str | None, typer.Option("--identity", help="For --role self: id, email or name.")
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API token; it is printed once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        holder = None if identity is None else lookup.identity_id(conn, org_id, identity)
        info, token = service.issue_token(
            conn, org_id, name=name, role=role, identity_id=holder, actor=actor(), now=utc_now()
        )
    err.print(f"Token {info.id} ({info.role.value}), shown once:")
    out.print(token, markup=False, highlight=False)


def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List API tokens (never the tokens themselves)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = token_store.list_tokens(conn, org_id)
        names = lookup.identity_names(conn, org_id, (t.identity_id or "" for t in items))
    now = utc_now()
    rows = []
    for t in items:
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "expired"
        else:
            state = "valid"
        holder = names.get(t.identity_id, t.identity_id) if t.identity_id else ""
        rows.append((t.prefix, t.name, t.role.value, holder, state, t.id))
    tables.show(out, TOKEN_COLUMNS, rows)
    out.print(lookup.count(len(items), "token"))


def revoke(
    token: Annotated[str, typer.Argument(help="The token's id, shown prefix or name.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API token: it stops working at once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        matches = [
            t for t in token_store.list_tokens(conn, org_id) if token in (t.id, t.prefix, t.name)
        ]
        if not matches:
            # Not echoed: an admin may paste the token itself here.
            raise NotFound("no token with that id, prefix or name in this org")
        if len(matches) > 1:
            raise InvalidInput(f"{len(matches)} tokens match: use the id")
        info = service.revoke_token(conn, org_id, matches[0].id, actor=actor(), now=utc_now())
    out.print(f"Token {info.id} ({info.name}) is revoked.", highlight=False)
