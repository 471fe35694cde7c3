"""Conditions over a subject's facts: `device.managed and device.os_version >= "17.0"`,
`sim.swap_age < 24h`, `not sim.clone_suspected`.

A small language, parsed here and never handed to `eval`:

    expr := and ("or" and)*          and := unary ("and" unary)*
    unary := "not" unary | compare   compare := atom (op atom)?
    op := == | != | < | <= | > | >= | in
    atom := path | "string" | number | duration | true | false | ( expr ) | [ atom, ... ]
    path := device.<attribute> | sim.<signal> | identity.kind      duration := 90s 15m 24h 7d

Semantics: `device.<attribute>` reads the subject's posture report (missing: absent); a
bare path holds if its value is `true`. Two version-like strings ("17.0", "9.3.1") compare
as versions, numbers as numbers, other strings as text; a comparison of an absent value,
or of values of different types, does not hold. `sim.swap_age` is the time since the
last SIM swap or re-issue (forever if there was none); `sim.swap_recent` is true until
the end of the org's cooling-off after it (`SimSignals.swap_recent_until`). Whether a
condition holds can change with time alone (a swap ages, a cooling-off ends); `evaluate`
says until when its answer stands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ztsim.errors import InvalidInput
from ztsim.policy.evaluation import compiled, swap_durations
from ztsim.policy.facts import Scalar, Subject
from ztsim.policy.syntax import (
    IDENTITY_PATHS,
    SIM_PATHS,
    BoolOp,
    Compare,
    Literal,
    Node,
    Not,
    Outcome,
    Path,
)

MAX_LENGTH = 500
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"[^"\\]*")
    |(?P<duration>\d+(?:s|m|h|d)\b)
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<punct>[()\[\],])
    |(?P<word>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)
    )""",
    re.VERBOSE,
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


__all__ = [
    "MAX_LENGTH",
    "BoolOp",
    "Compare",
    "Condition",
    "Literal",
    "Node",
    "Not",
    "Outcome",
    "Path",
    "is_device_path",
    "is_sim_path",
    "parse",
]

