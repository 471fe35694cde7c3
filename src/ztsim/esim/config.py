"""What an eSIM order needs from settings: whose SM-DP+ and how long a code lives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ztsim.errors import InvalidInput
from ztsim.esim.activation import ActivationCode

DEFAULT_SMDP_ADDRESS = "smdp.example.test"  # RFC 6761 §6.2: .test never resolves
DEFAULT_ORDER_TTL = timedelta(days=30)


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
