"""The settings page's reads and its one change: the privacy mode in the employees'
words, what a change means for them, and the change itself keeping every other DNS
setting."""

from __future__ import annotations

import pytest

from ztsim.dns.policy.rules import BlockAnswer, PrivacyMode
from ztsim.dns.store import repository as dns
from ztsim.errors import InvalidInput
from ztsim.esim.privacy import DnsLogging, DnsLogMode, dns_privacy_paragraph
from ztsim.events import store as events
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.web import settings_page
from ztsim.web.viewer import Viewer

from support.api import ApiHarness
from support.world import World


def _viewer(api: ApiHarness, token: str) -> Viewer:
    with api.engine.connect() as conn:
        principal = token_store.authenticate(conn, token, api.clock())
    assert principal is not None
    return Viewer(principal, "csrf")


def test_a_mode_is_one_of_three() -> None:
    assert settings_page.parse_mode("all") is PrivacyMode.ALL
    for bad in (None, "", "ALL", "everything"):
        with pytest.raises(InvalidInput):
            settings_page.parse_mode(bad)


def test_each_mode_in_the_words_employees_are_given() -> None:
    shown = settings_page.modes(PrivacyMode.BLOCKED_ONLY, pseudonymised=True)
    assert [m.value for m in shown] == ["none", "blocked-only", "all"]
    assert [m.current for m in shown] == [False, True, False]
    for m in shown:
        assert m.told == dns_privacy_paragraph(DnsLogging(DnsLogMode(m.value), True))


def test_what_a_change_means_for_employees() -> None:
    more = settings_page.consequences(PrivacyMode.NONE, PrivacyMode.ALL)
    less = settings_page.consequences(PrivacyMode.ALL, PrivacyMode.BLOCKED_ONLY)
    same = settings_page.consequences(PrivacyMode.ALL, PrivacyMode.ALL)
    assert "records more" in more[0]
    assert "records less" in less[0]
    assert "does not erase" in less[0]
    assert any("onboarding packs" in line for line in more)
    assert any("administrators" in line for line in less)
    assert same == ["Nothing changes: this is the mode in force."]


def test_the_settings_each_role_may_read(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        admin = settings_page.read(conn, _viewer(api, alpha.org.tokens[Role.ADMIN]))
        analyst = settings_page.read(conn, _viewer(api, alpha.org.tokens[Role.ANALYST]))
    assert admin.org.name == "Alpha"
    assert admin.modes is not None
    assert [m.value for m in admin.modes if m.current] == ["blocked-only"]
    assert admin.swaps == settings_page.SwapProtection(False, "1d")
    assert analyst.modes is not None
    assert analyst.swaps is None  # no risk:read


def test_a_privacy_change_keeps_every_other_setting(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    body = {
        "block_answer": "nxdomain",
        "pseudonymise": True,
        "networks": ["10.77.0.0/16"],
        "allow_list_only_fleets": [alpha.ids["fleet_id"]],
    }
    r = api.client.put("/api/v1/dns/settings", json=body, headers=alpha.org.auth())
    assert r.status_code == 200, r.text
    with api.engine.connect() as conn:
        before, before_networks = dns.get_settings(conn, alpha.org.id)
    with api.engine.begin() as conn:
        changed = settings_page.change_privacy(
            conn, alpha.org.id, PrivacyMode.ALL, actor="token:t", now=api.clock()
        )
    assert changed
    with api.engine.connect() as conn:
        after, after_networks = dns.get_settings(conn, alpha.org.id)
        untouched, _ = dns.get_settings(conn, bravo.org.id)
    assert after.privacy is PrivacyMode.ALL
    assert after_networks == before_networks == ("10.77.0.0/16",)
    assert after.block_answer is BlockAnswer.NXDOMAIN
    assert after.pseudonymise
    assert after.allow_list_only_fleets == before.allow_list_only_fleets
    assert untouched.privacy is PrivacyMode.BLOCKED_ONLY


def test_setting_the_mode_in_force_writes_nothing(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    query = events.EventQuery(kind="dns.settings.updated")
    with api.engine.begin() as conn:
        changed = settings_page.change_privacy(
            conn, alpha.org.id, PrivacyMode.BLOCKED_ONLY, actor="token:t", now=api.clock()
        )
        found, _ = events.query(conn, alpha.org.id, query)
    assert not changed
    assert found == []


def test_the_preview_writes_nothing(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    with api.engine.begin() as conn:
        change = settings_page.preview(conn, alpha.org.id, PrivacyMode.NONE)
    assert (change.before.value, change.after.value) == ("blocked-only", "none")
    assert "keeps no record" in change.after.told
    with api.engine.connect() as conn:
        settings, _ = dns.get_settings(conn, alpha.org.id)
    assert settings.privacy is PrivacyMode.BLOCKED_ONLY
