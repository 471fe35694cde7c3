"""The CloudEvents 1.0 notifications of CAMARA SIM Swap Subscriptions 0.3.0.

Pure: values in, the JSON object (a dict) POSTed to the subscriber's sink out. Each one
carries the attributes the spec's `CloudEvent` schema requires (id, source, type,
specversion, time) plus datacontenttype and `data` shaped by `Swapped` or
`SubscriptionEnded`. The sink credential never enters an event: it travels only in the
Authorization header of the POST.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"  # spec: SubscriptionEventType
ENDED = "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"  # spec: description
SPECVERSION = "1.0"  # CloudEvents 1.0.2 §3.1.1, the spec's CloudEvent.specversion enum
DATACONTENTTYPE = "application/json"  # the spec's CloudEvent.datacontenttype enum
MEDIA_TYPE = "application/cloudevents+json"  # CloudEvents JSON format §3 (structured mode)
# The spec's Source is a URI-reference; an application-specific path names this API.
DEFAULT_SOURCE = "/sim-swap-subscriptions/v0.3"


class TerminationReason(StrEnum):
    """The spec's TerminationReason enum."""

    MAX_EVENTS_REACHED = "MAX_EVENTS_REACHED"
    NETWORK_TERMINATED = "NETWORK_TERMINATED"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    ACCESS_TOKEN_EXPIRED = "ACCESS_TOKEN_EXPIRED"  # noqa: S105  # a reason, not a secret
    SUBSCRIPTION_DELETED = "SUBSCRIPTION_DELETED"


# What a subscriber reads in `terminationDescription` (free text per the spec).
DESCRIPTIONS: dict[TerminationReason, str] = {
    TerminationReason.MAX_EVENTS_REACHED: "subscription max events reached",
    TerminationReason.NETWORK_TERMINATED: "the API server stopped sending notifications",
    TerminationReason.SUBSCRIPTION_EXPIRED: "subscription expire time reached",
    TerminationReason.ACCESS_TOKEN_EXPIRED: "sink credential access token expired",
    TerminationReason.SUBSCRIPTION_DELETED: "subscription deleted by the requester",
}


def rfc3339(at: datetime) -> str:
    """UTC with milliseconds and `Z`, as the spec's examples write date-times."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _envelope(
    event_id: str, source: str, kind: str, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    if not event_id or not source:
        raise ValueError("a CloudEvent needs a non-empty id and source")  # CloudEvents §3.1.1
    return {
        "id": event_id,
        "source": source,
        "type": kind,
        "specversion": SPECVERSION,
        "datacontenttype": DATACONTENTTYPE,
        "time": rfc3339(at),
        "data": data,
    }


def swapped(
    *,
    event_id: str,
    subscription_id: str,
    phone_number: str | None,
    at: datetime,
    source: str = DEFAULT_SOURCE,
) -> dict[str, Any]:
    """The `swapped` event; `phone_number` (+E.164) is left out for a 3-legged
    subscription, whose subscriber never named the number (the spec's data minimization)."""
    data: dict[str, Any] = {"subscriptionId": subscription_id}
    if phone_number is not None:
        data["phoneNumber"] = phone_number
    return _envelope(event_id, source, SWAPPED, at, data)


def subscription_ended(
    *,
    event_id: str,
    subscription_id: str,
    phone_number: str | None,
    reason: TerminationReason,
    at: datetime,
    source: str = DEFAULT_SOURCE,
) -> dict[str, Any]:
    """The `subscription-ended` event with the reason and its description."""
    data: dict[str, Any] = {
        "subscriptionId": subscription_id,
        "terminationReason": reason.value,
        "terminationDescription": DESCRIPTIONS[reason],
    }
    if phone_number is not None:
        data["phoneNumber"] = phone_number
    return _envelope(event_id, source, ENDED, at, data)
