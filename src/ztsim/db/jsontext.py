"""JSON text as the database columns take it, built without `json.dumps`' per-call cost.

`json.dumps` builds its C encoder anew on every call. Built once, the same encoder (the
arguments `json.dumps` passes by default, less the cycle check: these payloads are flat
and built here; a cycle ends in RecursionError) writes the same text twice as fast; the
hot paths write a payload per record. Without the C accelerator it is `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    default = json.JSONEncoder().default
    encode = make(
        None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


json_text: Callable[[Any], str] = _encoder()
"""`json.dumps(value)`'s text, for dicts, lists and scalars."""
