"""Metrics in memory, read at scrape time.

Two ways to feed a registry:

- declared metrics (`Registry.counter`, `gauge`, `histogram`) for code off the hot
  paths (the API's requests): each update takes the metric's lock;
- collectors (`Registry.register`): a function called at scrape time that reads the
  plain int counters a hot path keeps anyway and returns `Family` values built from a
  `Spec`. The hot path pays nothing for being scraped.

Names and label names are checked when a `Spec` is made (a bad one is a bug: ValueError);
label values are checked for their number when a series is made. Every name is in the
`ztsim_` namespace. What a scrape returns (`samples`) is immutable.

`merge` puts the samples of several processes of one role together (the DNS workers):
counters and histograms are summed, since that is what `sum(rate(...))` over the
processes would give anyway; gauges keep one series per process under a `process`
label, as Prometheus' own multi-process clients do by default, because no single
aggregate fits every gauge (a lag wants the max, a queue length the sum) and PromQL can
take either from the separate series.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import NamedTuple

NAMESPACE = "ztsim_"
PROCESS_LABEL = "process"  # added by `merge` to gauges
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")  # the data model's metric names
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")  # label names; "__" prefixes are reserved
_RESERVED_LABELS = frozenset({"le", "quantile", PROCESS_LABEL})

Labels = tuple[tuple[str, str], ...]


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class Sample:
    """One series' value: `suffix` is "" or, for histograms, "_bucket", "_sum", "_count"."""

    suffix: str
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: Kind
    help: str
    samples: tuple[Sample, ...]


class HistogramValue(NamedTuple):
    """Observations per bucket (not cumulative; the last one is +Inf) and their sum."""

    counts: tuple[int, ...]
    sum: float


@dataclass(frozen=True)
class Spec:
    """A metric's name, meaning, label names and (histograms) bucket bounds."""

    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.startswith(NAMESPACE) or not _NAME.match(self.name):
            raise ValueError(f"metric name {self.name!r}: not a ztsim_ Prometheus name")
        if (self.kind is Kind.COUNTER) != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only they, end in _total")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{self.name}: a label name twice")
        for label in self.labels:
            if not _LABEL.match(label) or label.startswith("__") or label in _RESERVED_LABELS:
                raise ValueError(f"{self.name}: label name {label!r} is not allowed")
        if self.kind is Kind.HISTOGRAM:
            bounds = self.buckets
            if not bounds or any(not math.isfinite(b) for b in bounds):
                raise ValueError(f"{self.name}: a histogram needs finite bucket bounds")
            if any(a >= b for a, b in pairwise(bounds)):
                raise ValueError(f"{self.name}: bucket bounds must increase")
        elif self.buckets:
            raise ValueError(f"{self.name}: only histograms have buckets")

    def _labels(self, values: Sequence[str]) -> Labels:
        if len(values) != len(self.labels) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{self.name}: label values must be {len(self.labels)} strings")
        return tuple(zip(self.labels, values, strict=True))

    def family(self, series: Iterable[tuple[Sequence[str], float]]) -> Family:
        """A counter's or a gauge's family: (label values, value) per series."""
        if self.kind is Kind.HISTOGRAM:
            raise ValueError(f"{self.name}: a histogram's series are HistogramValues")
        samples = tuple(Sample("", self._labels(v), float(x)) for v, x in series)
        return Family(self.name, self.kind, self.help, samples)

    def histogram(self, series: Iterable[tuple[Sequence[str], HistogramValue]]) -> Family:
        if self.kind is not Kind.HISTOGRAM:
            raise ValueError(f"{self.name}: not a histogram")
        samples: list[Sample] = []
        for values, value in series:
            labels = self._labels(values)
            if len(value.counts) != len(self.buckets) + 1:
                raise ValueError(f"{self.name}: one count per bucket and one for +Inf")
            total = 0
            for bound, count in zip((*self.buckets, math.inf), value.counts, strict=True):
                total += count
                samples.append(Sample("_bucket", (*labels, ("le", _le(bound))), float(total)))
            samples.append(Sample("_sum", labels, float(value.sum)))
            samples.append(Sample("_count", labels, float(total)))
        return Family(self.name, self.kind, self.help, tuple(samples))


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


