"""Families across a process boundary: JSON both ways, and anything else refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.metrics.registry import HistogramValue, Kind, Spec
from ztsim.metrics.wire import decode, encode

QUERIES = Spec("ztsim_test_queries_total", "Queries.", Kind.COUNTER, ("transport",))
LAG = Spec("ztsim_test_lag_seconds", "Lag.", Kind.GAUGE)
TIMES = Spec("ztsim_test_seconds", "Times.", Kind.HISTOGRAM, buckets=(0.1, 1.0))


def test_families_cross_whole() -> None:
    families = (
        QUERIES.family([(("udp",), 12), (("tcp",), 3)]),
        LAG.family([((), 0.25)]),
        TIMES.histogram([((), HistogramValue((1, 2, 0), 1.5))]),
    )
    assert decode(encode(families)) == families


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"not json",
        b"{}",
        json.dumps([["ztsim_x_total", "counter", "h"]]).encode(),
        json.dumps([["other_x_total", "counter", "h", []]]).encode(),  # not ours
        json.dumps([["ztsim_x_total", "summary", "h", []]]).encode(),
        json.dumps([["ztsim_x_total", "counter", "h", [["_x", [], 1]]]]).encode(),
        json.dumps([["ztsim_x_total", "counter", "h", [["", [["a"]], 1]]]]).encode(),
        json.dumps([["ztsim_x_total", "counter", "h", [["", [], "1"]]]]).encode(),
        json.dumps([["ztsim_x_total", "counter", "h", [["", [], True]]]]).encode(),
        b'[["ztsim_x_total", "counter", "h", [["", [], NaN]]]]',
        json.dumps([["ztsim_x_total", "counter", "h", []]] * 257).encode(),
    ],
)
def test_what_is_not_families_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="metrics"):
        decode(data)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_decoding_anything_gives_families_or_value_error(data: bytes) -> None:
    try:
        families = decode(data)
    except ValueError:
        return
    assert all(f.name.startswith("ztsim_") for f in families)
