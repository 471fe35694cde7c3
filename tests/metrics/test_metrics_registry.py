"""Declared metrics, collectors, the checks made at declaration, and merging processes."""

from __future__ import annotations

import math

import pytest

from ztsim.metrics.registry import (
    Family,
    HistogramValue,
    Kind,
    Registry,
    Sample,
    Spec,
    merge,
)

QUEUE = Spec("ztsim_test_queue", "Waiting.", Kind.GAUGE, ("port",))
SEEN = Spec("ztsim_test_seen_total", "Seen.", Kind.COUNTER, ("port",))
TIMES = Spec("ztsim_test_seconds", "Durations.", Kind.HISTOGRAM, (), (0.1, 1.0))


def _values(family: Family) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.suffix, s.labels): s.value for s in family.samples}


@pytest.mark.parametrize(
    ("name", "kind", "labels", "buckets"),
    [
        ("other_seen_total", Kind.COUNTER, (), ()),  # outside the namespace
        ("ztsim_bad-name_total", Kind.COUNTER, (), ()),
        ("ztsim_seen", Kind.COUNTER, (), ()),  # a counter without _total
        ("ztsim_level_total", Kind.GAUGE, (), ()),  # _total on a gauge
        ("ztsim_seen_total", Kind.COUNTER, ("a", "a"), ()),
        ("ztsim_seen_total", Kind.COUNTER, ("le",), ()),
        ("ztsim_seen_total", Kind.COUNTER, ("process",), ()),
        ("ztsim_seen_total", Kind.COUNTER, ("__x",), ()),
        ("ztsim_seen_total", Kind.COUNTER, ("1a",), ()),
        ("ztsim_seconds", Kind.HISTOGRAM, (), ()),
        ("ztsim_seconds", Kind.HISTOGRAM, (), (1.0, 0.5)),
        ("ztsim_seconds", Kind.HISTOGRAM, (), (1.0, math.inf)),
        ("ztsim_level", Kind.GAUGE, (), (1.0,)),
    ],
)
def test_bad_declarations_are_refused(
    name: str, kind: Kind, labels: tuple[str, ...], buckets: tuple[float, ...]
) -> None:
    with pytest.raises(ValueError, match=r"ztsim_|_total|label|bucket"):
        Spec(name, "help", kind, labels, buckets)


def test_label_values_must_match_the_declared_names() -> None:
    with pytest.raises(ValueError, match="label values"):
        SEEN.family([((), 1.0)])
    with pytest.raises(ValueError, match="label values"):
        SEEN.family([(("auth", "extra"), 1.0)])
    registry = Registry()
    counter = registry.counter("ztsim_test_requests_total", "Requests.", ("method",))
    with pytest.raises(ValueError, match="label values"):
        counter.inc()
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc("GET", amount=-1)


def test_declared_metrics_count_per_series() -> None:
    registry = Registry()
    counter = registry.counter("ztsim_test_requests_total", "Requests.", ("method",))
    gauge = registry.gauge("ztsim_test_open", "Open.")
    histogram = registry.histogram("ztsim_test_seconds", "Durations.", (0.1, 1.0))
    counter.inc("GET")
    counter.inc("GET", amount=2)
    counter.inc("POST")
    gauge.set(5)
    gauge.add(-2)
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    families = {f.name: f for f in registry.samples()}
    assert _values(families["ztsim_test_requests_total"]) == {
        ("", (("method", "GET"),)): 3.0,
        ("", (("method", "POST"),)): 1.0,
    }
    assert _values(families["ztsim_test_open"]) == {("", ()): 3.0}
    # 0.1 falls in the 0.1 bucket: bounds are inclusive.
    assert _values(families["ztsim_test_seconds"]) == {
        ("_bucket", (("le", "0.1"),)): 2,
        ("_bucket", (("le", "1.0"),)): 3,
        ("_bucket", (("le", "+Inf"),)): 4,
        ("_sum", ()): pytest.approx(3.65),
        ("_count", ()): 4,
    }


