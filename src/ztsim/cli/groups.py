"""`ztsim groups` and `ztsim fleets`: named sets of identities, by name, through the
API's use cases (`ztsim.identity.service`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.identity import repository, service
from ztsim.usecase import use_case

NameArg = Annotated[str, typer.Argument(help="The name (unique in the org).")]
MembersArg = Annotated[list[str], typer.Argument(help="Identities: id, email or exact name.")]


def _create(
    noun: str, fleet: bool, name: str, org: str | None, config: Path | None, data_dir: Path | None
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        c = service.create_collection(conn, org_id, name, fleet=fleet, actor=actor(), now=utc_now())
    out.print(f"Created {noun} {c.name}.")


def _list(
    noun: str, fleet: bool, org: str | None, config: Path | None, data_dir: Path | None
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = repository.list_collections(conn, org_id, fleet=fleet)
        names = lookup.identity_names(conn, org_id, (m for c in items for m in c.member_ids))
    # Members wrap between names, never inside an email.
    rows = [(c.name, ", ".join(sorted(names.get(m, m) for m in c.member_ids))) for c in items]
    tables.show(out, (Col(noun), Col("members")), rows)
    out.print(lookup.count(len(items), noun))


def _add(
    noun: str,
    fleet: bool,
    name: str,
    members: list[str],
    org: str | None,
    config: Path | None,
    data_dir: Path | None,
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        c = lookup.collection(conn, org_id, name, fleet=fleet)
        idents = [lookup.identity_id(conn, org_id, key) for key in members]
        c = service.add_members(
            conn, org_id, c.id, idents, fleet=fleet, actor=actor(), now=utc_now()
        )
    out.print(f"{noun.capitalize()} {c.name} has {lookup.count(len(c.member_ids), 'member')}.")


def _remove(
    noun: str,
    fleet: bool,
    name: str,
    members: list[str],
    org: str | None,
    config: Path | None,
    data_dir: Path | None,
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        c = lookup.collection(conn, org_id, name, fleet=fleet)
        idents = [lookup.identity_id(conn, org_id, key) for key in members]
        # One use case for all: the members leave together or not at all.
        with use_case(conn, utc_now()) as uc:
            for ident in idents:
                c = service.remove_member(
                    conn, org_id, c.id, ident, fleet=fleet, actor=actor(), now=uc.now
                )
    out.print(f"{noun.capitalize()} {c.name} has {lookup.count(len(c.member_ids), 'member')}.")


groups = typer.Typer(help="Groups of identities (eSIM orders, DNS rules).", no_args_is_help=True)
fleets = typer.Typer(help="Fleets of service identities (IoT).", no_args_is_help=True)


@groups.command("create")
def group_create(
    name: NameArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Create a group."""
    _create("group", False, name, org, config, data_dir)


@groups.command("list")
def group_list(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List groups and their members."""
    _list("group", False, org, config, data_dir)


@groups.command("add")
def group_add(
    name: NameArg,
    members: MembersArg,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add identities to a group (all or none)."""
    _add("group", False, name, members, org, config, data_dir)


@fleets.command("create")
def fleet_create(
    name: NameArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Create a fleet."""
    _create("fleet", True, name, org, config, data_dir)


@fleets.command("list")
def fleet_list(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List fleets and their members."""
    _list("fleet", True, org, config, data_dir)


@fleets.command("add")
def fleet_add(
    name: NameArg,
    members: MembersArg,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add service identities to a fleet (all or none)."""
    _add("fleet", True, name, members, org, config, data_dir)


@groups.command("remove")
def group_remove(
    name: NameArg,
    members: MembersArg,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Take identities out of a group (all or none)."""
    _remove("group", False, name, members, org, config, data_dir)


@fleets.command("remove")
def fleet_remove(
    name: NameArg,
    members: MembersArg,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Take service identities out of a fleet (all or none)."""
    _remove("fleet", True, name, members, org, config, data_dir)
