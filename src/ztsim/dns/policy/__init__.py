"""DNS policy as data and its compiled form: `rules` (rules, org settings, privacy
modes), `lists` and `feeds` (block and allow list parsers), `domainstore` (a compact,
fork-shareable name -> category mask store), `liststores` (one store per list, kept
while the list is unchanged), `snapshot` (everything the engine decides with,
recompiled per org), `identity` (source address or device token -> requester)
and `config` (the gateway's TOML policy file). Pure: no sockets, no
database; NumPy is loaded only while a domain store is built."""

from ztsim.dns.policy.domainstore import DomainStore, DomainStoreBuilder
from ztsim.dns.policy.identity import IdentityResolver, IdentitySnapshot, Requester
from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.rules import (
    Action,
    BlockAnswer,
    Category,
    OrgPolicy,
    OrgSettings,
    PolicyData,
    PrivacyMode,
    Rule,
)
from ztsim.dns.policy.snapshot import Decision, PolicySnapshot

__all__ = [
    "Action",
    "BlockAnswer",
    "Category",
    "Decision",
    "DomainStore",
    "DomainStoreBuilder",
    "IdentityResolver",
    "IdentitySnapshot",
    "ListFormat",
    "OrgPolicy",
    "OrgSettings",
    "ParsedList",
    "PolicyData",
    "PolicySnapshot",
    "PrivacyMode",
    "Requester",
    "Rule",
    "parse_list",
]
