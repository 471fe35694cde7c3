"""What an eSIM order needs from settings: whose SM-DP+ and how long a code lives, and
the warning an operator gets while the SM-DP+ address is still a placeholder."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from ztsim.errors import InvalidInput
from ztsim.esim.activation import ActivationCode

DEFAULT_SMDP_ADDRESS = "smdp.example.test"  # RFC 6761 §6.2: .test never resolves
DEFAULT_ORDER_TTL = timedelta(days=30)
SMDP_SETTING = "ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in the config file)"
# RFC 2606 §2 and RFC 6761 §6: top-level names that never reach a real server.
_RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost"})
# RFC 2606 §3: second-level names reserved for documentation.
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})


@dataclass(frozen=True, slots=True)
class EsimConfig:
    smdp_address: str = DEFAULT_SMDP_ADDRESS
    smdp_oid: str | None = None
    order_ttl: timedelta = DEFAULT_ORDER_TTL

    def __post_init__(self) -> None:
        # Checked once here, so a bad setting fails at start-up, not at the first order.
        ActivationCode(self.smdp_address, "CHECK", self.smdp_oid)
        if self.order_ttl <= timedelta(0):
            raise InvalidInput("the eSIM order lifetime must be positive")


class HasSmdpAddress(Protocol):
    """The settings (`ztsim.settings.Settings`) as far as this module reads them."""

    @property
    def esim_smdp_address(self) -> str: ...


def is_placeholder(address: str) -> bool:
    """A name under a reserved TLD or documentation domain: no phone can reach it."""
    labels = address.strip().rstrip(".").lower().split(".")
    return labels[-1] in _RESERVED_TLDS or ".".join(labels[-2:]) in _RESERVED_DOMAINS


def placeholder_warning(address: str) -> str | None:
    """One line for an operator whose configured SM-DP+ address is a placeholder."""
    if not is_placeholder(address):
        return None
    return (
        f"warning: the SM-DP+ address {address} is a placeholder (a reserved name that never "
        f"resolves): phones cannot download eSIM profiles ordered with it. "
        f"Set {SMDP_SETTING} to your SM-DP+ address."
    )


def smdp_placeholder_warning(settings: HasSmdpAddress) -> str | None:
    """The start-up warning (`ztsim up`, `ztsim serve api`), None when the address is real."""
    return placeholder_warning(settings.esim_smdp_address)


def issued_placeholder_warning(addresses: Iterable[str]) -> str | None:
    """One line for packs whose orders were issued with a placeholder address: changing
    the setting does not change them, they must be re-issued."""
    stale = sorted({a for a in addresses if is_placeholder(a)})
    if not stale:
        return None
    return (
        f"warning: these packs name the placeholder SM-DP+ address {', '.join(stale)}: "
        f"phones cannot download their profiles. Set {SMDP_SETTING} to your SM-DP+ "
        f"address and re-issue these orders."
    )
