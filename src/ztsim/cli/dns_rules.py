"""`ztsim dns rules list|add|update|remove|move`: the org's ordered DNS rules, through the
API's use cases (`ztsim.dns.store.service`: the same audit events and the same change for
the DNS gateways). Subjects are named as admins know them (identities by email, id or
exact name, groups and fleets by name) and shown the same way. A rule's place is its
number in `ztsim dns rules list`, 1 first: the first rule that matches a query decides.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import Connection

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.dns_shape import check_name, rule_rows
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.dns.policy.rules import Action, Category, Rule
from ztsim.dns.store import repository as repo
from ztsim.dns.store import service
from ztsim.dns.wire.constants import RRType
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity.models import IdentityKind
from ztsim.inventory.models import SimKind
from ztsim.usecase import use_case

app = typer.Typer(help="DNS rules, applied first to last.", no_args_is_help=True)

RuleArg = Annotated[str, typer.Argument(help="The rule's name (or id).")]
Many = list[str] | None
DomainOpt = Annotated[Many, typer.Option("--domain", help="A domain it matches (repeatable).")]
ListOpt = Annotated[Many, typer.Option("--list", help="A DNS list, by name (repeatable).")]
CategoryOpt = Annotated[
    list[Category] | None,
    typer.Option("--category", case_sensitive=False, help="A threat category (repeatable)."),
]
QtypeOpt = Annotated[
    Many, typer.Option("--qtype", help="A query type: A, AAAA, HTTPS... or a number.")
]
IdentityOpt = Annotated[
    Many, typer.Option("--identity", help="Only for this identity: email, id or name.")
]
GroupOpt = Annotated[Many, typer.Option("--group", help="Only for this group (name).")]
FleetOpt = Annotated[Many, typer.Option("--fleet", help="Only for this fleet (name).")]
KindOpt = Annotated[
    list[SimKind] | None,
    typer.Option("--sim-kind", case_sensitive=False, help="Only for SIMs of this kind."),
]
AnswerOpt = Annotated[
    Many, typer.Option("--answer", help="override: an address, or one name (a CNAME).")
]
IdentityKindOpt = Annotated[
    list[IdentityKind] | None,
    typer.Option("--identity-kind", case_sensitive=False, help="Only for identities of this kind."),
]
PostureOpt = Annotated[
    Many,
    typer.Option("--posture", help="A posture check that must pass (!name: must not pass)."),
]
SimOpt = Annotated[
    Many, typer.Option("--sim", help="A SIM condition that must hold: 'sim.swap_age < 24h'.")
]
PlaceOpt = Annotated[int | None, typer.Option("--position", min=1, help="Its place, 1 first.")]


class Selector(enum.StrEnum):
    """What `update --clear` empties."""

    DOMAINS = "domains"
    LISTS = "lists"
    CATEGORIES = "categories"
    QTYPES = "qtypes"
    IDENTITIES = "identities"
    GROUPS = "groups"
    FLEETS = "fleets"
    SIM_KINDS = "sim-kinds"
    ANSWER = "answer"
    IDENTITY_KINDS = "identity-kinds"
    POSTURE = "posture"
    SIM = "sim"


@dataclass(frozen=True, slots=True)
class Given:
    """The selectors typed on the command line; None: not given."""

    domains: Many = None
    lists: Many = None
    categories: list[Category] | None = None
    qtypes: Many = None
    identities: Many = None
    groups: Many = None
    fleets: Many = None
    sim_kinds: list[SimKind] | None = None
    answer: Many = None
    identity_kinds: list[IdentityKind] | None = None
    posture: Many = None
    sim: Many = None

    def resolve(self, conn: Connection, org_id: str) -> dict[str, Any]:
        """The given selectors as a `Rule` holds them: ids for names, numbers for types."""
        found: dict[str, Any] = {}
        for field in ("domains", "lists", "answer", "posture", "sim"):
            if (values := getattr(self, field)) is not None:
                found[field] = tuple(values)
        if self.categories is not None:
            found["categories"] = tuple(self.categories)
        if self.sim_kinds is not None:
            found["sim_kinds"] = tuple(k.value for k in self.sim_kinds)
        if self.identity_kinds is not None:
            found["identity_kinds"] = tuple(k.value for k in self.identity_kinds)
        if self.qtypes is not None:
            found["qtypes"] = tuple(_qtype(q) for q in self.qtypes)
        if self.identities is not None:
            found["identities"] = tuple(
                lookup.identity_id(conn, org_id, k) for k in self.identities
            )
        for field, fleet in (("groups", False), ("fleets", True)):
            if (names := getattr(self, field)) is not None:
                found[field] = tuple(
                    lookup.collection(conn, org_id, n, fleet=fleet).id for n in names
                )
        return found


def _qtype(text: str) -> int:
    if text.strip().isdigit():
        return int(text)
    try:
        return int(RRType[text.strip().upper()])
    except KeyError:
        raise InvalidInput(
            f"unknown query type {text!r}: use its name (A, AAAA) or number"
        ) from None


def find(conn: Connection, org_id: str, key: str) -> repo.StoredRule:
    """The org's rule with this name or id."""
    for stored in repo.list_rules(conn, org_id):
        if key in (stored.name, stored.id):
            return stored
    raise NotFound(f"no DNS rule {key!r} in this org")


