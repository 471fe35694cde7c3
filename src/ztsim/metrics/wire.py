"""Families across a process boundary (a DNS worker to its parent, which serves the host's
metrics): JSON, not pickle, so a worker that parses untrusted packets cannot hand its
parent anything but numbers and names. What does not decode, or names a metric outside
the `ztsim_` namespace, is refused with ValueError.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ztsim.metrics.registry import NAMESPACE, Family, Kind, Sample

MAX_FAMILIES = 256
MAX_SAMPLES = 4096  # per family
_KINDS = frozenset(k.value for k in Kind)


def encode(families: tuple[Family, ...] | list[Family]) -> bytes:
    return json.dumps(
        [
            [f.name, f.kind.value, f.help, [[s.suffix, s.labels, s.value] for s in f.samples]]
            for f in families
        ],
        separators=(",", ":"),
    ).encode()


def decode(data: bytes) -> tuple[Family, ...]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("metrics: not JSON") from exc
    if not isinstance(raw, list) or len(raw) > MAX_FAMILIES:
        raise ValueError("metrics: not a list of families")
    return tuple(_family(item) for item in raw)


def _family(item: Any) -> Family:
    if not (isinstance(item, list) and len(item) == 4):
        raise ValueError("metrics: a family is [name, kind, help, samples]")
    name, kind, help_, samples = item
    if not (isinstance(name, str) and name.startswith(NAMESPACE) and isinstance(help_, str)):
        raise ValueError("metrics: a family's name or help")
    if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
        raise ValueError(f"metrics: {name}'s samples")
    if kind not in _KINDS:
        raise ValueError(f"metrics: {name}'s kind")
    return Family(name, Kind(kind), help_, tuple(_sample(name, s) for s in samples))


def _sample(name: str, item: Any) -> Sample:
    if not (isinstance(item, list) and len(item) == 3):
        raise ValueError(f"metrics: a sample of {name}")
    suffix, labels, value = item
    if suffix not in ("", "_bucket", "_sum", "_count") or not isinstance(labels, list):
        raise ValueError(f"metrics: a sample of {name}")
    pairs = []
    for pair in labels:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise ValueError(f"metrics: a label of {name}")
        pairs.append((pair[0], pair[1]))
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"metrics: a value of {name}")
    return Sample(suffix, tuple(pairs), float(value))
