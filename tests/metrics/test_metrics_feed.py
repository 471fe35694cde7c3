"""The feed's families: one series per role, and the roles of one process combine."""

from __future__ import annotations

from ztsim.metrics.exposition import render
from ztsim.metrics.feed import feed_families
from ztsim.metrics.registry import Registry

from support.prometheus_text import parse


def test_each_role_adds_its_series_to_the_same_families() -> None:
    registry = Registry()
    registry.register(lambda: feed_families("radius", 0.25, 41, True))
    registry.register(lambda: feed_families("dns", 12.5, 40, False))
    scrape = parse(render(registry.samples()).decode())
    assert scrape.types["ztsim_feed_lag_seconds"] == "gauge"
    assert scrape.value("ztsim_feed_lag_seconds", role="radius") == 0.25
    assert scrape.value("ztsim_feed_lag_seconds", role="dns") == 12.5
    assert scrape.value("ztsim_feed_position", role="radius") == 41
    assert scrape.value("ztsim_feed_connected", role="radius") == 1
    assert scrape.value("ztsim_feed_connected", role="dns") == 0
