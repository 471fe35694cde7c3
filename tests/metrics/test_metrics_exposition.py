"""The text format 0.0.4, read back by an independent strict parser (support.prometheus_text)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ztsim.metrics.exposition import (
    CONTENT_TYPE,
    escape_help,
    escape_label_value,
    format_value,
    render,
)
from ztsim.metrics.registry import Family, HistogramValue, Kind, Registry, Spec

from support.prometheus_text import parse

SEEN = Spec("ztsim_test_seen_total", "Seen.", Kind.COUNTER, ("why",))


def test_content_type_names_the_version() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_escapes() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    # HELP escapes backslash and line feed, not quotes.
    assert escape_help('a\\b"c\nd') == 'a\\\\b"c\\nd'


def test_values() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(2.0**60) == repr(2.0**60)


def test_a_counter_a_gauge_and_a_histogram_as_text() -> None:
    registry = Registry()
    registry.counter("ztsim_test_requests_total", "Requests\nby method.", ("method",)).inc("GET")
    registry.gauge("ztsim_test_open", "Open.").set(2)
    seconds = registry.histogram("ztsim_test_seconds", "Durations.", (0.5,))
    seconds.observe(0.25)
    seconds.observe(2)
    text = render(registry.samples()).decode()
    assert text == (
        "# HELP ztsim_test_requests_total Requests\\nby method.\n"
        "# TYPE ztsim_test_requests_total counter\n"
        'ztsim_test_requests_total{method="GET"} 1\n'
        "# HELP ztsim_test_open Open.\n"
        "# TYPE ztsim_test_open gauge\n"
        "ztsim_test_open 2\n"
        "# HELP ztsim_test_seconds Durations.\n"
        "# TYPE ztsim_test_seconds histogram\n"
        'ztsim_test_seconds_bucket{le="0.5"} 1\n'
        'ztsim_test_seconds_bucket{le="+Inf"} 2\n'
        "ztsim_test_seconds_sum 2.25\n"
        "ztsim_test_seconds_count 2\n"
    )
    scrape = parse(text)
    assert scrape.types == {
        "ztsim_test_requests_total": "counter",
        "ztsim_test_open": "gauge",
        "ztsim_test_seconds": "histogram",
    }
    assert scrape.helps["ztsim_test_requests_total"] == "Requests\nby method."


def test_nothing_renders_as_nothing() -> None:
    assert render([]) == b""
    assert parse(render([SEEN.family([])]).decode()).values == {}


@given(st.text(st.characters(codec="utf-8"), max_size=40))
def test_any_label_value_reads_back_as_itself(value: str) -> None:
    text = render([SEEN.family([((value,), 1)])]).decode()
    assert parse(text).value("ztsim_test_seen_total", why=value) == 1


def test_histograms_with_labels_read_back_cumulative() -> None:
    spec = Spec("ztsim_test_seconds", "D.", Kind.HISTOGRAM, ("port",), (0.001, 0.01, 0.1))
    family: Family = spec.histogram(
        [
            (("auth",), HistogramValue((5, 0, 2, 1), 1.5)),
            (("acct",), HistogramValue((0, 0, 0, 0), 0.0)),
        ]
    )
    scrape = parse(render([family]).decode())
    assert scrape.value("ztsim_test_seconds_bucket", port="auth", le="0.01") == 5
    assert scrape.value("ztsim_test_seconds_bucket", port="auth", le="0.1") == 7
    assert scrape.value("ztsim_test_seconds_count", port="auth") == 8
    assert scrape.value("ztsim_test_seconds_count", port="acct") == 0
