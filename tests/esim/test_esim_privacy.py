"""The pack's DNS paragraph: what the DNS filter records about the employee, in plain
words, for each of the org's privacy modes; on the page, in HTML and on one PDF page."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime

import pytest

from ztsim.dns.policy.rules import PrivacyMode
from ztsim.esim import ActivationCode
from ztsim.esim.codes import new_matching_id
from ztsim.esim.pack import PackPage, render_html, render_pdf
from ztsim.esim.privacy import DnsLogging, DnsLogMode, dns_privacy_paragraph

from support.leaks import LEAKS

SEES = (
    "While your phone uses this eSIM's mobile data, the company's DNS filter sees the name "
    "of each website or online service your phone looks up (for example www.example.com), "
    "to apply the company's rules such as blocking harmful sites; it does not see the "
    "pages themselves. "
)
NAMED = "These records name you and your phone."
CODED = (
    "These records carry a code instead of your name and your phone; the code stays the "
    "same, so the records about you can be put together, but turning it back into your "
    "name takes the system's secret key."
)
COUNTS = "It also counts look-ups for the company as a whole, without names."
BLOCKED = (
    "It records only the look-ups it blocks: the time, the name looked up and the rule "
    "that blocked it."
)
EVERY = (
    "It records every look-up: the time, the name looked up, and whether it was allowed "
    "or blocked and by which rule."
)
NOTHING = "It keeps no record of these look-ups, not even of the ones it blocks."

EXPECTED = {
    (DnsLogMode.NONE, False): SEES + NOTHING,
    (DnsLogMode.NONE, True): SEES + NOTHING,
    (DnsLogMode.BLOCKED_ONLY, False): f"{SEES}{BLOCKED} {NAMED} {COUNTS}",
    (DnsLogMode.BLOCKED_ONLY, True): f"{SEES}{BLOCKED} {CODED} {COUNTS}",
    (DnsLogMode.ALL, False): f"{SEES}{EVERY} {NAMED} {COUNTS}",
    (DnsLogMode.ALL, True): f"{SEES}{EVERY} {CODED} {COUNTS}",
}


@pytest.mark.parametrize(("mode", "pseudonymised"), list(EXPECTED))
def test_the_paragraph_for_each_privacy_mode(mode: DnsLogMode, pseudonymised: bool) -> None:
    text = dns_privacy_paragraph(DnsLogging(mode, pseudonymised))
    assert text == EXPECTED[(mode, pseudonymised)]
    # Short sentences for a reader who is not a lawyer.
    sentences = [s for s in re.split(r"(?<=\.) ", text) if s]
    assert max(len(s.split()) for s in sentences) <= 45


def test_the_modes_are_the_dns_privacy_modes() -> None:
    # Callers pass `PrivacyMode.value` across the package boundary: the same strings.
    assert {m.value for m in DnsLogMode} == {m.value for m in PrivacyMode}
    assert DnsLogging("blocked-only").mode is DnsLogMode.BLOCKED_ONLY  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="everything"):
        DnsLogging("everything")  # type: ignore[arg-type]


def _page(notice: str, *, name: str = "Zoë Müller", org: str = "Acme GmbH") -> PackPage:
    matching_id = new_matching_id()
    LEAKS.add_secret(matching_id)
    code = ActivationCode("smdp.acme.com", matching_id, "1.3.6.1.4.1.31746", True)
    expires = datetime(2026, 12, 24, 9, 30, tzinfo=UTC)
    return PackPage(name, org, code, expires, uuid.uuid4().hex, dns_notice=notice)


@pytest.mark.parametrize("key", list(EXPECTED))
def test_the_page_carries_the_paragraph(key: tuple[DnsLogMode, bool]) -> None:
    notice = dns_privacy_paragraph(DnsLogging(*key))
    text = render_html(_page(notice)).decode("utf-8")
    assert f'<p class="privacy">{html.escape(notice)}</p>' in text
    # The longest paragraph, the longest names and a confirmation note: still one sheet.
    pdf = render_pdf(_page(notice, name="W" * 200, org="O" * 200))
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 1


def test_a_page_without_dns_facts_says_nothing_of_dns() -> None:
    text = render_html(_page("")).decode("utf-8")
    assert "DNS" not in text
    assert text.count('class="privacy"') == 2
