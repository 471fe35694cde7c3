"""The error every identifier type raises when its text breaks the rules."""

from ztsim.errors import InvalidInput


class InvalidIdentifier(InvalidInput):
    """An ICCID, IMSI, MSISDN, IMEI, IMEISV or EID that is not well formed.

    The message names the identifier type and the broken rule; identifiers are
    not secrets, but the offending text is left out so that arbitrary input never
    lands verbatim in logs.
    """
