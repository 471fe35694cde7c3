"""A strict reader of the Prometheus text format 0.0.4, written from the format's
description (not from ztsim's writer), for checking what the metrics endpoints serve.

Every line must be a HELP, a TYPE, or a sample of the family announced last; label
values are unescaped (\\\\, \\", \\n); anything else fails the test.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_HELP = re.compile(rf"# HELP ({_NAME}) (.*)\Z")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)\Z")
_SAMPLE = re.compile(rf"({_NAME})(\{{.*\}})? (\S+)\Z")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


@dataclass
class Scrape:
    helps: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    # (sample name, sorted label pairs) -> value
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.values[(name, tuple(sorted(labels.items())))]

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in self.values.items() if n == name}


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\\"n])", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    inner, pairs, at = text[1:-1], [], 0
    while at < len(inner):
        match = _PAIR.match(inner, at)
        assert match is not None, f"bad labels: {text!r}"
        pairs.append((match.group(1), _unescape(match.group(2))))
        at = match.end()
    names = [n for n, _ in pairs]
    assert len(set(names)) == len(names), f"a label twice: {text!r}"
    return tuple(sorted(pairs))


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf"))
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?", text), f"bad value {text!r}"
    return float(text)


def parse(text: str) -> Scrape:
    scrape = Scrape()
    assert text == "" or text.endswith("\n"), "the last line must end with a line feed"
    family = None
    # Lines end in a line feed only (other Unicode breaks may sit inside label values).
    for line in text.split("\n")[:-1]:
        if help_line := _HELP.match(line):
            family = help_line.group(1)
            assert family not in scrape.helps, f"{family} described twice"
            scrape.helps[family] = help_line.group(2).replace("\\n", "\n").replace("\\\\", "\\")
            continue
        if type_line := _TYPE.match(line):
            assert type_line.group(1) == family, "TYPE must follow its family's HELP here"
            scrape.types[family] = type_line.group(2)
            continue
        sample = _SAMPLE.match(line)
        assert sample is not None, f"not a sample line: {line!r}"
        name = sample.group(1)
        assert family is not None, f"{name} before any HELP"
        assert family in scrape.types, f"{name} before its TYPE"
        suffixes = _SUFFIXES.get(scrape.types[family], ("",))
        assert any(name == family + s for s in suffixes), f"{name} outside family {family}"
        key = (name, _labels(sample.group(2) or "{}"))
        assert key not in scrape.values, f"series twice: {key}"
        scrape.values[key] = _value(sample.group(3))
    _check_histograms(scrape)
    return scrape


def _check_histograms(scrape: Scrape) -> None:
    """Buckets cumulative, ending in +Inf, which equals _count."""
    for family, kind in scrape.types.items():
        if kind != "histogram":
            continue
        groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        for labels, value in scrape.series(family + "_bucket").items():
            le = dict(labels)["le"]
            rest = tuple(p for p in labels if p[0] != "le")
            groups.setdefault(rest, []).append((_value(le), value))
        for rest, buckets in groups.items():
            buckets.sort()
            assert buckets[-1][0] == math.inf, f"{family}: no +Inf bucket"
            counts = [count for _, count in buckets]
            assert counts == sorted(counts), f"{family}: buckets not cumulative"
            assert scrape.values[(family + "_count", rest)] == counts[-1]
            assert (family + "_sum", rest) in scrape.values
