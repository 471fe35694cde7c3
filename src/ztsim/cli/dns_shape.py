"""How the DNS commands name things: rule and list names checked as the API checks them,
and rules shown with the names of their subjects instead of their ids."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection

from ztsim.cli import lookup
from ztsim.dns.store import repository as repo
from ztsim.dns.wire.constants import RRType
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities

# The API's pattern for rule and list names (api/routes_dns.py, `ListName`).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r}: a name is 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def collection_names(conn: Connection, org_id: str, *, fleet: bool) -> dict[str, str]:
    return {c.id: c.name for c in identities.list_collections(conn, org_id, fleet=fleet)}


def _qtype(number: int) -> str:
    try:
        return RRType(number).name
    except ValueError:
        return f"TYPE{number}"  # RFC 3597 §5: the generic name of an unknown type


def rule_rows(
    conn: Connection, org_id: str, rules: Sequence[repo.StoredRule]
) -> list[tuple[str, ...]]:
    """One row per rule: place, name, action, what it matches, whom it applies to, answer."""
    people = lookup.identity_names(conn, org_id, (i for s in rules for i in s.rule.identities))
    groups = collection_names(conn, org_id, fleet=False)
    fleets = collection_names(conn, org_id, fleet=True)
    rows: list[tuple[str, ...]] = []
    for place, stored in enumerate(rules, 1):
        r = stored.rule
        matches = [*r.domains, *(f"list:{n}" for n in r.lists)]
        matches += [f"category:{c.value}" for c in r.categories]
        matches += [f"type:{_qtype(q)}" for q in r.qtypes]
        who = [people.get(i, i) for i in r.identities]
        who += [f"group:{groups.get(g, g)}" for g in r.groups]
        who += [f"fleet:{fleets.get(f, f)}" for f in r.fleets]
        who += [f"kind:{k}" for k in r.sim_kinds]
        who += [f"identity-kind:{k}" for k in r.identity_kinds]
        # Requirements narrow whoever the selectors name: shown after them.
        needs = [f"posture:{p}" for p in r.posture] + [f"sim:{c}" for c in r.sim]
        applies = ", ".join(who) or "everyone"
        if needs:
            applies += " if " + " and ".join(needs)
        rows.append(
            (
                str(place),
                stored.name,
                r.action.value,
                ", ".join(matches) or "any name",
                applies,
                ", ".join(r.answer),
            )
        )
    return rows
