"""What the onboarding pages read: orders newest first in pages, one order of the org with
its history, the steps reached, and the people a form names."""

from __future__ import annotations

import pytest

from ztsim.errors import InvalidInput, NotFound
from ztsim.esim.orders import OrderState
from ztsim.web import onboarding

from support.api import ApiHarness
from support.factories import make_sims, stock_csv
from support.world import World


def test_progress_marks_the_steps_reached() -> None:
    reached = {s: [step.reached for step in onboarding.progress(s)] for s in OrderState}
    assert reached[OrderState.ISSUED] == [True, False, False, False]
    assert reached[OrderState.INSTALLED] == [True, True, True, False]
    assert reached[OrderState.ENABLED] == [True, True, True, True]
    for stopped in (OrderState.EXPIRED, OrderState.CANCELLED, OrderState.FAILED):
        assert reached[stopped] == [True, False, False, False]


def _many_orders(api: ApiHarness, count: int) -> tuple[str, list[str]]:
    """An org with `count` people, each with an eSIM order made through the API, in order."""
    org = api.new_org("many")
    auth = org.auth()
    stock = api.client.post(
        "/api/v1/stock-imports?filename=e.csv&kind=esim",
        content=stock_csv(make_sims(count, seed=3, start=200)),
        headers={**auth, "content-type": "text/csv"},
    )
    assert stock.status_code == 201, stock.text
    made = []
    for n in range(count):
        person = api.client.post(
            "/api/v1/identities",
            json={"kind": "user", "name": f"P{n}", "email": f"p{n}@many.test"},
            headers=auth,
        ).json()
        order = api.client.post(
            "/api/v1/esim/orders", json={"identity_id": person["id"]}, headers=auth
        )
        assert order.status_code == 201, order.text
        made.append(order.json()["id"])
    return org.id, made


def test_orders_are_listed_newest_first_a_page_at_a_time(api: ApiHarness) -> None:
    org_id, made = _many_orders(api, onboarding.PAGE_SIZE + 3)
    now = api.clock()
    with api.engine.connect() as conn:
        first = onboarding.list_orders(conn, org_id, now)
        assert first.next_cursor is not None
        second = onboarding.list_orders(conn, org_id, now, cursor=first.next_cursor)
        with pytest.raises(InvalidInput):
            onboarding.list_orders(conn, org_id, now, cursor="bm90IG91cnM")
    assert len(first.lines) == onboarding.PAGE_SIZE
    assert second.next_cursor is None
    shown = [line.order.id for line in first.lines + second.lines]
    assert shown == list(reversed(made))
    assert first.lines[0].person.email == f"p{len(made) - 1}@many.test"
    assert first.lines[0].progress_text == "1 of 4 steps"


def test_an_order_is_read_only_in_its_org(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    now = api.clock()
    with api.engine.connect() as conn:
        plain = onboarding.order_detail(
            conn, alpha.org.id, alpha.ids["order_id"], now, history=False
        )
        full = onboarding.order_detail(conn, alpha.org.id, alpha.ids["order_id"], now, history=True)
        with pytest.raises(NotFound):
            onboarding.order_detail(conn, alpha.org.id, bravo.ids["order_id"], now, history=True)
    assert plain.line.person.name == "Employee alpha"
    assert plain.line.open
    assert plain.history == []
    assert [e.kind for e in full.history] == ["esim.order_created"]


def test_an_order_past_its_expiry_shows_as_expired(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        order = onboarding.order_detail(
            conn, alpha.org.id, alpha.ids["order_id"], api.clock(), history=False
        )
        later = order.line.order.expires_at
        expired = onboarding.order_detail(
            conn, alpha.org.id, alpha.ids["order_id"], later, history=False
        )
    assert expired.line.state is OrderState.EXPIRED
    assert not expired.line.open
    assert expired.line.progress_text == "stopped: expired"


def test_people_are_found_by_email_in_the_org_only(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        assert (
            onboarding.person_by_email(conn, alpha.org.id, " u@alpha.test ")
            == alpha.ids["identity_id"]
        )
        with pytest.raises(NotFound):
            onboarding.person_by_email(conn, alpha.org.id, "u@bravo.test")
        # An id is not an email: the form never looks people up by id.
        with pytest.raises(InvalidInput):
            onboarding.person_by_email(conn, alpha.org.id, alpha.ids["identity_id"])
        with pytest.raises(InvalidInput):
            onboarding.person_by_email(conn, alpha.org.id, "")


def test_a_bulk_form_names_each_person_once(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    org, group = alpha.org.id, alpha.ids["group_id"]
    with api.engine.connect() as conn:
        both = onboarding.bulk_people(conn, org, group, "u@alpha.test, u@alpha.test;\n")
        assert both == [alpha.ids["identity_id"]]
        assert onboarding.bulk_people(conn, org, "", "u@alpha.test") == [alpha.ids["identity_id"]]
        assert [g.name for g in onboarding.groups(conn, org)] == ["staff"]
        with pytest.raises(NotFound):
            onboarding.bulk_people(conn, org, bravo.ids["group_id"], "")
        with pytest.raises(InvalidInput):
            onboarding.bulk_people(conn, org, "", " \n ")
        too_many = " ".join(f"p{n}@x.test" for n in range(onboarding.MAX_PEOPLE + 1))
        with pytest.raises(InvalidInput, match="at most"):
            onboarding.bulk_people(conn, org, "", too_many)
