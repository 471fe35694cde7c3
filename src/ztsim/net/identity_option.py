"""ztsim's Geneve options: who sent a packet, so that a site can enforce identity itself.

Both options live in one option class of RFC 8926's experimental range (see
docs/net.md for the layout, and what a site does with them):

- the policy class (type 0x81, critical): the subject's class number in its org's
  compiled policy, and the generation of that policy. Class numbers are only meaningful
  within one compilation, so the generation is what lets a site tell a current class
  from a stale one. Critical, because a site that cannot read it must drop the packet
  (RFC 8926 §3.5.1) rather than forward it as if nobody had been classified: a site
  that does not enforce identity uses a tunnel without options (kernel VXLAN).
- the identity (type 0x02, not critical): the subject's identity id, 16 octets. Only
  attribution (a site's logs, its own finer rules): a site that does not read it loses
  nothing the class did not already decide, so it may skip it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ztsim.net.geneve import CRITICAL_TYPE, EXPERIMENTAL_CLASSES, GeneveError, GeneveOption

# RFC 8926 §7: in the Experimental Use range, so nothing is claimed from the registry;
# not 0xFF00, the value every experiment picks first; the low octet is "Z".
OPTION_CLASS = 0xFF5A
TYPE_POLICY_CLASS = CRITICAL_TYPE | 0x01  # RFC 8926 §3.5: the high bit makes it critical
TYPE_IDENTITY = 0x02
KNOWN = frozenset({(OPTION_CLASS, TYPE_POLICY_CLASS), (OPTION_CLASS, TYPE_IDENTITY)})

_POLICY_CLASS = struct.Struct("!II")  # generation, class number: 8 octets, 2 words
_IDENTITY_OCTETS = 16  # a uuid4 id, 32 hex characters
_HEX = frozenset("0123456789abcdef")
_U32 = 0xFFFFFFFF

assert OPTION_CLASS in EXPERIMENTAL_CLASSES


def _u32(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U32:
        raise GeneveError(f"{name} is a number from 0 to {_U32}")
    return value


@dataclass(frozen=True, slots=True)
class ClassTag:
    """A policy class as a site sees it: the class number within the generation of the
    org's compiled policy that numbered it."""

    generation: int
    class_id: int

    def __post_init__(self) -> None:
        _u32(self.generation, "policy generation")
        _u32(self.class_id, "policy class")


def _identity(value: object) -> str:
    if (
        not isinstance(value, str)
        or len(value) != 2 * _IDENTITY_OCTETS
        or not _HEX.issuperset(value)
    ):
        raise GeneveError("an identity id is 32 lower-case hex characters")
    return value


@dataclass(frozen=True, slots=True)
class Subject:
    """What a packet says about its sender: the class, and the identity if carried."""

    tag: ClassTag
    identity: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tag, ClassTag):
            raise GeneveError("a subject's tag is a ClassTag")
        if self.identity is not None:
            _identity(self.identity)

    def options(self, *, with_identity: bool = True) -> tuple[GeneveOption, ...]:
        """The options to carry; the identity only when known and asked for (an org may
        keep identities off the wire and still have sites enforce by class)."""
        tag = GeneveOption(
            OPTION_CLASS,
            TYPE_POLICY_CLASS,
            _POLICY_CLASS.pack(self.tag.generation, self.tag.class_id),
        )
        if self.identity is None or not with_identity:
            return (tag,)
        return (tag, GeneveOption(OPTION_CLASS, TYPE_IDENTITY, bytes.fromhex(self.identity)))


def read_subject(options: Iterable[tuple[int, int, bytes | memoryview]]) -> Subject | None:
    """The subject that ztsim's options in `options` name, None when there is no policy
    class option (an identity alone names no class: a site must not act on it).

    Raises GeneveError when one of ztsim's options has the wrong length or appears twice:
    a sender that gets its own format wrong is not trusted with the rest."""
    tag: ClassTag | None = None
    identity: str | None = None
    for option_class, option_type, data in options:
        if option_class != OPTION_CLASS:
            continue
        if option_type == TYPE_POLICY_CLASS:
            if tag is not None or len(data) != _POLICY_CLASS.size:
                raise GeneveError("a malformed or repeated policy class option")
            tag = ClassTag(*_POLICY_CLASS.unpack(data))
        elif option_type == TYPE_IDENTITY:
            if identity is not None or len(data) != _IDENTITY_OCTETS:
                raise GeneveError("a malformed or repeated identity option")
            identity = bytes(data).hex()
    return None if tag is None else Subject(tag, identity)
