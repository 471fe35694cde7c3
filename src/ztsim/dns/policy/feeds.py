"""Security category feeds: parsing configured feed texts, and a small sample for demos and tests.

A feed is any list format `lists.parse_list` reads (hosts, plain domains,
AdBlock); each is attached to one `Category`. The sample names live under
`.example` and `.test` (RFC 2606 reserved names), so they never hit real hosts.
"""

from __future__ import annotations

from collections.abc import Mapping

from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.rules import Category

_D, _H, _A = ListFormat.DOMAINS, ListFormat.HOSTS, ListFormat.ADBLOCK
SAMPLE_FEEDS: dict[Category, tuple[ListFormat, str]] = {
    Category.PHISHING: (
        _D,
        "# sample phishing feed\nlogin-verify.phish.example\n*.bank-secure.test\n",
    ),
    Category.MALWARE: (_H, "0.0.0.0 payload.malware.example\n0.0.0.0 dropper.malware.example\n"),
    Category.COMMAND_AND_CONTROL: (_A, "||c2.botnet.example^\n"),
    Category.CRYPTOMINING: (_D, "pool.coinmine.example\n*.miner.test\n"),
    Category.NEWLY_SEEN: (_D, "fresh-domain-0001.example\n"),
}


def parse_feeds(
    texts: Mapping[Category, tuple[ListFormat | None, str]],
) -> dict[Category, ParsedList]:
    """Each feed's text parsed; bad lines are counted in the result, never fatal."""
    return {category: parse_list(text, fmt) for category, (fmt, text) in texts.items()}


def sample_feeds() -> dict[Category, ParsedList]:
    return parse_feeds(SAMPLE_FEEDS)
