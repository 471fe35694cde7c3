"""CAMARA SIM Swap Subscriptions 0.3.0: a subscription request checked, its lifecycle,
and how its notifications are retried.

Pure: a parsed JSON body and the time in; a typed request, an end reason, a retry time
out. A refusal names the spec's error code (`CreateSubscriptionBadRequest400`); its
message names the field, never the value (a credential must not echo back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.netguard import MAX_URL_LENGTH, parse_target
from ztsim.risk.cloudevents import SWAPPED, TerminationReason, rfc3339

PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{4,14}")  # the spec's PhoneNumber pattern
PROTOCOLS = frozenset({"HTTP", "MQTT3", "MQTT5", "AMQP", "NATS", "KAFKA"})  # spec: Protocol
CREDENTIAL_TYPES = frozenset({"PLAIN", "ACCESSTOKEN", "REFRESHTOKEN"})  # spec: SinkCredential
# RFC 6750 §2.1 b64token: what may follow "Bearer " in an Authorization header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 4096  # a bound of ours: tokens are sealed and sent, never parsed
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)  # RFC 3339 §5.6 date-time, its offset required
# End a subscription this long before its access token expires, so the
# subscription-ended event still carries a valid token (the spec's AccessTokenCredential
# asks to notify the client before the expiration).
TOKEN_MARGIN = timedelta(minutes=1)
# Waits between delivery attempts (doubling-ish, capped): 7 attempts over about 1h43m.
RETRY_DELAYS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (10, 30, 120, 600, 1800, 3600)
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


class Status(StrEnum):
    """The spec's Subscription.status enum."""

    ACTIVATION_REQUESTED = "ACTIVATION_REQUESTED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    INACTIVE = "INACTIVE"
    DELETED = "DELETED"


