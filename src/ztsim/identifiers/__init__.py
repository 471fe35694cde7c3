"""Self-checking value types for SIM, subscriber and device identifiers.

Each type is a frozen dataclass with one `value: str` field that is checked on
construction; anything malformed raises `InvalidIdentifier`.
"""

from ztsim.identifiers.eid import Eid
from ztsim.identifiers.errors import InvalidIdentifier
from ztsim.identifiers.iccid import Iccid
from ztsim.identifiers.imei import Imei, Imeisv
from ztsim.identifiers.imsi import Imsi
from ztsim.identifiers.luhn import luhn_check_digit
from ztsim.identifiers.msisdn import Msisdn

__all__ = [
    "Eid",
    "Iccid",
    "Imei",
    "Imeisv",
    "Imsi",
    "InvalidIdentifier",
    "Msisdn",
    "luhn_check_digit",
]
