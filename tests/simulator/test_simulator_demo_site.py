"""The demo's site on the real kernel: its three namespaces made and always removed
(also after a failed open, and those of a demo that was killed), the phones' loopback
pool routed across them, and the intranet served in the site's namespace."""

from __future__ import annotations

import os
import subprocess

import pytest

from ztsim.simulator import demo_site
from ztsim.simulator.demo_intranet import fetch
from ztsim.simulator.demo_site import DemoSite, SiteError
from ztsim.simulator.demo_world import INTRANET

from support.demo_namespaces import needs_site, ours
from support.netns_hosts import ip


def test_it_says_why_it_cannot_run_without_root() -> None:
    assert demo_site.why_not(euid=1000) == "it needs root (network namespaces, nftables)"


@needs_site
def test_the_site_makes_its_namespaces_and_serves_the_intranet(site: DemoSite) -> None:
    pid = os.getpid()
    assert ours() == sorted(f"ztdemo-{pid}-{n}" for n in ("gw", "site", "ue"))
    # The intranet answers in the site's namespace; the phones reach nothing without the
    # gateway's tunnel (the net role is not running here).
    assert fetch(site.site, INTRANET)[0] == 200
    with pytest.raises(OSError, match="Network is unreachable"):
        fetch(site.ue, "127.80.0.9", timeout=0.5)
    # The pool crosses the namespaces: routed in the local tables, ahead of 127/8.
    local = ip("-n", site.gw, "route", "show", "table", "local")
    assert "127.80.0.0/16 via 169.254.80.2 dev ue-side" in local


@needs_site
def test_a_failed_open_removes_what_it_made_and_a_dead_demos_namespaces() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"ztdemo-{dead.pid}-ue"
    ip("netns", "add", stale)
    taken = f"ztdemo-{os.getpid()}-site"
    ip("netns", "add", taken)  # the site's name is taken: the open fails half-way
    try:
        with pytest.raises(SiteError, match="netns add"):
            DemoSite().open()
        assert ours() == [taken]
        assert stale not in ip("netns", "list")
    finally:
        ip("netns", "del", taken, check=False)
        ip("netns", "del", stale, check=False)