def _slot(order: Sequence[repo.StoredRule], index: int) -> int | None:
    """A position that puts a rule at `index` of `order` without moving any other rule,
    or None when its neighbours leave no room."""
    before = order[index - 1].position if index > 0 else None
    after = order[index].position if index < len(order) else None
    if before is None:
        return 0 if after is None else (after - 1 if after > 0 else None)
    if after is None:
        return before + 1
    return (before + after) // 2 if after - before >= 2 else None


def _place(conn: Connection, org_id: str, rule_id: str, index: int, now: datetime) -> None:
    """Put a rule at `index` (0 first) of the org's order: a free position if there is one
    between its new neighbours, else the rules are numbered again (each one that moves is
    recorded as updated)."""
    current = repo.list_rules(conn, org_id)
    moving = next(r for r in current if r.id == rule_id)
    order = [r for r in current if r.id != rule_id]
    index = max(0, min(index, len(order)))
    slot = _slot(order, index)
    if slot is not None:
        if slot != moving.position:
            service.replace_rule(conn, org_id, rule_id, moving.rule, slot, actor=actor(), now=now)
        return
    order.insert(index, moving)
    for n, stored in enumerate(order):
        if stored.position != n:
            service.replace_rule(conn, org_id, stored.id, stored.rule, n, actor=actor(), now=now)


