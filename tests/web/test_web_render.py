"""Templates escape what they show: a name is text, never markup."""

from __future__ import annotations

from ztsim.web.render import page, refusal


def test_values_are_escaped() -> None:
    html = bytes(refusal(None, 403, '<script>alert("x")</script>').body).decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_the_login_page_labels_its_field() -> None:
    html = bytes(page("login.html", None, title="Sign in", csrf="c", error="").body).decode()
    assert '<label for="token">' in html
    assert 'id="token"' in html
    assert "<main" in html
    assert 'lang="en"' in html
