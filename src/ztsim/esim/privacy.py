"""What the onboarding pack tells an employee about the DNS filter's records of them.

The facts come from the org's DNS settings, read by the caller (the CLI or the API): this
package does not import `ztsim.dns`, so they arrive as a plain value. The words follow
what the DNS gateway's query log keeps in each privacy mode (`ztsim.dns.querylog`):
nothing in `none`; blocked look-ups in `blocked-only`; every look-up in `all`; in both of
those, counts for the whole org that name no one; an identity and a device, or a keyed
pseudonym in their place when the org pseudonymises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DnsLogMode(enum.StrEnum):
    """The org's DNS privacy mode, with the values of `ztsim.dns.policy.rules.PrivacyMode`."""

    NONE = "none"
    BLOCKED_ONLY = "blocked-only"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class DnsLogging:
    mode: DnsLogMode
    pseudonymised: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", DnsLogMode(self.mode))


_WHAT = (
    "While your phone uses this eSIM's mobile data, the company's DNS filter sees the name "
    "of each website or online service your phone looks up (for example www.example.com), "
    "to apply the company's rules such as blocking harmful sites; it does not see the "
    "pages themselves. "
)
_KEPT = {
    DnsLogMode.NONE: "It keeps no record of these look-ups, not even of the ones it blocks.",
    DnsLogMode.BLOCKED_ONLY: (
        "It records only the look-ups it blocks: the time, the name looked up and the rule "
        "that blocked it."
    ),
    DnsLogMode.ALL: (
        "It records every look-up: the time, the name looked up, and whether it was allowed "
        "or blocked and by which rule."
    ),
}
_WHO = {
    False: "These records name you and your phone.",
    True: (
        "These records carry a code instead of your name and your phone; the code stays the "
        "same, so the records about you can be put together, but turning it back into your "
        "name takes the system's secret key."
    ),
}
_COUNTS = "It also counts look-ups for the company as a whole, without names."


def dns_privacy_paragraph(logging: DnsLogging) -> str:
    """The paragraph for the org's current DNS privacy mode, in plain words."""
    if logging.mode is DnsLogMode.NONE:
        return _WHAT + _KEPT[DnsLogMode.NONE]
    return " ".join((_WHAT + _KEPT[logging.mode], _WHO[logging.pseudonymised], _COUNTS))