@app.command("list")
def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the rules in the order they apply."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        rows = rule_rows(conn, org_id, repo.list_rules(conn, org_id))
    columns = (
        Col("#", whole=True),
        Col("name", whole=True),
        Col("action", whole=True),
        Col("matches"),
        Col("applies to"),
        Col("answer"),
    )
    tables.show(out, columns, rows)
    out.print(lookup.count(len(rows), "rule"))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name unique in the org.")],
    action: Annotated[Action, typer.Option("--action", case_sensitive=False)],
    domain: DomainOpt = None,
    dns_list: ListOpt = None,
    category: CategoryOpt = None,
    qtype: QtypeOpt = None,
    identity: IdentityOpt = None,
    group: GroupOpt = None,
    fleet: FleetOpt = None,
    sim_kind: KindOpt = None,
    answer: AnswerOpt = None,
    identity_kind: IdentityKindOpt = None,
    posture: PostureOpt = None,
    sim: SimOpt = None,
    position: PlaceOpt = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a rule, last unless --position says where."""
    given = Given(domain, dns_list, category, qtype, identity, group, fleet, sim_kind, answer)
    given = replace(given, identity_kinds=identity_kind, posture=posture, sim=sim)
    platform = platform_for(config, data_dir)
    now = utc_now()
    with org_transaction(platform, org) as (conn, org_id), use_case(conn, now):
        rule = Rule(check_name(name), action, **given.resolve(conn, org_id))
        order = repo.list_rules(conn, org_id)
        index = len(order) if position is None else position - 1
        slot = _slot(order, min(index, len(order)))
        stored = service.create_rule(conn, org_id, rule, slot, actor=actor(), now=now)
        if slot is None:
            _place(conn, org_id, stored.id, index, now)
        place = [r.id for r in repo.list_rules(conn, org_id)].index(stored.id) + 1
    out.print(f"Added DNS rule {stored.name} ({action.value}) at place {place}.", highlight=False)


@app.command("update")
def update(
    rule: RuleArg,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    action: Annotated[Action | None, typer.Option("--action", case_sensitive=False)] = None,
    domain: DomainOpt = None,
    dns_list: ListOpt = None,
    category: CategoryOpt = None,
    qtype: QtypeOpt = None,
    identity: IdentityOpt = None,
    group: GroupOpt = None,
    fleet: FleetOpt = None,
    sim_kind: KindOpt = None,
    answer: AnswerOpt = None,
    identity_kind: IdentityKindOpt = None,
    posture: PostureOpt = None,
    sim: SimOpt = None,
    clear: Annotated[
        list[Selector] | None,
        typer.Option("--clear", case_sensitive=False, help="Empty this selector (repeatable)."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change a rule: each selector given replaces that selector; the rest are kept."""
    given = Given(domain, dns_list, category, qtype, identity, group, fleet, sim_kind, answer)
    given = replace(given, identity_kinds=identity_kind, posture=posture, sim=sim)
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        stored = find(conn, org_id, rule)
        fields = {f: getattr(stored.rule, f) for f in repo.SPEC_FIELDS}
        for selector in clear or ():
            fields[selector.value.replace("-", "_")] = ()
        fields |= given.resolve(conn, org_id)
        new_name = stored.name if name is None else check_name(name)
        changed = Rule(new_name, action or stored.rule.action, **fields)
        service.replace_rule(conn, org_id, stored.id, changed, None, actor=actor(), now=utc_now())
    out.print(f"Updated DNS rule {changed.id}.", highlight=False)


@app.command("remove")
def remove(
    rule: RuleArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Remove a rule."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        stored = find(conn, org_id, rule)
        service.delete_rule(conn, org_id, stored.id, actor=actor(), now=utc_now())
    out.print(f"Removed DNS rule {stored.name}.", highlight=False)


@app.command("move")
def move(
    rule: RuleArg,
    to: Annotated[int | None, typer.Option("--to", min=1, help="Its new place, 1 first.")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Just before this rule.")] = None,
    after: Annotated[str | None, typer.Option("--after", help="Just after this rule.")] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Move a rule to another place in the order (one of --to, --before, --after)."""
    platform = platform_for(config, data_dir)
    now = utc_now()
    with org_transaction(platform, org) as (conn, org_id), use_case(conn, now):
        if sum(x is not None for x in (to, before, after)) != 1:
            raise InvalidInput("give exactly one of --to, --before and --after")
        stored = find(conn, org_id, rule)
        others = [r.id for r in repo.list_rules(conn, org_id) if r.id != stored.id]
        if to is not None:
            index = to - 1
        else:
            anchor = find(conn, org_id, before or after or "")
            if anchor.id == stored.id:
                raise InvalidInput("a rule cannot move relative to itself")
            index = others.index(anchor.id) + (1 if after is not None else 0)
        _place(conn, org_id, stored.id, index, now)
        place = [r.id for r in repo.list_rules(conn, org_id)].index(stored.id) + 1
    out.print(f"DNS rule {stored.name} is now at place {place}.", highlight=False)
