"""A vendor file's header: which column holds what. Pure.

Vendors name columns differently (`Ki` or `K`, `OPc`/`OP_C`, `MSISDN`/`Mobile`...); names
are compared case-insensitively with spaces, `_`, `-` and `.` removed. A header that lacks
a required column is answered with the headers found and the names accepted for it, so
the operator can rename one column instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Column aliases as vendors write them, in their compared form.
ALIASES: dict[str, tuple[str, ...]] = {
    "iccid": ("iccid", "icc", "iccidnumber", "simiccid", "iccidno"),
    "imsi": ("imsi", "imsinumber"),
    "k": ("ki", "k", "key", "kikey"),
    "opc": ("opc", "opcvalue"),
    "op": ("op", "opvalue"),
    "msisdn": ("msisdn", "mobile", "phone", "phonenumber", "mobilenumber"),
    "pin": ("pin", "pin1"),
    "puk": ("puk", "puk1"),
}
LABELS = {"iccid": "ICCID", "imsi": "IMSI", "k": "K", "opc": "OPc", "op": "OP"}
LABELS |= {"msisdn": "MSISDN", "pin": "PIN", "puk": "PUK"}
_SHOWN_HEADERS = 20  # a file with a thousand junk columns gets a readable message
_SHOWN_CHARS = 40
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in aliases}


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    field: str
    message: str


def joined(words: list[str]) -> str:
    """'ICCID', 'ICCID and IMSI', 'ICCID, IMSI and MSISDN'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def canonical(header: str) -> str:
    return re.sub(r"[\s_\-.]", "", header.strip().lower())


def _found(headers: list[str]) -> str:
    shown = [h.strip() for h in headers if h.strip()][:_SHOWN_HEADERS]
    quoted = [f'"{h[:_SHOWN_CHARS]}..."' if len(h) > _SHOWN_CHARS else f'"{h}"' for h in shown]
    rest = len([h for h in headers if h.strip()]) - len(shown)
    listed = ", ".join(quoted) + (f" and {rest} more" if rest > 0 else "")
    return f"the header has {listed}" if listed else "the header is empty"


def _accepted(name: str) -> str:
    return f"{LABELS[name]} is accepted as {', '.join(ALIASES[name])}"


def _missing(name: str, headers: list[str], *, also: str = "") -> HeaderProblem:
    accepted = _accepted(name) + (f"; {_accepted(also)}" if also else "")
    label = LABELS[name] + (f" (or {LABELS[also]})" if also else "")
    return HeaderProblem(
        name,
        f"missing column {label}: {_found(headers)}; {accepted} "
        "(any case; spaces, '_', '-' and '.' ignored)",
    )


def map_headers(headers: list[str]) -> tuple[dict[str, int], list[HeaderProblem], list[str]]:
    """Column index per field, the header's problems, and the columns nobody reads."""
    found: dict[str, int] = {}
    problems: list[HeaderProblem] = []
    ignored: list[str] = []
    for index, header in enumerate(headers):
        name = _LOOKUP.get(canonical(header))
        if name is None:
            ignored.append(header.strip())
        elif name in found:
            problems.append(HeaderProblem(name, f"column {LABELS[name]} appears twice"))
        else:
            found[name] = index
    for required in ("iccid", "imsi", "k"):
        if required not in found:
            problems.append(_missing(required, headers))
    if "opc" in found and "op" in found:
        problems.append(HeaderProblem("opc", "give OPc or OP, not both"))
    elif "opc" not in found and "op" not in found:
        problems.append(_missing("opc", headers, also="op"))
    return found, problems, ignored
