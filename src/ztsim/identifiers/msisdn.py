"""MSISDN: the E.164 telephone number attached to a subscription."""

from dataclasses import dataclass

from ztsim.identifiers._digits import require_digits, require_str
from ztsim.identifiers.errors import InvalidIdentifier

# ITU-T E.164 §6.1: an international number has at most 15 digits.
MSISDN_MAX_DIGITS = 15


@dataclass(frozen=True, slots=True)
class Msisdn:
    """An international E.164 number, stored as digits without the leading '+'.

    Accepts "+4917012345678" or "4917012345678"; both give the same value.
    """

    value: str

    def __post_init__(self) -> None:
        text = require_str("MSISDN", self.value)
        digits = text.removeprefix("+")
        if not digits:
            raise InvalidIdentifier("MSISDN must have at least 1 digit, got 0")
        require_digits("MSISDN", digits)
        if len(digits) > MSISDN_MAX_DIGITS:
            raise InvalidIdentifier(
                f"MSISDN must have at most {MSISDN_MAX_DIGITS} digits, got {len(digits)}"
            )
        # E.164 §6.2.1: country codes never start with 0 (that is a trunk or escape prefix).
        if digits[0] == "0":
            raise InvalidIdentifier("MSISDN must not start with 0 (E.164 country code)")
        if digits != text:
            # The dataclass is frozen; this is the one normalisation it performs.
            object.__setattr__(self, "value", digits)

    @property
    def e164(self) -> str:
        """The number in '+' form, e.g. "+4917012345678"."""
        return "+" + self.value

    def __str__(self) -> str:
        return self.value
