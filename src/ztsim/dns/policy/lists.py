"""Parsers for block lists: hosts files, plain domain lists and AdBlock `||name^` rules.

They never raise on content: a line we cannot use is counted as bad (it was
meant to be an entry but is broken) or unsupported (valid syntax of a richer
format we do not apply to DNS, such as cosmetic or path rules), and the first
few bad lines are kept with their numbers and reasons.

Matching scope of entries: hosts lines and plain domains block exactly that
name; `*.name` in a domain list and `||name^` block the name and everything
under it; `@@||name^` exempts the name and everything under it. Any address in
a hosts line counts as a block, whatever it is (0.0.0.0, 127.0.0.1, ::, other).
"""

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ztsim.dns.policy.lists_bulk import scan_domains, scan_hosts
from ztsim.dns.wire.errors import InvalidDomain
from ztsim.dns.wire.names import normalize_name

DEFAULT_MAX_SAMPLES = 20
_SINK_ADDRESSES = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1"})  # noqa: S104 - list text
# Names every stock hosts file maps to the machine itself; never block entries.
_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",  # noqa: S104 - StevenBlack-style lists map it to itself
    }
)
_ADBLOCK_UNSUPPORTED_CHARS = frozenset("*/:?=&|$,~ ")
_COSMETIC_MARKERS = ("##", "#@#", "#?#", "#$#", "#%#")


class ListFormat(enum.Enum):
    HOSTS = "hosts"
    DOMAINS = "domains"
    ADBLOCK = "adblock"


@dataclass(frozen=True, slots=True)
class BadLine:
    number: int  # 1-based
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedList:
    """Names from one list, split by action and scope, with line counts."""

    blocked: frozenset[str] = frozenset()
    blocked_subtree: frozenset[str] = frozenset()
    allowed_subtree: frozenset[str] = frozenset()
    good_lines: int = 0
    bad_lines: int = 0
    unsupported_lines: int = 0
    ignored_lines: int = 0  # blank lines, comments, localhost entries
    bad_samples: tuple[BadLine, ...] = ()


@dataclass(slots=True)
class _Collector:
    max_samples: int
    blocked: set[str] = field(default_factory=set)
    blocked_subtree: set[str] = field(default_factory=set)
    allowed_subtree: set[str] = field(default_factory=set)
    good: int = 0
    bad: int = 0
    unsupported: int = 0
    ignored: int = 0
    samples: list[BadLine] = field(default_factory=list)

    def reject(self, number: int, reason: str) -> None:
        self.bad += 1
        if len(self.samples) < self.max_samples:
            self.samples.append(BadLine(number, reason))

    def result(self) -> ParsedList:
        return ParsedList(
            blocked=frozenset(self.blocked),
            blocked_subtree=frozenset(self.blocked_subtree),
            allowed_subtree=frozenset(self.allowed_subtree),
            good_lines=self.good,
            bad_lines=self.bad,
            unsupported_lines=self.unsupported,
            ignored_lines=self.ignored,
            bad_samples=tuple(self.samples),
        )


def _lines(source: str | Iterable[str]) -> Iterable[str]:
    return source.splitlines() if isinstance(source, str) else source


def _strip(line: str) -> str:
    return line.lstrip("\ufeff").strip()


def parse_hosts(
    source: str | Iterable[str], *, max_samples: int = DEFAULT_MAX_SAMPLES
) -> ParsedList:
    """`ADDRESS NAME [NAME...] [# comment]` lines; each name is blocked exactly."""
    if isinstance(source, str) and (scanned := scan_hosts(source)) is not None:
        names, blank = scanned
        local = sum(map(names.count, _LOCAL_NAMES.intersection(names)))
        return ParsedList(
            blocked=frozenset(names).difference(_LOCAL_NAMES),
            good_lines=len(names) - local,
            ignored_lines=blank + local,
        )
    return _parse_hosts_lines(_lines(source), max_samples)


