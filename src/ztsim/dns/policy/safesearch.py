"""Search engines' "safe" hosts: names to answer with a CNAME when safe search is enforced.

Facts from the engines' own documentation for network-level enforcement:
Google (support.google.com/websearch/answer/186669: forcesafesearch.google.com),
Bing (strict.bing.com), DuckDuckGo (safe.duckduckgo.com), YouTube
(support.google.com/a/answer/6214622: restrict.youtube.com).
"""

from __future__ import annotations

_GOOGLE = "forcesafesearch.google.com"
_BING = "strict.bing.com"
_DUCKDUCKGO = "safe.duckduckgo.com"
_YOUTUBE = "restrict.youtube.com"

SAFE_HOSTS: dict[str, str] = {
    "google.com": _GOOGLE,
    "www.google.com": _GOOGLE,
    "bing.com": _BING,
    "www.bing.com": _BING,
    "duckduckgo.com": _DUCKDUCKGO,
    "www.duckduckgo.com": _DUCKDUCKGO,
    "www.youtube.com": _YOUTUBE,
    "m.youtube.com": _YOUTUBE,
    "youtube.com": _YOUTUBE,
    "youtubei.googleapis.com": _YOUTUBE,
    "youtube.googleapis.com": _YOUTUBE,
    "www.youtube-nocookie.com": _YOUTUBE,
}


def safe_host(qname: str) -> str | None:
    """The safe host to CNAME `qname` (normalised) to, or None if it is no search engine."""
    return SAFE_HOSTS.get(qname)
