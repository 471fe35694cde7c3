"""The notifications, held to the spec's CloudEvent schemas (the package's copy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ztsim.risk import cloudevents
from ztsim.risk.cloudevents import TerminationReason

from support.camara_schemas import errors

AT = datetime(2026, 12, 3, 18, 0, 1, 682_123, tzinfo=UTC)


def test_swapped_is_an_event_sim_swap_of_the_spec() -> None:
    event = cloudevents.swapped(
        event_id="s1-sim-7", subscription_id="s1", phone_number="+491701234567", at=AT
    )
    assert errors("EventSimSwap", event) == []
    assert event == {
        "id": "s1-sim-7",
        "source": "/sim-swap-subscriptions/v0.3",
        "type": "org.camaraproject.sim-swap-subscriptions.v0.swapped",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": "2026-12-03T18:00:01.682Z",
        "data": {"subscriptionId": "s1", "phoneNumber": "+491701234567"},
    }


def test_a_three_legged_subscription_gets_no_phone_number() -> None:
    event = cloudevents.swapped(event_id="e", subscription_id="s1", phone_number=None, at=AT)
    assert event["data"] == {"subscriptionId": "s1"}
    assert errors("EventSimSwap", event) == []


@pytest.mark.parametrize("reason", list(TerminationReason))
def test_subscription_ended_carries_each_reason_of_the_spec(reason: TerminationReason) -> None:
    event = cloudevents.subscription_ended(
        event_id="s1-ended",
        subscription_id="s1",
        phone_number="+491701234567",
        reason=reason,
        at=AT,
    )
    assert errors("EventSubscriptionEnded", event) == []
    assert event["type"] == "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"
    assert event["data"]["terminationReason"] == reason.value
    assert event["data"]["terminationDescription"]


def test_the_reasons_are_exactly_the_specs_enum() -> None:
    from ztsim.risk import specs

    document = specs.spec_document(specs.SIM_SWAP_SUBSCRIPTIONS)
    enum = document["components"]["schemas"]["TerminationReason"]["enum"]
    assert sorted(enum) == sorted(r.value for r in TerminationReason)


def test_time_is_utc_with_milliseconds_whatever_the_offset() -> None:
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    assert cloudevents.rfc3339(plus_two) == "2026-12-03T18:00:01.682Z"
    with pytest.raises(ValueError, match="naive"):
        cloudevents.rfc3339(datetime(2026, 1, 1))


def test_an_empty_id_or_source_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        cloudevents.swapped(event_id="", subscription_id="s", phone_number=None, at=AT)
    with pytest.raises(ValueError, match="non-empty"):
        cloudevents.swapped(event_id="e", subscription_id="s", phone_number=None, at=AT, source="")
