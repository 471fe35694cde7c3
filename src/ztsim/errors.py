"""The root of every error ztsim raises on purpose.

Callers catch `ZtsimError` at the I/O edge; subclasses say what kind of failure
it is so the edge can map it (HTTP status, RADIUS reject, DNS rcode). Messages
never carry secrets: they name fields and identifiers, never key material.
"""


class ZtsimError(Exception):
    """Base class of every deliberate ztsim error."""


class InvalidInput(ZtsimError, ValueError):
    """A value, file, packet or request that does not satisfy its rules."""


class NotFound(ZtsimError, LookupError):
    """The object does not exist, or is not visible to the caller's org."""


class Conflict(ZtsimError):
    """The request contradicts the current state (duplicate, illegal transition)."""


class Forbidden(ZtsimError, PermissionError):
    """The caller is known but its role does not allow the action."""


class SealingError(ZtsimError):
    """A sealed secret could not be opened: wrong key, or tampered data."""


class Unauthenticated(ZtsimError):
    """No valid credentials were presented."""
