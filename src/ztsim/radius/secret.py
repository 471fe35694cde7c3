"""The shared secret, wrapped so that it never reaches a repr, log or error."""

import hmac

from ztsim.radius.errors import RadiusEncodeError


class SharedSecret:
    """A RADIUS shared secret (RFC 2865 §3).

    The value is only reachable through `reveal()`, which the hashing code calls;
    `repr`, `str` and pickling show nothing of it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if not raw:
            raise RadiusEncodeError("RADIUS shared secret must not be empty")
        self._value = raw

    def reveal(self) -> bytes:
        """The secret octets, for the MD5/HMAC computations only."""
        return self._value

    def __repr__(self) -> str:
        return "SharedSecret(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SharedSecret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SharedSecret cannot be pickled")
