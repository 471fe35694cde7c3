"""`ztsim policy`: the org's whole policy as a file (export, diff, apply), its JSON Schema,
and why a subject gets the decision it gets (explain).

A file that is wrong ends the command with one line naming the file and the line, exit
code 2, and changes nothing. `apply` shows what would change and whose decisions, then
applies in one transaction (`ztsim.policy.store.apply`), refusing if the stored policy
changed after the diff was shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, say_error
from ztsim.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from ztsim.node.platform import Platform
    from ztsim.policy.diff import PolicyDiff
    from ztsim.policy.document import Document

app = typer.Typer(
    help="The org's policy as code: checks and the rules of every plane.", no_args_is_help=True
)
FileArg = Annotated[Path, typer.Argument(help="A policy file (YAML).", dir_okay=False)]
_SIGNS = {"added": "+", "removed": "-", "changed": "~", "moved": "^"}


def _platform(config: Path | None, data_dir: Path | None) -> Platform:
    from ztsim.cli.common import platform_for

    return platform_for(config, data_dir)


def _read(conn: Connection, org_id: str, path: Path) -> Document:
    """The file as a document, checked against the org (its DNS lists); exit 2 if wrong."""
    from ztsim.dns.store.policy_check import dns_check
    from ztsim.policy import document

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        say_error(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}")
        raise typer.Exit(2) from None
    try:
        return document.load(text, str(path), check_dns=dns_check(conn, org_id))
    except (InvalidInput, NotFound) as exc:
        say_error(str(exc))
        raise typer.Exit(2) from None


def _names(conn: Connection, ids: tuple[str, ...]) -> dict[str, str]:
    from sqlalchemy import select

    from ztsim.db import schema

    t = schema.identities
    return (
        dict(conn.execute(select(t.c.id, t.c.name).where(t.c.id.in_(ids))).tuples().all())
        if ids
        else {}
    )


def _show(found: PolicyDiff, names: dict[str, str]) -> None:
    if found.empty:
        out.print("No changes: the file is the org's policy.", highlight=False)
        return
    for change in found.changes:
        where = f" ({change.plane})" if change.plane is not None else ""
        fields = f": {', '.join(change.fields)}" if change.fields else ""
        line = f"  {_SIGNS[change.kind]} {change.item} {change.name}{where} {change.kind}{fields}"
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    who = found.identities
    sims = [s for s in found.subjects if s.identity_id is None]
    if not who and not sims:
        out.print("No subject's decisions change.", highlight=False)
        return
    count = len(who) + len(sims)
    out.print(f"Decisions change for {count} subject{'s' if count != 1 else ''}:", highlight=False)
    for subject in found.subjects:
        label = names.get(subject.identity_id or "", "") or "(no name)"
        ident = subject.identity_id or f"SIM {subject.iccid}"
        planes = ", ".join(p.value for p in subject.planes)
        sim = f" SIM {subject.iccid}" if subject.identity_id and subject.iccid else ""
        out.print(
            f"  {label} {ident}{sim}: {planes}", highlight=False, markup=False, soft_wrap=True
        )


def _diff(conn: Connection, org_id: str, new: Document) -> tuple[Document, PolicyDiff]:
    from ztsim.clock import utc_now
    from ztsim.policy import diff
    from ztsim.policy.store import apply, facts

    current = apply.export(conn, org_id)
    found = diff.diff(current, new, facts.subjects(conn, org_id), utc_now())
    _show(found, _names(conn, found.identities))
    return current, found


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", dir_okay=False, help="Default: stdout.")
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the org's policy as a policy file."""
    from ztsim.policy import document
    from ztsim.policy.store import apply

    with org_transaction(_platform(config, data_dir), org) as (conn, org_id):
        text = document.dump(apply.export(conn, org_id))
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"Wrote {output}.", highlight=False, markup=False)


@app.command("diff")
def diff(
    file: FileArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Show what applying a policy file would change, and whose decisions."""
    with org_transaction(_platform(config, data_dir), org) as (conn, org_id):
        _diff(conn, org_id, _read(conn, org_id, file))


@app.command("apply")
def apply_file(
    file: FileArg,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a policy file the org's policy, all or nothing (shows the diff first)."""
    from ztsim.cli.identities import actor
    from ztsim.clock import utc_now
    from ztsim.dns.store.policy_check import dns_check
    from ztsim.policy.store import apply

    platform = _platform(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        new = _read(conn, org_id, file)
        current, found = _diff(conn, org_id, new)
    if found.empty:
        return
    if not yes:
        typer.confirm("Apply these changes?", abort=True)
    with org_transaction(platform, org) as (conn, org_id):
        done = apply.apply(
            conn,
            org_id,
            new,
            actor=actor(),
            now=utc_now(),
            check_dns=dns_check(conn, org_id),
            base_revision=current.revision,
        )
    out.print(f"Applied revision {done.revision[:12]}.", highlight=False)


@app.command("explain")
def explain(
    subject: Annotated[
        str, typer.Argument(help="An identity (id, email or exact name), an ICCID or an MSISDN.")
    ],
    plane: Annotated[str, typer.Option("--plane", help="dns, network or attach.")],
    target: Annotated[
        str, typer.Option("--target", help="example.com/AAAA, 10.1.2.3:443/tcp or an APN.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON.")] = False,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Say why a subject gets its decision for a target, rule by rule, for each of its SIMs."""
    from ztsim.cli import lookup
    from ztsim.clock import utc_now
    from ztsim.dns.store.explained import explanations, find_subjects
    from ztsim.policy.rules import Plane

    with org_transaction(_platform(config, data_dir), org) as (conn, org_id):
        try:
            plane_ = Plane(plane)
        except ValueError:
            raise InvalidInput("--plane: one of dns, network, attach") from None
        try:
            subjects = find_subjects(conn, org_id, subject)
        except NotFound:
            # As every other command names people: by email or exact name too.
            from ztsim.policy.store import facts

            identity = lookup.identity_id(conn, org_id, subject)
            subjects = facts.subjects(conn, org_id, identity_id=identity)
        found = explanations(conn, org_id, subjects, plane_, target, utc_now())
        names = lookup.identity_names(
            conn, org_id, (s.identity_id for s in subjects if s.identity_id)
        )
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for item in found:
        _explained(item, names)


def _explained(item: dict[str, Any], names: Mapping[str, str]) -> None:
    sim = f"SIM {item['iccid']}" if item["iccid"] else "no SIM"
    who = (
        names.get(item["identity_id"], item["identity_id"])
        if item["identity_id"]
        else "no identity"
    )
    out.print(f"{who}, {sim}: {item['summary']}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"  reasons: {', '.join(item['reasons'])}", highlight=False, markup=False)
    for rule in item["rules"]:
        line = (
            f"  {'*' if rule['decided'] else ' '} {rule['rule']} ({rule['action']}): {rule['note']}"
        )
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if item["not_evaluated"]:
        text = ", ".join(item["not_evaluated"])
        out.print(f"  not evaluated here: {text} (the DNS gateway's feeds)", highlight=False)


@app.command("schema")
def schema() -> None:
    """Print the policy file's JSON Schema."""
    from ztsim.policy.file_schema import schema_text

    typer.echo(schema_text(), nl=False)
