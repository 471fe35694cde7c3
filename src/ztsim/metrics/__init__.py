"""Prometheus metrics without a client library: metrics and collectors (`registry`), the
text format (`exposition`) and a small scrape endpoint (`listener`)."""

from ztsim.metrics.exposition import CONTENT_TYPE, render
from ztsim.metrics.registry import (
    Family,
    HistogramValue,
    Kind,
    Registry,
    Sample,
    Spec,
    merge,
)

__all__ = [
    "CONTENT_TYPE",
    "Family",
    "HistogramValue",
    "Kind",
    "Registry",
    "Sample",
    "Spec",
    "merge",
    "render",
]
