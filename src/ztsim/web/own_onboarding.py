"""An employee's own eSIM onboarding while their order is open: the activation code and
its QR code, on their page (`/me`) rather than on a printed pack.

What the API gives a `self` token (`esim:pack` on its own orders, `GET
/esim/orders/{id}/pack`): an order of another identity does not exist for them, and
neither does one whose code can no longer be used (downloaded, cancelled, expired).
The activation code is a bearer secret: the routes serving it say `no-store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ztsim.errors import NotFound
from ztsim.esim import repository as orders
from ztsim.esim import service
from ztsim.esim.orders import OrderState, effective_state
from ztsim.esim.qr import qr_svg
from ztsim.identity.roles import Principal
from ztsim.sealing import Sealer

_OWN_LIMIT = 1000  # a person has a handful of orders; the store's largest page


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: str
    iccid: str
    activation_code: str  # `LPA:1$...`: what the QR code holds
    confirmation_code_required: bool
    expires_at: datetime


def _usable(conn: Connection, principal: Principal, now: datetime) -> list[orders.Order]:
    me = principal.own_identity
    if me is None:
        return []
    found, _ = orders.list_orders(
        conn,
        principal.org_id,
        orders.OrderFilter(state=OrderState.ISSUED, identity_id=me),
        limit=_OWN_LIMIT,
    )
    live = [o for o in found if effective_state(o.state, o.expires_at, now) is OrderState.ISSUED]
    return sorted(live, key=lambda o: o.created_at, reverse=True)


def open_order(
    conn: Connection, sealer: Sealer, principal: Principal, now: datetime
) -> OpenOrder | None:
    """The person's newest order whose code can still be used, or None."""
    usable = _usable(conn, principal, now)
    if not usable:
        return None
    order = usable[0]
    code = service.activation_code(sealer, conn, order)
    return OpenOrder(
        order.id, order.iccid, code.to_qr_text(), order.confirmation_required, order.expires_at
    )


def qr(
    conn: Connection, sealer: Sealer, principal: Principal, order_id: str, now: datetime
) -> bytes:
    """The QR code (SVG) of one of the person's own open orders; NotFound for any other."""
    for order in _usable(conn, principal, now):
        if order.id == order_id:
            return qr_svg(service.activation_code(sealer, conn, order))
    raise NotFound("eSIM order not found")
