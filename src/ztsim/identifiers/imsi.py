"""IMSI: the subscriber identity a SIM presents to the mobile network."""

from dataclasses import dataclass

from ztsim.identifiers._digits import check_digit_string
from ztsim.identifiers.errors import InvalidIdentifier

# 3GPP TS 23.003 §2.2: MCC (3) + MNC (2 or 3) + MSIN, 15 digits at most.
IMSI_LENGTHS = (14, 15)
# 3GPP TS 23.003 §2.2: the Mobile Country Code is always three digits.
MCC_DIGITS = 3
# 3GPP TS 23.003 §2.2: the Mobile Network Code is two or three digits.
MNC_DIGIT_CHOICES = (2, 3)


@dataclass(frozen=True, slots=True)
class Imsi:
    """An International Mobile Subscriber Identity.

    The split between MNC and MSIN is not encoded in the digits (it depends on
    the country), so the caller says how long the MNC is when asking for it.
    """

    value: str

    def __post_init__(self) -> None:
        check_digit_string("IMSI", self.value, IMSI_LENGTHS)

    @property
    def mcc(self) -> str:
        """The Mobile Country Code (first three digits)."""
        return self.value[:MCC_DIGITS]

    def plmn(self, mnc_digits: int) -> tuple[str, str]:
        """Return `(mcc, mnc)` for an MNC of `mnc_digits` (2 or 3) digits."""
        # Exact type: True == 1 and 2.0 == 2 would otherwise slip through the membership test.
        if type(mnc_digits) is not int or mnc_digits not in MNC_DIGIT_CHOICES:
            raise InvalidIdentifier(f"IMSI MNC length must be 2 or 3 digits, got {mnc_digits!r}")
        return self.mcc, self.value[MCC_DIGITS : MCC_DIGITS + mnc_digits]

    def __str__(self) -> str:
        return self.value
