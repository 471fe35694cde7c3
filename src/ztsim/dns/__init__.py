"""The pure core of ztsim's DNS gateway: no sockets here, bytes in and values or bytes out.

- `message`, `edns`: the full RFC 1035 / RFC 6891 / RFC 8914 codec, immutable values.
- `fast`, `block`, `cache`, `truncate`: the hot path, which reads only the header
  and question and answers from prebuilt or stored wire bytes.
- `names`, `lists`: name normalisation and block list parsers.
- `domainstore`: a compact, fork-shareable name -> category mask store.

The gateway around it: `policy` (rules as data) compiled by `snapshot`; `identity`
(source address / device token -> requester, from `identity_db`'s session-table
snapshot); the sans-I/O `engine` with `answercache`, `answers` and `querylog`; thin
adapters `server_udp`, `server_tcp` (also DoT), `doh` and `upstream`; `repository`,
`policy_db`, `refresh` and `config` for the policy's storage; `runner` and `workers`
to run it.
"""

from ztsim.dns.block import BlockMode, block_response
from ztsim.dns.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.domainstore import DomainStore, DomainStoreBuilder
from ztsim.dns.edns import Edns, EdnsOption, ExtendedError
from ztsim.dns.errors import DnsDecodeError, DnsEncodeError, InvalidDomain
from ztsim.dns.fast import QuestionView, badvers, formerr, parse_question, refused, servfail
from ztsim.dns.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.dns.names import normalize_name
from ztsim.dns.truncate import truncate

__all__ = [
    "BlockMode",
    "CachedAnswer",
    "DnsDecodeError",
    "DnsEncodeError",
    "DomainStore",
    "DomainStoreBuilder",
    "Edns",
    "EdnsOption",
    "ExtendedError",
    "Flag",
    "InvalidDomain",
    "ListFormat",
    "Message",
    "ParsedList",
    "Question",
    "QuestionView",
    "ResourceRecord",
    "badvers",
    "block_response",
    "decode_message",
    "formerr",
    "normalize_name",
    "parse_list",
    "parse_question",
    "patch_id_and_ttls",
    "refused",
    "servfail",
    "truncate",
]
