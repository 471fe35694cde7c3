"""The DNS wire codec (RFC 1035, RFC 6891 EDNS, RFC 8914 Extended DNS Errors): bytes in,
immutable values or bytes out. No sockets, no clocks, no policy."""

from ztsim.dns.wire.block import BlockMode, block_response
from ztsim.dns.wire.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.wire.edns import Edns, EdnsOption, ExtendedError
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError, InvalidDomain
from ztsim.dns.wire.fast import QuestionView, badvers, formerr, parse_question, refused, servfail
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.dns.wire.names import normalize_name
from ztsim.dns.wire.truncate import truncate

__all__ = [
    "BlockMode",
    "CachedAnswer",
    "DnsDecodeError",
    "DnsEncodeError",
    "Edns",
    "EdnsOption",
    "ExtendedError",
    "Flag",
    "InvalidDomain",
    "Message",
    "Question",
    "QuestionView",
    "ResourceRecord",
    "badvers",
    "block_response",
    "decode_message",
    "formerr",
    "normalize_name",
    "parse_question",
    "patch_id_and_ttls",
    "refused",
    "servfail",
    "truncate",
]