def test_a_name_is_declared_once() -> None:
    registry = Registry()
    registry.gauge("ztsim_test_open", "Open.")
    with pytest.raises(ValueError, match="declared twice"):
        registry.gauge("ztsim_test_open", "Open.")


def test_collectors_are_read_at_every_scrape_and_same_families_combine() -> None:
    registry = Registry()
    counts = {"auth": 0}
    registry.register(lambda: [SEEN.family([(("auth",), counts["auth"])])])
    registry.register(lambda: [SEEN.family([(("acct",), 7)])])
    counts["auth"] = 4
    (family,) = registry.samples()
    assert _values(family) == {("", (("port", "auth"),)): 4, ("", (("port", "acct"),)): 7}
    counts["auth"] = 5
    assert _values(registry.samples()[0])[("", (("port", "auth"),))] == 5


def test_samples_are_immutable() -> None:
    registry = Registry()
    registry.gauge("ztsim_test_open", "Open.").set(1)
    (family,) = registry.samples()
    with pytest.raises(AttributeError):
        family.samples[0].value = 2  # type: ignore[misc]
    assert isinstance(family.samples, tuple)


def test_conflicting_or_repeated_series_are_refused_at_scrape() -> None:
    registry = Registry()
    registry.register(lambda: [SEEN.family([(("auth",), 1)])])
    registry.register(lambda: [SEEN.family([(("auth",), 2)])])
    with pytest.raises(ValueError, match="a series twice"):
        registry.samples()
    other = Registry()
    other.register(lambda: [SEEN.family([(("auth",), 1)])])
    other.register(
        lambda: [Spec(SEEN.name, "Else.", Kind.COUNTER, ("port",)).family([(("x",), 1)])]
    )
    with pytest.raises(ValueError, match="two different metrics"):
        other.samples()


def test_histogram_values_need_a_count_per_bucket_and_inf() -> None:
    with pytest.raises(ValueError, match="one count per bucket"):
        TIMES.histogram([((), HistogramValue((1, 2), 0.3))])
    family = TIMES.histogram([((), HistogramValue((1, 2, 3), 9.5))])
    assert _values(family)[("_bucket", (("le", "+Inf"),))] == 6
    assert _values(family)[("_count", ())] == 6


def test_merge_sums_counters_and_histograms_and_labels_gauges_by_process() -> None:
    def process(seen: int, queue: int, fast: int, slow: int) -> list[Family]:
        return [
            SEEN.family([(("udp",), seen)]),
            QUEUE.family([(("udp",), queue)]),
            TIMES.histogram([((), HistogramValue((fast, 0, slow), fast * 0.05 + slow * 2.0))]),
        ]

    merged = {f.name: f for f in merge({"1": process(3, 10, 1, 0), "2": process(4, 20, 2, 1)})}
    assert _values(merged["ztsim_test_seen_total"]) == {("", (("port", "udp"),)): 7}
    assert _values(merged["ztsim_test_queue"]) == {
        ("", (("port", "udp"), ("process", "1"))): 10,
        ("", (("port", "udp"), ("process", "2"))): 20,
    }
    times = _values(merged["ztsim_test_seconds"])
    assert times[("_bucket", (("le", "0.1"),))] == 3
    assert times[("_bucket", (("le", "+Inf"),))] == 4
    assert times[("_count", ())] == 4
    assert times[("_sum", ())] == pytest.approx(2.15)


def test_merge_refuses_processes_that_disagree() -> None:
    other = Spec(SEEN.name, "Something else.", Kind.COUNTER, ("port",))
    with pytest.raises(ValueError, match="disagree"):
        merge({"1": [SEEN.family([])], "2": [other.family([])]})


def test_sample_is_a_value_object() -> None:
    assert Sample("", (), 1.0) == Sample("", (), 1.0)
