"""IMEI and IMEISV: the identities of the device a SIM sits in."""

from dataclasses import dataclass

from ztsim.identifiers._digits import check_digit_string, require_digits, require_length
from ztsim.identifiers.errors import InvalidIdentifier
from ztsim.identifiers.luhn import luhn_check_digit, require_luhn

# 3GPP TS 23.003 §6.2.1: TAC (8) + SNR (6) + check digit (1).
IMEI_LENGTH = 15
# 3GPP TS 23.003 §6.2.2: TAC (8) + SNR (6) + software version number (2).
IMEISV_LENGTH = 16
# 3GPP TS 23.003 §6.2.1: the Type Allocation Code is eight digits.
TAC_DIGITS = 8
# 3GPP TS 23.003 §6.2.1: TAC + SNR, the part the check digit covers.
IMEI_BODY_DIGITS = 14


@dataclass(frozen=True, slots=True)
class Imei:
    """An International Mobile Equipment Identity with its Luhn check digit."""

    value: str

    def __post_init__(self) -> None:
        text = check_digit_string("IMEI", self.value, (IMEI_LENGTH,))
        require_luhn("IMEI", text)

    @classmethod
    def with_check_digit(cls, body14: str) -> "Imei":
        """Append the Luhn digit to a 14 digit TAC + SNR."""
        if not isinstance(body14, str):
            raise InvalidIdentifier(f"IMEI body must be a str, got {type(body14).__name__}")
        require_digits("IMEI body", body14)
        require_length("IMEI body", body14, (IMEI_BODY_DIGITS,))
        return cls(body14 + str(luhn_check_digit(body14)))

    @property
    def tac(self) -> str:
        """The Type Allocation Code (device model), first eight digits."""
        return self.value[:TAC_DIGITS]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Imeisv:
    """An IMEI with software version: TAC, SNR and SVN, no check digit."""

    value: str

    def __post_init__(self) -> None:
        check_digit_string("IMEISV", self.value, (IMEISV_LENGTH,))

    @property
    def imei(self) -> Imei:
        """The device's IMEI: the same TAC and SNR with the Luhn digit recomputed."""
        return Imei.with_check_digit(self.value[:IMEI_BODY_DIGITS])

    @property
    def tac(self) -> str:
        """The Type Allocation Code (device model), first eight digits."""
        return self.value[:TAC_DIGITS]

    @property
    def svn(self) -> str:
        """The two digit Software Version Number."""
        return self.value[IMEI_BODY_DIGITS:]

    def __str__(self) -> str:
        return self.value
