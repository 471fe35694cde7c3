"""`ztsim dns`: the org's DNS policy as an admin edits it: rules (`dns_rules`), block lists,
the org's settings (privacy mode, block answer, allow-list-only fleets, networks) and DoH
device tokens (`dns_tokens`), through the API's use cases (`ztsim.dns.store.service`),
which record each change and publish it to the DNS gateways."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Connection

from ztsim.cli import dns_rules, dns_tokens, lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.dns_shape import check_name, collection_names
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.dns.policy.lists import ListFormat
from ztsim.dns.policy.rules import BlockAnswer, OrgSettings, PrivacyMode
from ztsim.dns.store import repository as repo
from ztsim.dns.store import service
from ztsim.errors import InvalidInput, NotFound

app = typer.Typer(help="DNS policy: rules, block lists, settings.", no_args_is_help=True)
lists = typer.Typer(help="Block lists that rules name.", no_args_is_help=True)
settings = typer.Typer(help="The org's DNS settings.", no_args_is_help=True)
app.add_typer(dns_rules.app, name="rules")
app.add_typer(lists, name="lists")
app.add_typer(settings, name="settings")
app.add_typer(dns_tokens.app, name="device-tokens")

MAX_LIST_BYTES = 64 * 1024 * 1024  # as the API takes an uploaded list; larger ones: --url


def _read_list(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise InvalidInput("the list file is over 64 MiB: serve it and give --url")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the list file is not UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the list file: {exc.strerror}") from None
    if "\x00" in text:
        raise InvalidInput("the list file holds a NUL character")
    return text


def _find_list(conn: Connection, org_id: str, key: str) -> repo.StoredList:
    for stored in repo.list_lists(conn, org_id):
        if key in (stored.name, stored.id):
            return stored
    raise NotFound(f"no DNS list {key!r} in this org")


def _report(done: str, stored: repo.StoredList, fetched: str | None) -> None:
    """One line; for uploaded text, its counts and the lines skipped."""
    if fetched is not None:
        out.print(f"{done} DNS list {stored.name} ({fetched}).", highlight=False)
        return
    bad = f", {lookup.count(stored.bad_lines, 'bad line')} skipped" if stored.bad_lines else ""
    names = lookup.count(stored.good_lines, "name")
    out.print(f"{done} DNS list {stored.name} ({names}{bad}).", highlight=False)
    for sample in stored.bad_samples:
        out.print(f"  line {sample['line']}: {sample['reason']}", highlight=False, markup=False)


@lists.command("list")
def lists_list(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the org's block lists and how many of their lines were understood."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = repo.list_lists(conn, org_id)
    rows = [
        (
            s.name,
            str(s.good_lines),
            str(s.bad_lines),
            s.url or "uploaded",
            s.refresh_error,
            s.format or "auto",
        )
        for s in items
    ]
    columns = (
        Col("name", whole=True),
        Col("names", whole=True),
        Col("bad", whole=True),
        Col("source", whole=True),
        Col("last error"),
        Col("format", whole=True, drop=1),
    )
    tables.show(out, columns, rows)
    out.print(lookup.count(len(items), "list"))


@lists.command("add")
def lists_add(
    name: Annotated[str, typer.Argument(help="A name unique in the org (rules use it).")],
    file: Annotated[
        Path | None, typer.Option("--file", dir_okay=False, help="The list's text.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="http(s) URL, refreshed.")] = None,
    fmt: Annotated[
        ListFormat | None,
        typer.Option("--format", case_sensitive=False, help="Default: guessed per line."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a block list from a file, or from a URL that the DNS gateway refreshes."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        if (file is None) == (url is None):
            raise InvalidInput("give exactly one of --file and --url")
        stored = service.create_list(
            conn,
            org_id,
            name=check_name(name),
            fmt=fmt.value if fmt else None,
            content="" if file is None else _read_list(file),
            url=url,
            actor=actor(),
            now=utc_now(),
        )
    _report("Added", stored, "fetched by the DNS gateway" if url else None)


@lists.command("update")
def lists_update(
    dns_list: Annotated[str, typer.Argument(help="The list's name (or id); both stay.")],
    file: Annotated[
        Path | None, typer.Option("--file", dir_okay=False, help="The list's new text.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="A new http(s) URL, refreshed.")] = None,
    fmt: Annotated[
        ListFormat | None,
        typer.Option("--format", case_sensitive=False, help="Default: the list's current one."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Replace a list's text (from a file) or its URL; rules that name it keep it."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        if (file is None) == (url is None):
            raise InvalidInput("give exactly one of --file and --url")
        content = None if file is None else _read_list(file)
        current = _find_list(conn, org_id, dns_list)
        stored = service.replace_list(
            conn,
            org_id,
            current.id,
            fmt=fmt.value if fmt else current.format,
            content=content,
            url=url,
            actor=actor(),
            now=utc_now(),
        )
    _report("Updated", stored, "the DNS gateway fetches the new URL" if url else None)


@lists.command("remove")
def lists_remove(
    dns_list: Annotated[str, typer.Argument(help="The list's name (or id).")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a list that no rule uses."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        stored = _find_list(conn, org_id, dns_list)
        service.delete_list(conn, org_id, stored.id, actor=actor(), now=utc_now())
    out.print(f"Removed DNS list {stored.name}.", highlight=False)


class Clearable(enum.StrEnum):
    """What `settings set --clear` empties."""

    NETWORKS = "networks"
    FLEETS = "allow-list-only-fleets"
    BLOCK_PAGE = "block-page"


@settings.command("show")
def settings_show(
    org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Show the org's DNS settings."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        current, networks = repo.get_settings(conn, org_id)
        fleets = collection_names(conn, org_id, fleet=True)
    shown = sorted(fleets.get(f, f) for f in current.allow_list_only_fleets)
    rows = [
        ("privacy", current.privacy.value),
        ("block answer", current.block_answer.value),
        ("block page IPv4", current.block_page_ipv4 or ""),
        ("block page IPv6", current.block_page_ipv6 or ""),
        ("pseudonymise", "yes" if current.pseudonymise else "no"),
        ("allow-list-only fleets", ", ".join(shown)),
        ("networks", ", ".join(networks)),
    ]
    tables.show(out, (Col("setting", whole=True), Col("value")), rows)


@settings.command("set")
def settings_set(
    privacy: Annotated[
        PrivacyMode | None, typer.Option("--privacy", case_sensitive=False, help="What is logged.")
    ] = None,
    block_answer: Annotated[
        BlockAnswer | None,
        typer.Option("--block-answer", case_sensitive=False, help="What a blocked name gets."),
    ] = None,
    block_page_ipv4: Annotated[
        str | None, typer.Option("--block-page-ipv4", help="Block page address (block_page).")
    ] = None,
    block_page_ipv6: Annotated[
        str | None, typer.Option("--block-page-ipv6", help="Block page address (block_page).")
    ] = None,
    pseudonymise: Annotated[
        bool | None,
        typer.Option("--pseudonymise/--no-pseudonymise", help="Log identities by pseudonym."),
    ] = None,
    fleet: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-list-only-fleet", help="A fleet (name) that reaches only allowed names."
        ),
    ] = None,
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="A source prefix served the org's default policy."),
    ] = None,
    clear: Annotated[
        list[Clearable] | None,
        typer.Option("--clear", case_sensitive=False, help="Empty this setting (repeatable)."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change DNS settings: each option given replaces that setting; the rest are kept."""
    platform = platform_for(config, data_dir)
    cleared = set(clear or ())
    with org_transaction(platform, org) as (conn, org_id):
        current, networks = repo.get_settings(conn, org_id)
        fleets = current.allow_list_only_fleets
        if Clearable.FLEETS in cleared:
            fleets = frozenset()
        if fleet is not None:
            fleets = frozenset(lookup.collection(conn, org_id, n, fleet=True).id for n in fleet)
        ipv4, ipv6 = current.block_page_ipv4, current.block_page_ipv6
        if Clearable.BLOCK_PAGE in cleared:
            ipv4 = ipv6 = None
        if Clearable.NETWORKS in cleared:
            networks = ()
        changed = OrgSettings(
            block_answer or current.block_answer,
            block_page_ipv4 if block_page_ipv4 is not None else ipv4,
            block_page_ipv6 if block_page_ipv6 is not None else ipv6,
            privacy or current.privacy,
            current.pseudonymise if pseudonymise is None else pseudonymise,
            fleets,
        )
        if network is not None:
            networks = tuple(network)
        service.put_settings(conn, org_id, changed, networks, actor=actor(), now=utc_now())
    out.print(
        f"DNS settings saved: privacy {changed.privacy.value}, "
        f"block answer {changed.block_answer.value}.",
        highlight=False,
    )