def _parse_hosts_lines(lines: Iterable[str], max_samples: int) -> ParsedList:
    out = _Collector(max_samples)
    for number, raw in enumerate(lines, 1):
        line = _strip(raw.split("#", 1)[0])
        if not line:
            out.ignored += 1
            continue
        fields = line.split()
        names = [name for name in fields[1:] if name.lower() not in _LOCAL_NAMES]
        if len(fields) > 1 and not names:
            out.ignored += 1
            continue
        if len(fields) < 2:
            out.reject(number, "hosts line needs an address and a name")
            continue
        if fields[0] not in _SINK_ADDRESSES and not _is_address(fields[0]):
            out.reject(number, "first field is not an IP address")
            continue
        reason = None
        for name in names:
            try:
                out.blocked.add(normalize_name(name))
            except InvalidDomain as error:
                reason = f"{error}"
        if reason is None:
            out.good += 1
        else:
            out.reject(number, reason)
    return out.result()


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_domains(
    source: str | Iterable[str], *, max_samples: int = DEFAULT_MAX_SAMPLES
) -> ParsedList:
    """One name per line (`#` comments); `*.name` blocks the name and its subdomains."""
    if isinstance(source, str) and (scanned := scan_domains(source)) is not None:
        exact, subtree, blank = scanned
        return ParsedList(
            blocked=frozenset(exact),
            blocked_subtree=frozenset(subtree),
            good_lines=len(exact) + len(subtree),
            ignored_lines=blank,
        )
    return _parse_domains_lines(_lines(source), max_samples)


def _parse_domains_lines(lines: Iterable[str], max_samples: int) -> ParsedList:
    out = _Collector(max_samples)
    for number, raw in enumerate(lines, 1):
        line = _strip(raw.split("#", 1)[0])
        if not line:
            out.ignored += 1
            continue
        if len(line.split()) != 1:
            out.reject(number, "more than one field on a domain line")
            continue
        subtree = line.startswith("*.")
        try:
            name = normalize_name(line[2:] if subtree else line)
        except InvalidDomain as error:
            out.reject(number, f"{error}")
            continue
        (out.blocked_subtree if subtree else out.blocked).add(name)
        out.good += 1
    return out.result()


def parse_adblock(
    source: str | Iterable[str], *, max_samples: int = DEFAULT_MAX_SAMPLES
) -> ParsedList:
    """`||name^` blocks and `@@||name^` exceptions; other AdBlock rules are unsupported."""
    out = _Collector(max_samples)
    for number, raw in enumerate(_lines(source), 1):
        line = _strip(raw)
        if not line or line.startswith(("!", "[")):
            out.ignored += 1
            continue
        if any(marker in line for marker in _COSMETIC_MARKERS):
            out.unsupported += 1
            continue
        if line.startswith("#"):
            out.ignored += 1
            continue
        exception = line.startswith("@@")
        body = line[2:] if exception else line
        if not body.startswith("||"):
            out.unsupported += 1
            continue
        body = body[2:]
        if body.endswith("^|"):
            body = body[:-1]
        if not body.endswith("^"):
            out.unsupported += 1
            continue
        body = body[:-1]
        if any(char in _ADBLOCK_UNSUPPORTED_CHARS for char in body) or "^" in body:
            out.unsupported += 1
            continue
        try:
            name = normalize_name(body)
        except InvalidDomain as error:
            out.reject(number, f"{error}")
            continue
        (out.allowed_subtree if exception else out.blocked_subtree).add(name)
        out.good += 1
    return out.result()


def detect_format(source: str | Iterable[str], *, sample: int = 200) -> ListFormat:
    """Guess a list's format from its first `sample` meaningful lines."""
    votes = dict.fromkeys(ListFormat, 0)
    seen = 0
    for raw in _lines(source):
        line = _strip(raw)
        if not line or line.startswith(("#", "!", "[")):
            continue
        if line.startswith(("||", "@@")):
            votes[ListFormat.ADBLOCK] += 1
        elif len(line.split()) > 1 and _is_address(line.split()[0]):
            votes[ListFormat.HOSTS] += 1
        else:
            votes[ListFormat.DOMAINS] += 1
        seen += 1
        if seen >= sample:
            break
    return max(votes, key=lambda fmt: votes[fmt])


def parse_list(
    source: str | Iterable[str],
    fmt: ListFormat | None = None,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> ParsedList:
    """Parse with the given format, or the detected one (the source is read twice then)."""
    if fmt is None:
        source = source if isinstance(source, str) else list(source)
        fmt = detect_format(source)
    parser = {
        ListFormat.HOSTS: parse_hosts,
        ListFormat.DOMAINS: parse_domains,
        ListFormat.ADBLOCK: parse_adblock,
    }[fmt]
    return parser(source, max_samples=max_samples)