class _Metric:
    """A declared metric: its series by label values, each updated under one lock."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[float]] = {}
        if not spec.labels:
            self._series[()] = self._zero()

    def _zero(self) -> list[float]:
        # A counter or gauge: [value]; a histogram: [count per bucket..., +Inf, sum].
        return [0.0] * (len(self.spec.buckets) + 2 if self.spec.buckets else 1)

    def _cell(self, values: tuple[str, ...]) -> list[float]:
        cell = self._series.get(values)
        if cell is None:
            self.spec._labels(values)
            cell = self._series.setdefault(values, self._zero())
        return cell

    def collect(self) -> Family:
        with self._lock:
            series = [(values, list(cell)) for values, cell in self._series.items()]
        if self.spec.kind is not Kind.HISTOGRAM:
            return self.spec.family((values, cell[0]) for values, cell in series)
        return self.spec.histogram(
            (values, HistogramValue(tuple(int(c) for c in cell[:-1]), cell[-1]))
            for values, cell in series
        )


class Counter(_Metric):
    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"{self.spec.name}: a counter only goes up")
        with self._lock:
            self._cell(labels)[0] += amount


class Gauge(_Metric):
    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._cell(labels)[0] = value

    def add(self, amount: float, *labels: str) -> None:
        with self._lock:
            self._cell(labels)[0] += amount


class Histogram(_Metric):
    def observe(self, value: float, *labels: str) -> None:
        # Prometheus buckets are upper bounds, inclusive: the first bound >= value.
        index = bisect_left(self.spec.buckets, value)
        with self._lock:
            cell = self._cell(labels)
            cell[index] += 1
            cell[-1] += value


Collector = Callable[[], Iterable[Family]]


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Collector] = []

    def _declare(self, metric: _Metric) -> None:
        if metric.spec.name in self._metrics:
            raise ValueError(f"{metric.spec.name} is declared twice")
        self._metrics[metric.spec.name] = metric

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        metric = Counter(Spec(name, help, Kind.COUNTER, labels))
        self._declare(metric)
        return metric

    def gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Gauge:
        metric = Gauge(Spec(name, help, Kind.GAUGE, labels))
        self._declare(metric)
        return metric

    def histogram(
        self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
    ) -> Histogram:
        metric = Histogram(Spec(name, help, Kind.HISTOGRAM, labels, buckets))
        self._declare(metric)
        return metric

    def register(self, collector: Collector) -> None:
        """`collector` is called at every scrape, on the scraping thread."""
        self._collectors.append(collector)

    def samples(self) -> tuple[Family, ...]:
        """Every family, declared ones first. Collectors may return the same family (the
        feed's lag, from each role of `ztsim up`): their series are put together."""
        families = [metric.collect() for metric in self._metrics.values()]
        for collector in self._collectors:
            families.extend(collector())
        return _combine(families)


def _combine(families: Iterable[Family]) -> tuple[Family, ...]:
    by_name: dict[str, Family] = {}
    for family in families:
        seen = by_name.get(family.name)
        if seen is None:
            by_name[family.name] = family
            continue
        if seen.kind is not family.kind or seen.help != family.help:
            raise ValueError(f"{family.name}: two different metrics under one name")
        by_name[family.name] = Family(
            seen.name, seen.kind, seen.help, seen.samples + family.samples
        )
    for family in by_name.values():
        keys = [(s.suffix, s.labels) for s in family.samples]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{family.name}: a series twice")
    return tuple(by_name.values())


def merge(processes: Mapping[str, Iterable[Family]]) -> tuple[Family, ...]:
    """The families of several processes of one role, by process name, as one process's:
    counters and histograms summed per series, gauges labelled with their process."""
    kinds: dict[str, tuple[Kind, str]] = {}
    values: dict[str, dict[tuple[str, Labels], float]] = {}
    for process, families in processes.items():
        for family in families:
            known = kinds.setdefault(family.name, (family.kind, family.help))
            if known != (family.kind, family.help):
                raise ValueError(f"{family.name}: processes disagree on what it is")
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                if family.kind is Kind.GAUGE:
                    key = (sample.suffix, (*sample.labels, (PROCESS_LABEL, process)))
                    series[key] = sample.value
                else:
                    key = (sample.suffix, sample.labels)
                    series[key] = series.get(key, 0.0) + sample.value
    return tuple(
        Family(
            name,
            kinds[name][0],
            kinds[name][1],
            tuple(Sample(suffix, labels, value) for (suffix, labels), value in series.items()),
        )
        for name, series in values.items()
    )
