"""Errors of the RADIUS wire layer.

Both are `InvalidInput`: a datagram that does not parse, or that does not prove it
came from a holder of the shared secret, is bad input the server silently drops
(RFC 2865 §3). Messages name fields, offsets and lengths, never attribute values
that could carry a password, and never the shared secret.
"""

from ztsim.errors import InvalidInput


class RadiusDecodeError(InvalidInput):
    """A datagram or attribute value that breaks the RADIUS encoding rules."""


class RadiusAuthError(InvalidInput):
    """A packet whose authenticator or Message-Authenticator does not verify."""


class RadiusEncodeError(InvalidInput):
    """A value that cannot be put on the wire (too long, out of range)."""
