"""Errors of the authentication core, all of them kinds of `InvalidInput`.

Messages name the field and the rule that was broken, never the bytes of a key,
an OPc, a private key or a shared secret.
"""

from ztsim.errors import InvalidInput


class AkaInputError(InvalidInput):
    """A RAND, SQN, AMF, key or KDF parameter of the wrong type or length."""


class SqnError(InvalidInput):
    """A sequence number, IND or SQN configuration outside TS 33.102 Annex C rules."""


class ResyncError(InvalidInput):
    """An AUTS that is malformed or whose MAC-S does not verify (TS 33.102 6.3.3)."""


class SuciError(InvalidInput):
    """A SUCI that cannot be parsed or deconcealed (bad form, key id, point or tag)."""
