"""What the onboarding pages read: the org's eSIM orders newest first, one order with its
person and SM-DP+ progress, and the people a form names (by email, or a group's members).

Orders are read through `ztsim.esim.repository` as the API reads them; only the order of
the listing is the page's own (the repository pages by id, which is random, and a person
looks for the order they just made at the top).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, or_, select

from ztsim.db import schema
from ztsim.db.pagination import decode_cursor, encode_cursor
from ztsim.errors import InvalidInput, NotFound
from ztsim.esim import repository as orders
from ztsim.esim.orders import OrderState, effective_state
from ztsim.events import store as events
from ztsim.events.schema import Event, subject_of
from ztsim.identity import repository as identities
from ztsim.identity.models import Collection, Identity

PAGE_SIZE = 25
# A bulk order is one transaction and its packs one zip held in memory: kept small.
MAX_PEOPLE = 200
MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3: the longest path
_HISTORY = 50

# The steps an SM-DP+ reports on the way to a working profile (SGP.22 §5.3.5).
STEPS = (
    (OrderState.ISSUED, "Activation code issued"),
    (OrderState.DOWNLOADED, "Profile downloaded"),
    (OrderState.INSTALLED, "Profile installed"),
    (OrderState.ENABLED, "Profile enabled"),
)
OPEN = frozenset({OrderState.ISSUED, OrderState.DOWNLOADED, OrderState.INSTALLED})
_EMAILS = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    reached: bool


@dataclass(frozen=True, slots=True)
class OrderLine:
    order: orders.Order
    person: Identity
    state: OrderState  # as of now: an issued order past its expiry is expired

    @property
    def open(self) -> bool:
        return self.state in OPEN

    @property
    def steps(self) -> tuple[Step, ...]:
        return progress(self.state)

    @property
    def progress_text(self) -> str:
        reached = sum(s.reached for s in self.steps)
        if self.state in (OrderState.EXPIRED, OrderState.CANCELLED, OrderState.FAILED):
            return f"stopped: {self.state.value}"
        return f"{reached} of {len(STEPS)} steps"


@dataclass(frozen=True, slots=True)
class OrdersPage:
    lines: list[OrderLine]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class OrderDetail:
    line: OrderLine
    history: list[Event]  # the order's own events, newest first; empty without the right


def progress(state: OrderState) -> tuple[Step, ...]:
    """Which steps an order in `state` has reached. An order that stopped (expired,
    cancelled, failed) shows only the issue: how far it got is in its history."""
    forward = [s for s, _ in STEPS]
    reached = forward.index(state) if state in forward else 0
    return tuple(Step(label, i <= reached) for i, (_, label) in enumerate(STEPS))


def _line(
    conn: Connection, order: orders.Order, now: datetime, people: dict[str, Identity]
) -> OrderLine:
    person = people.get(order.identity_id)
    if person is None:
        person = people[order.identity_id] = identities.get_identity(
            conn, order.org_id, order.identity_id
        )
    return OrderLine(order, person, effective_state(order.state, order.expires_at, now))


def _cursor_key(cursor: str) -> tuple[datetime, str]:
    key = str(decode_cursor(cursor, str))
    created, _, order_id = key.partition(" ")
    try:
        return datetime.fromisoformat(created), order_id
    except ValueError:
        raise InvalidInput("cursor is not one this page issued") from None


def list_orders(
    conn: Connection, org_id: str, now: datetime, *, cursor: str | None = None
) -> OrdersPage:
    """The org's orders, newest first, PAGE_SIZE at a time (keyset on created_at, id)."""
    o = schema.esim_orders
    stmt = select(o.c.id, o.c.created_at).where(o.c.org_id == org_id)
    if cursor is not None:
        created, order_id = _cursor_key(cursor)
        stmt = stmt.where(
            or_(o.c.created_at < created, and_(o.c.created_at == created, o.c.id < order_id))
        )
    rows = conn.execute(
        stmt.order_by(o.c.created_at.desc(), o.c.id.desc()).limit(PAGE_SIZE + 1)
    ).all()
    people: dict[str, Identity] = {}
    lines = [
        _line(conn, orders.get_order(conn, org_id, r.id), now, people) for r in rows[:PAGE_SIZE]
    ]
    last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
    return OrdersPage(
        lines, None if last is None else encode_cursor(f"{last.created_at.isoformat()} {last.id}")
    )


def order_detail(
    conn: Connection, org_id: str, order_id: str, now: datetime, *, history: bool
) -> OrderDetail:
    """One order of the org (NotFound for another org's); `history`: the viewer may read
    events, and sees the order's own."""
    line = _line(conn, orders.get_order(conn, org_id, order_id), now, {})
    found: list[Event] = []
    if history:
        q = events.EventQuery(subject=subject_of("sim", line.order.iccid))
        page, _ = events.query(conn, org_id, q, limit=_HISTORY)
        found = [e for e in page if e.payload.get("order_id") == order_id]
    return OrderDetail(line, found)


def _email(text: str) -> str:
    email = text.strip()
    if not email or "@" not in email or len(email) > MAX_EMAIL:
        raise InvalidInput(
            f"{email[:60]!r} is not an email address" if email else "name an email address"
        )
    return email


def person_by_email(conn: Connection, org_id: str, email: str) -> str:
    """The id of the org's identity with this email; NotFound otherwise."""
    [found] = orders.resolve_identities(conn, org_id, [_email(email)])
    return found


def groups(conn: Connection, org_id: str) -> list[Collection]:
    return identities.list_collections(conn, org_id, fleet=False)


def bulk_people(conn: Connection, org_id: str, group_id: str, emails: str) -> list[str]:
    """The identities a bulk form names: a group's members and a list of emails, each
    once, in the order given; at least one, at most MAX_PEOPLE."""
    keys = [e for e in _EMAILS.split(emails) if e]
    if len(keys) > MAX_PEOPLE:
        raise InvalidInput(f"name at most {MAX_PEOPLE} people at once")
    found = orders.resolve_identities(conn, org_id, [_email(k) for k in keys])
    if group_id:
        try:
            found += identities.get_collection(conn, org_id, group_id, fleet=False).member_ids
        except NotFound:
            raise NotFound("that group is not in this organisation") from None
    people = list(dict.fromkeys(found))
    if not people:
        raise InvalidInput("choose a group with members or list some email addresses")
    if len(people) > MAX_PEOPLE:
        raise InvalidInput(f"that is {len(people)} people: at most {MAX_PEOPLE} at once")
    return people
