"""Errors of the DNS core: every one is an `InvalidInput`, so the edge maps them alike."""

from ztsim.errors import InvalidInput


class DnsDecodeError(InvalidInput):
    """DNS wire bytes that do not form a message we accept; the text says why."""


class DnsEncodeError(InvalidInput):
    """A message value that cannot be put on the wire (too long, too many records)."""


class InvalidDomain(InvalidInput):
    """A domain name that cannot be normalised (bad label, too long, bad IDN)."""
