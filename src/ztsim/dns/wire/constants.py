"""Numbers from the DNS registries that the codec and the fast path share."""

import enum


class RRType(enum.IntEnum):
    """Resource record TYPE values (RFC 1035 §3.2.2 and the IANA registry)."""

    A = 1
    NS = 2
    MD = 3
    MF = 4
    CNAME = 5
    SOA = 6
    MB = 7
    MG = 8
    MR = 9
    NULL = 10
    WKS = 11
    PTR = 12
    HINFO = 13
    MINFO = 14
    MX = 15
    TXT = 16
    RP = 17
    AFSDB = 18
    RT = 21
    AAAA = 28
    PX = 26
    SRV = 33
    OPT = 41
    DS = 43
    RRSIG = 46
    NSEC = 47
    DNSKEY = 48
    SVCB = 64
    HTTPS = 65
    ANY = 255


class RRClass(enum.IntEnum):
    """CLASS values (RFC 1035 §3.2.4)."""

    IN = 1
    CH = 3
    HS = 4
    NONE = 254
    ANY = 255


class Opcode(enum.IntEnum):
    """Header OPCODE values (RFC 1035 §4.1.1, RFC 1996, RFC 2136)."""

    QUERY = 0
    IQUERY = 1
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5


class Rcode(enum.IntEnum):
    """Response codes; values above 15 need the EDNS extended bits (RFC 6891 §6.1.3)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    BADVERS = 16


class EdnsOptionCode(enum.IntEnum):
    """EDNS(0) option codes (IANA "DNS EDNS0 Option Codes")."""

    NSID = 3  # RFC 5001
    CLIENT_SUBNET = 8  # RFC 7871
    COOKIE = 10  # RFC 7873
    PADDING = 12  # RFC 7830
    EDE = 15  # RFC 8914 §2


class EdeCode(enum.IntEnum):
    """Extended DNS Error INFO-CODEs (RFC 8914 §4)."""

    OTHER = 0
    UNSUPPORTED_DNSKEY_ALGORITHM = 1
    UNSUPPORTED_DS_DIGEST_TYPE = 2
    STALE_ANSWER = 3
    FORGED_ANSWER = 4
    DNSSEC_INDETERMINATE = 5
    DNSSEC_BOGUS = 6
    SIGNATURE_EXPIRED = 7
    SIGNATURE_NOT_YET_VALID = 8
    DNSKEY_MISSING = 9
    RRSIGS_MISSING = 10
    NO_ZONE_KEY_BIT_SET = 11
    NSEC_MISSING = 12
    CACHED_ERROR = 13
    NOT_READY = 14
    BLOCKED = 15
    CENSORED = 16
    FILTERED = 17
    PROHIBITED = 18
    STALE_NXDOMAIN_ANSWER = 19
    NOT_AUTHORITATIVE = 20
    NOT_SUPPORTED = 21
    NO_REACHABLE_AUTHORITY = 22
    NETWORK_ERROR = 23
    INVALID_DATA = 24


HEADER_LEN = 12  # RFC 1035 §4.1.1
MAX_NAME_WIRE = 255  # RFC 1035 §3.1: octets of a whole name on the wire
MAX_LABEL = 63  # RFC 1035 §2.3.4
CLASSIC_UDP_LIMIT = 512  # RFC 1035 §2.3.4 / §4.2.1: UDP messages without EDNS
SERVER_UDP_PAYLOAD = 1232  # DNS Flag Day 2020: a payload size that avoids IP fragmentation
MAX_TTL = 0xFFFFFFFF  # RFC 1035 §3.2.1: unsigned 32 bits on the wire

# RFC 1035 §4.1.1 header flag bits, in the 16-bit word after the ID.
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
FLAG_AD = 0x0020  # RFC 4035 §3.2.3
FLAG_CD = 0x0010  # RFC 4035 §3.2.2
EDNS_DO = 0x8000  # RFC 3225 §3: top bit of the OPT TTL's low 16 bits
