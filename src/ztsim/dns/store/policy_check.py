"""What the DNS plane knows and the policy context does not: its rule type and the org's lists.

The policy core checks a `dns` rule's fields but not that the DNS plane would take it
(categories it knows, lists the org has), and explain cannot match a list it never
loaded. Both are the DNS plane's to say, and `ztsim.policy` sits below `ztsim.dns`, so
the API (and the CLI, through it) hands them in: `dns_check` to the policy file's
reader and to apply, `list_matcher` to explain.
"""

from __future__ import annotations

import os

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.liststores import CompiledList, compile_list
from ztsim.dns.policy.rules import Action, Rule
from ztsim.errors import InvalidInput, NotFound
from ztsim.policy.file_reader import RuleCheck
from ztsim.policy.rules import PolicyRule
from ztsim.policy.targets import ListMatcher


def dns_check(conn: Connection, org_id: str) -> RuleCheck:
    """Checks a `dns` rule as the DNS rules API would: its type, and lists the org has."""
    known = set(
        conn.execute(
            select(schema.dns_lists.c.name).where(schema.dns_lists.c.org_id == org_id)
        ).scalars()
    )

    def check(rule: PolicyRule) -> None:
        spec = {k: tuple(v) for k, v in rule.to_spec().items()}
        try:
            Rule(rule.name, Action(rule.action), **spec)
        except ValueError as exc:  # an enum's: a category the DNS plane does not know
            raise InvalidInput(f"rule {rule.name}: {exc}") from None
        missing = sorted(set(spec.get("lists", ())) - known)
        if missing:
            raise NotFound(f"no such DNS lists: {missing}")

    return check


def list_matcher(conn: Connection, org_id: str) -> ListMatcher:
    """Membership in the org's stored lists (each compiled when first asked). Categories
    come from security feeds this process does not hold: they never match here."""
    lists = schema.dns_lists
    rows = conn.execute(
        select(lists.c.name, lists.c.format, lists.c.content).where(lists.c.org_id == org_id)
    ).all()
    texts = {name: (fmt, content) for name, fmt, content in rows}
    compiled: dict[str, CompiledList | None] = {}
    key = os.urandom(16)

    def contains(source: str, qname: str) -> bool:
        kind, _, name = source.partition(":")
        if kind != "list" or name not in texts:
            return False
        if name not in compiled:
            fmt, content = texts[name]
            parsed = parse_list(content or "", ListFormat(fmt) if fmt else None)
            compiled[name] = compile_list(parsed, key, name) if parsed.good_lines else None
        found = compiled[name]
        return found is not None and found.blocks(qname)

    return contains
