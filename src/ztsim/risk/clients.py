"""API clients of the CAMARA APIs: their scopes, credentials and grants. Pure.

A client authenticates with OAuth 2.0 client credentials (RFC 6749 §4.4) and gets an
access token carrying a grant: its org, its scopes and, for a "3-legged" client, the one
phone number it may ask about. Client secrets and access tokens are 256 random bits, so
one SHA-256 is enough to store them: nothing smaller than the whole space can be guessed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from ztsim.errors import InvalidInput

# The scopes of the specs' `security` sections (SIM Swap 2.1.0, Device Swap 1.0.0, SIM
# Swap Subscriptions 0.3.0); `sim-swap` and `device-swap` each cover both operations.
SIM_SWAP = "sim-swap"
SIM_SWAP_CHECK = "sim-swap:check"
SIM_SWAP_RETRIEVE_DATE = "sim-swap:retrieve-date"
DEVICE_SWAP = "device-swap"
DEVICE_SWAP_CHECK = "device-swap:check"
DEVICE_SWAP_RETRIEVE_DATE = "device-swap:retrieve-date"
SUBSCRIPTIONS_CREATE = (
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create"
)
SUBSCRIPTIONS_READ = "sim-swap-subscriptions:read"
SUBSCRIPTIONS_DELETE = "sim-swap-subscriptions:delete"
SCOPES = frozenset(
    {
        SIM_SWAP,
        SIM_SWAP_CHECK,
        SIM_SWAP_RETRIEVE_DATE,
        DEVICE_SWAP,
        DEVICE_SWAP_CHECK,
        DEVICE_SWAP_RETRIEVE_DATE,
        SUBSCRIPTIONS_CREATE,
        SUBSCRIPTIONS_READ,
        SUBSCRIPTIONS_DELETE,
    }
)
# An operation's scope is also granted by its API's whole scope (the specs list both as
# alternative security requirements).
_COVERED_BY = {
    SIM_SWAP_CHECK: SIM_SWAP,
    SIM_SWAP_RETRIEVE_DATE: SIM_SWAP,
    DEVICE_SWAP_CHECK: DEVICE_SWAP,
    DEVICE_SWAP_RETRIEVE_DATE: DEVICE_SWAP,
}

# The CAMARA PhoneNumber schema: E.164 with its '+'.
PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{4,14}$")
TOKEN_LIFETIME = timedelta(hours=1)  # short-lived bearer tokens (RFC 6819 §5.1.5.3)
CLIENT_SECRET_PREFIX = "ztsimcs_"  # noqa: S105 - a public marker, so scanners spot leaks
ACCESS_TOKEN_PREFIX = "ztsimat_"  # noqa: S105 - likewise
_SECRET_BYTES = 32
_CLIENT_ID_BYTES = 16
_ENCODED_LEN = 43  # 32 bytes in unpadded base64url


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access token allows: `phone_number` (E.164 with '+') set for a 3-legged
    token, bound to that number; None for a 2-legged one, which names none."""

    org_id: str
    client_id: str
    scopes: frozenset[str]
    phone_number: str | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or _COVERED_BY.get(scope, "") in self.scopes


def parse_scopes(text: str) -> frozenset[str]:
    """A `scope` parameter (RFC 6749 §3.3: space-delimited, case-sensitive) of known scopes."""
    names = frozenset(text.split(" ")) - {""}
    return checked_scopes(names)


def checked_scopes(names: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(names)
    if not scopes:
        raise InvalidInput("at least one scope is required")
    unknown = sorted(scopes - SCOPES)
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}: one of {', '.join(sorted(SCOPES))}")
    return scopes


def format_scopes(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes))


def checked_phone_number(text: str) -> str:
    if not PHONE_NUMBER.match(text):
        raise InvalidInput("phone_number must be E.164 with its '+', e.g. +4917012345678")
    return text


def msisdn_of(phone_number: str) -> str:
    """The stored form of a number: its digits without the '+'."""
    return checked_phone_number(phone_number)[1:]


def phone_number_of(msisdn: str) -> str:
    return "+" + msisdn


def _random_text(random: Callable[[int], bytes]) -> str:
    return base64.urlsafe_b64encode(random(_SECRET_BYTES)).decode("ascii").rstrip("=")


def new_client_id(random: Callable[[int], bytes]) -> str:
    return random(_CLIENT_ID_BYTES).hex()


def new_client_secret(random: Callable[[int], bytes]) -> str:
    return CLIENT_SECRET_PREFIX + _random_text(random)


def new_access_token(random: Callable[[int], bytes]) -> str:
    return ACCESS_TOKEN_PREFIX + _random_text(random)


def secret_hash(secret: str) -> bytes:
    """The stored form of a client secret or an access token."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def looks_like_secret(text: str) -> bool:
    return text.startswith(CLIENT_SECRET_PREFIX) and len(text) == 8 + _ENCODED_LEN


def looks_like_access_token(text: str) -> bool:
    return text.startswith(ACCESS_TOKEN_PREFIX) and len(text) == 8 + _ENCODED_LEN
