"""The Prometheus text exposition format, version 0.0.4.

Per family: `# HELP name text` (backslash and line feed escaped), `# TYPE name kind`,
then one line per sample: `name{label="value",...} value`, with backslash, double quote
and line feed escaped in label values. Histograms are written as their `_bucket`
(cumulative, `le` ending in "+Inf"), `_sum` and `_count` samples (see `registry`).
Values are Go-style floats: integers without a fraction, "+Inf", "-Inf", "NaN".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ztsim.metrics.registry import Family, Labels

# The media type of the format (Prometheus' exposition formats, "Text-based format").
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", '"': '\\"'})
_EXACT = 2**53  # floats above it are no longer every integer: written as floats


def escape_help(text: str) -> str:
    return text.translate(_HELP_ESCAPES)


def escape_label_value(text: str) -> str:
    return text.translate(_LABEL_ESCAPES)


def format_value(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < _EXACT:
        return str(int(value))
    return repr(value)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in labels)
    return "{" + inner + "}"


def render(families: Iterable[Family]) -> bytes:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind.value}")
        for sample in family.samples:
            name = family.name + sample.suffix
            lines.append(f"{name}{_labels(sample.labels)} {format_value(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""