_HOLDS, _FAILS = Outcome(True), Outcome(False)


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: `text` as written, `root` its tree, `paths` what it reads;
    compiled when made (see "evaluation" below), so evaluating walks no tree."""

    text: str
    root: Node
    paths: frozenset[str]
    _test: Callable[[Subject, datetime], bool] = field(init=False, repr=False, compare=False)
    _flips: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)
    _recent: bool = field(init=False, repr=False, compare=False)  # reads `sim.swap_recent`

    def __post_init__(self) -> None:
        object.__setattr__(self, "_test", compiled(self.root))
        object.__setattr__(self, "_flips", swap_durations(self.root))
        object.__setattr__(self, "_recent", "sim.swap_recent" in self.paths)

    def __reduce__(self) -> tuple[type[Condition], tuple[str, Node, frozenset[str]]]:
        return Condition, (self.text, self.root, self.paths)  # closures do not pickle

    def holds(self, subject: Subject, now: datetime) -> bool:
        """Whether it holds now (`evaluate` without the `until`)."""
        return self._test(subject, now)

    def evaluate(self, subject: Subject, now: datetime) -> Outcome:
        holds = self._test(subject, now)
        signals = subject.signals
        until: datetime | None = None
        swapped = signals.swapped_at
        if self._flips and swapped is not None:
            # The age only grows: each comparison with a duration changes its answer once,
            # when the age passes it; the earliest such instant still ahead is `until`.
            for duration in self._flips:
                instant = swapped + duration
                if instant > now:
                    until = instant
                    break
        if self._recent:
            # `sim.swap_recent` turns false once, when the cooling-off ends, then stays.
            ends = signals.swap_recent_until
            if ends is not None and ends > now and (until is None or ends < until):
                until = ends
        if until is not None:
            return Outcome(holds, until)
        return _HOLDS if holds else _FAILS


def parse(text: str, *, allowed: Callable[[str], bool] | None = None) -> Condition:
    """A condition from its text; InvalidInput says where it is wrong. `allowed` limits
    the paths it may read (e.g. a SIM condition may not read the device's posture)."""
    if not text.strip() or len(text) > MAX_LENGTH:
        raise InvalidInput(f"a condition is 1 to {MAX_LENGTH} characters")
    parser = _Parser(text)
    root = parser.expression()
    parser.end()
    paths = frozenset(parser.paths)
    for path in sorted(paths):
        if allowed is not None and not allowed(path):
            raise InvalidInput(f"condition {text!r}: {path} cannot be used here")
    return Condition(text.strip(), root, paths)


def is_device_path(path: str) -> bool:
    return path.startswith("device.")


def is_sim_path(path: str) -> bool:
    return path in SIM_PATHS or path in IDENTITY_PATHS


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        self.paths: set[str] = set()
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                # Point at the offending character, not at the blanks before it.
                column = len(text) - len(text[position:].lstrip()) + 1
                raise InvalidInput(f"condition {text!r}: unexpected text at column {column}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0

    def _fail(self, what: str) -> InvalidInput:
        if self.index < len(self.tokens):
            column = self.tokens[self.index][2] + 1
            return InvalidInput(f"condition {self.text!r}: {what} at column {column}")
        return InvalidInput(f"condition {self.text!r}: {what} at the end")

    def _peek(self) -> tuple[str, str] | None:
        if self.index < len(self.tokens):
            kind, value, _ = self.tokens[self.index]
            return kind, value
        return None

    def _take(self, value: str) -> bool:
        found = self._peek()
        if found is not None and found[1] == value and found[0] in ("word", "op", "punct"):
            self.index += 1
            return True
        return False

    def end(self) -> None:
        if self.index != len(self.tokens):
            raise self._fail("unexpected token")

    def expression(self) -> Node:
        terms = [self._and()]
        while self._take("or"):
            terms.append(self._and())
        return terms[0] if len(terms) == 1 else BoolOp("or", tuple(terms))

    def _and(self) -> Node:
        terms = [self._unary()]
        while self._take("and"):
            terms.append(self._unary())
        return terms[0] if len(terms) == 1 else BoolOp("and", tuple(terms))

    def _unary(self) -> Node:
        if self._take("not"):
            return Not(self._unary())
        left = self._atom()
        found = self._peek()
        if found is not None and (found[0] == "op" or found == ("word", "in")):
            self.index += 1
            right = self._atom()
            if found[1] == "in" and not (
                isinstance(right, Literal) and isinstance(right.value, tuple)
            ):
                raise self._fail('`in` takes a list: ["a", "b"]')
            return Compare(found[1], left, right)
        return left

    def _atom(self) -> Node:
        found = self._peek()
        if found is None:
            raise self._fail("a value is missing")
        kind, value = found
        if kind == "punct" and value == "(":
            self.index += 1
            inner = self.expression()
            if not self._take(")"):
                raise self._fail("`)` expected")
            return inner
        if kind == "punct" and value == "[":
            self.index += 1
            items: list[Scalar] = []
            while not self._take("]"):
                if items and not self._take(","):
                    raise self._fail("`,` or `]` expected")
                start = self.index
                item = self._atom()
                if not isinstance(item, Literal) or isinstance(item.value, tuple | timedelta):
                    self.index = start  # the error names the item, not what follows it
                    raise self._fail("a list holds strings, numbers or true/false")
                items.append(item.value)
            return Literal(tuple(items))
        self.index += 1
        if kind == "string":
            return Literal(value[1:-1])
        if kind == "duration":
            return Literal(timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]]))
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "word" and value in ("true", "false"):
            return Literal(value == "true")
        if kind == "word" and "." in value and value.split(".")[0] in ("device", "sim", "identity"):
            if value.startswith(("sim.", "identity.")) and not is_sim_path(value):
                self.index -= 1
                raise self._fail(f"no such fact {value}")
            self.paths.add(value)
            return Path(value)
        self.index -= 1
        raise self._fail(f"unexpected {value!r}")
