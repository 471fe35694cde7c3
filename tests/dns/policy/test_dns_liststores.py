"""One store per list, one for the feeds: exceptions exempt a name whatever blocks it, and a
compiled list pickles with its bytes (workers get it by key instead: test_dns_share)."""

from __future__ import annotations

import pickle

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.liststores import CompiledFeeds, compile_feeds, compile_list
from ztsim.dns.policy.rules import Category

KEY = bytes(range(16))


def test_a_list_blocks_its_names_and_spares_its_exceptions() -> None:
    parsed = parse_list("||ads.test^\n@@||ok.ads.test^\n||exact.test^\n", ListFormat.ADBLOCK)
    compiled = compile_list(parsed, KEY, "k1")
    assert compiled.blocks("ads.test")
    assert compiled.blocks("x.y.ads.test")
    assert not compiled.blocks("ok.ads.test")
    assert not compiled.blocks("a.ok.ads.test")
    assert compiled.blocks("exact.test")
    assert not compiled.blocks("other.test")
    again = pickle.loads(pickle.dumps(compiled))  # noqa: S301 - our own bytes
    assert again.key == "k1"
    assert again.blocks("x.ads.test")
    assert not again.blocks("ok.ads.test")
    empty = compile_list(ParsedList(), KEY)
    assert not empty.blocks("ads.test")


def test_feeds_give_each_category_a_bit() -> None:
    feeds = compile_feeds(sample_feeds(), KEY, "feeds")
    malware = feeds.bits[Category.MALWARE.value]
    phishing = feeds.bits[Category.PHISHING.value]
    assert malware != phishing
    assert feeds.mask("payload.malware.example") == malware
    assert feeds.mask("a.bank-secure.test") == phishing
    assert feeds.mask("clean.example") == 0
    assert CompiledFeeds().mask("payload.malware.example") == 0
    assert compile_feeds({}, KEY).compiled is None
