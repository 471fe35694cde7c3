"""The published test vectors the repository carries (`tests/vectors/`, sources named there)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"


@cache
def aka_vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS_DIR / "aka.json").read_text())
    return loaded
