"""The demo site's namespaces as its tests see them: whether the site can run here, and
which of this process's `ztdemo-<pid>-*` namespaces exist (none may be left after a
test; the `site` fixture in tests/simulator/conftest.py checks)."""

from __future__ import annotations

import os

import pytest

from ztsim.simulator import demo_site

from support.netns_hosts import ip

WHY = demo_site.why_not()
needs_site = pytest.mark.skipif(bool(WHY), reason=WHY or "runs")


def ours() -> list[str]:
    """This process's demo namespaces, by name."""
    tag = f"{demo_site.PREFIX}{os.getpid()}-"
    return sorted(n.split()[0] for n in ip("netns", "list").splitlines() if n.startswith(tag))