class RequestRefused(InvalidInput):
    """A subscription request the spec refuses with 400 and `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SinkCredential:
    access_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    sink: str
    phone_number: str | None  # config.subscriptionDetail.phoneNumber, +E.164
    max_events: int | None
    expire_time: datetime | None
    credential: SinkCredential | None
    types: tuple[str, ...] = (SWAPPED,)

    def config(self) -> dict[str, Any]:
        """The request's config as stored and answered (the spec's Config)."""
        detail = {} if self.phone_number is None else {"phoneNumber": self.phone_number}
        config: dict[str, Any] = {"subscriptionDetail": detail}
        if self.expire_time is not None:
            config["subscriptionExpireTime"] = rfc3339(self.expire_time)
        if self.max_events is not None:
            config["subscriptionMaxEvents"] = self.max_events
        return config

    def ends_at(self) -> datetime | None:
        """When time alone ends it: its expire time, or just before its token expires."""
        ends = [] if self.expire_time is None else [self.expire_time]
        if self.credential is not None:
            ends.append(self.credential.expires_at - TOKEN_MARGIN)
        return min(ends, default=None)


def _invalid(message: str) -> RequestRefused:
    return RequestRefused("INVALID_ARGUMENT", message)


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(f"{where} must be an object")
    return value


def parse_instant(value: object, where: str) -> datetime:
    """An RFC 3339 date-time with its offset, or Unix seconds as digits (the form the
    spec's own SUBSCRIPTION_REQUEST example gives accessTokenExpiresUtc)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 11:
        return datetime.fromtimestamp(int(value), UTC)
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise _invalid(f"{where} must be an RFC 3339 date-time with a time zone")
    head, dot, rest = value.upper().partition(".")
    if dot:  # Python reads at most six fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid(f"{where} must be a valid date-time") from None


def _sink(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("https://"):
        raise RequestRefused("INVALID_SINK", "sink not valid for the specified protocol")
    try:
        parse_target(value)
    except InvalidInput:
        raise RequestRefused("INVALID_SINK", "sink not valid for the specified protocol") from None
    if len(value) > MAX_URL_LENGTH:
        raise RequestRefused("INVALID_SINK", "sink not valid for the specified protocol")
    return value


def _types(value: object) -> tuple[str, ...]:
    # The spec's SubscriptionRequest.types: exactly one item, of SubscriptionEventType.
    if not isinstance(value, list) or len(value) != 1 or value[0] != SWAPPED:
        raise _invalid(f"types must be [{SWAPPED!r}]")
    return (SWAPPED,)


def _config(value: object, now: datetime) -> tuple[str | None, int | None, datetime | None]:
    config = _object(value, "config")
    if "subscriptionDetail" not in config:
        raise _invalid("config.subscriptionDetail is required")
    detail = _object(config["subscriptionDetail"], "config.subscriptionDetail")
    phone = detail.get("phoneNumber")
    if phone is not None and not (isinstance(phone, str) and PHONE_NUMBER.fullmatch(phone)):
        raise _invalid("config.subscriptionDetail.phoneNumber must match ^\\+[1-9][0-9]{4,14}$")
    max_events = config.get("subscriptionMaxEvents")
    if max_events is not None:
        if isinstance(max_events, bool) or not isinstance(max_events, int):
            raise _invalid("config.subscriptionMaxEvents must be an integer")
        if not 1 <= max_events <= 2**31 - 1:  # spec: minimum 1; the column is 32-bit
            raise RequestRefused("OUT_OF_RANGE", "config.subscriptionMaxEvents must be >= 1")
    expire = config.get("subscriptionExpireTime")
    expire_time = None
    if expire is not None:
        expire_time = parse_instant(expire, "config.subscriptionExpireTime")
        if expire_time <= now:
            raise RequestRefused(
                "OUT_OF_RANGE", "config.subscriptionExpireTime must be in the future"
            )
    return phone, max_events, expire_time


def _credential(value: object, now: datetime) -> SinkCredential | None:
    if value is None:
        return None
    credential = _object(value, "sinkCredential")
    kind = credential.get("credentialType")
    if not isinstance(kind, str) or kind not in CREDENTIAL_TYPES:
        raise _invalid("sinkCredential.credentialType must be one of the spec's types")
    if kind != "ACCESSTOKEN":
        raise RequestRefused("INVALID_CREDENTIAL", "Only Access token is supported")
    for name in ("accessToken", "accessTokenExpiresUtc", "accessTokenType"):
        if name not in credential:
            raise _invalid(f"sinkCredential.{name} is required")
    if credential["accessTokenType"] != "bearer":
        raise RequestRefused("INVALID_TOKEN", "Only bearer token is supported")
    token = credential["accessToken"]
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise RequestRefused("INVALID_TOKEN", "sinkCredential.accessToken is not a bearer token")
    if not _B64TOKEN.fullmatch(token):
        raise RequestRefused("INVALID_TOKEN", "sinkCredential.accessToken is not a bearer token")
    expires = parse_instant(credential["accessTokenExpiresUtc"], "accessTokenExpiresUtc")
    if expires - TOKEN_MARGIN <= now:
        raise RequestRefused("INVALID_CREDENTIAL", "sinkCredential's access token has expired")
    return SinkCredential(token, expires)


def _protocol_settings(value: object) -> None:
    if value is None:
        return
    settings = _object(value, "protocolSettings")
    if settings.get("method", "POST") != "POST":
        raise _invalid("protocolSettings.method must be POST")
    if settings.get("headers"):  # custom headers on our POSTs: not offered
        raise _invalid("protocolSettings.headers is not supported")


def parse_request(body: object, now: datetime) -> SubscriptionRequest:
    """The spec's SubscriptionRequest checked; RequestRefused with the spec's code."""
    request = _object(body, "the request body")
    for name in ("protocol", "sink", "types", "config"):
        if name not in request:
            raise _invalid(f"{name} is required")
    protocol = request["protocol"]
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        raise _invalid("protocol must be one of the spec's protocols")
    if protocol != "HTTP":
        raise RequestRefused("INVALID_PROTOCOL", "Only HTTP is supported")
    sink = _sink(request["sink"])
    types = _types(request["types"])
    phone, max_events, expire_time = _config(request["config"], now)
    _protocol_settings(request.get("protocolSettings"))
    credential = _credential(request.get("sinkCredential"), now)
    return SubscriptionRequest(sink, phone, max_events, expire_time, credential, types)


# -- lifecycle ------------------------------------------------------------------------------


def status_after(reason: TerminationReason) -> Status:
    """An ended subscription's status: DELETED when its requester deleted it, INACTIVE
    when the sink said it is gone (410), EXPIRED when one of its limits was reached."""
    if reason is TerminationReason.SUBSCRIPTION_DELETED:
        return Status.DELETED
    if reason is TerminationReason.NETWORK_TERMINATED:
        return Status.INACTIVE
    return Status.EXPIRED


def reason_by_time(expire_time: datetime | None, now: datetime) -> TerminationReason:
    """Why a subscription whose end time came ends: its own expire time, else its token."""
    if expire_time is not None and expire_time <= now:
        return TerminationReason.SUBSCRIPTION_EXPIRED
    return TerminationReason.ACCESS_TOKEN_EXPIRED


def reason_by_count(events_sent: int, max_events: int | None) -> TerminationReason | None:
    """MAX_EVENTS_REACHED once `max_events` notifications were generated."""
    if max_events is not None and events_sent >= max_events:
        return TerminationReason.MAX_EVENTS_REACHED
    return None


# -- deliveries -----------------------------------------------------------------------------


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed for now: tried again after a wait
    FAILED = "failed"  # given up: the sink refused it, or the attempts ran out
    GONE = "gone"  # 410: the sink is no longer there; the subscription ends


# A client error that another try may cure (RFC 9110 §15.5.9, RFC 8470 §5.2, RFC 6585 §4).
_TRANSIENT_4XX = frozenset({408, 425, 429})


def outcome(status: int | None, attempts: int) -> Outcome:
    """What an attempt (the `attempts`-th, counting it) came to; `status` None when no
    HTTP answer came (refused, timeout, TLS)."""
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:  # the spec's callback: Generic410, the listener is gone
        return Outcome.GONE
    permanent = status is not None and 300 <= status < 500 and status not in _TRANSIENT_4XX
    if permanent or attempts >= MAX_ATTEMPTS:
        return Outcome.FAILED
    return Outcome.RETRY


def retry_at(attempts: int, now: datetime) -> datetime:
    """When to try again after `attempts` failed attempts (1 or more)."""
    return now + RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
