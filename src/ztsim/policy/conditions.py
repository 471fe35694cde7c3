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
last SIM swap or re-issue (forever if there was none). Whether a condition holds can
change with time alone (a swap ages); `evaluate` says until when its answer stands.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ztsim.errors import InvalidInput
from ztsim.policy.facts import Scalar, Subject

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
_VERSION = re.compile(r"\d+(?:\.\d+)*")
SIM_PATHS = frozenset({"sim.swap_age", "sim.imei_mismatch", "sim.clone_suspected", "sim.kind"})
IDENTITY_PATHS = frozenset({"identity.kind"})
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether a condition holds now, and the instant before which that cannot change
    (None: only a change of facts can change it)."""

    holds: bool
    until: datetime | None = None


# -- the syntax tree: small immutable nodes ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar | tuple[Scalar, ...] | timedelta


@dataclass(frozen=True, slots=True)
class Path:
    name: str  # "device.managed", "sim.swap_age", "identity.kind"


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


Node = Literal | Path | Compare | BoolOp | Not


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: `text` as written, `root` its tree, `paths` what it reads."""

    text: str
    root: Node
    paths: frozenset[str]

    def evaluate(self, subject: Subject, now: datetime) -> Outcome:
        value, until = _eval(self.root, subject, now)
        return Outcome(value is True, until)


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


# -- evaluation --------------------------------------------------------------------------

_Value = Scalar | tuple[Scalar, ...] | timedelta | None
_FOREVER = timedelta.max


def _read(path: str, subject: Subject, now: datetime) -> tuple[_Value, datetime | None]:
    if path.startswith("device."):
        posture = subject.posture
        return (None if posture is None else posture.attributes.get(path[7:])), None
    signals = subject.signals
    if path == "sim.swap_age":
        if signals.swapped_at is None:
            return _FOREVER, None
        return max(now - signals.swapped_at, timedelta(0)), None
    if path == "sim.imei_mismatch":
        return signals.imei_mismatch, None
    if path == "sim.clone_suspected":
        return signals.clone_suspected, None
    if path == "sim.kind":
        return (None if subject.sim_kind is None else subject.sim_kind.value), None
    return (None if subject.identity_kind is None else subject.identity_kind.value), None


@functools.lru_cache(maxsize=4096)  # a fleet reports a few dozen OS versions, over and over
def _version(value: str) -> tuple[int, ...] | None:
    if not _VERSION.fullmatch(value):
        return None
    parts = [int(p) for p in value.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _compare(op: str, left: _Value, right: _Value) -> bool:
    if left is None or right is None:
        return False
    if op == "in":
        return isinstance(right, tuple) and not isinstance(left, tuple) and left in right
    a: object = left
    b: object = right
    if isinstance(a, str) and isinstance(b, str):
        va, vb = _version(a), _version(b)
        if va is not None and vb is not None:
            a, b = va, vb
    elif isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)):
            return False
    elif isinstance(a, int | float) and isinstance(b, int | float):
        if not (math.isfinite(a) and math.isfinite(b)):
            return False
    elif type(a) is not type(b):
        return False
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if isinstance(a, bool):
        return False  # true < false means nothing
    try:
        return bool(
            {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]  # type: ignore[operator]
        )
    except TypeError:
        return False


def _flip(op: str, left: Node, right: Node, subject: Subject, now: datetime) -> datetime | None:
    """When a comparison of the swap's age with a duration changes its answer by itself."""
    swapped = subject.signals.swapped_at
    if swapped is None:
        return None
    pairs = ((left, right, op), (right, left, {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op)))
    for path, literal, normal in pairs:
        if (
            isinstance(path, Path)
            and path.name == "sim.swap_age"
            and isinstance(literal, Literal)
            and isinstance(literal.value, timedelta)
            and normal in ("<", "<=", ">", ">=", "==", "!=")
        ):
            # The age only grows: the answer changes once, when age passes the duration.
            instant = swapped + literal.value
            return instant if instant > now else None
    return None


def _eval(node: Node, subject: Subject, now: datetime) -> tuple[_Value, datetime | None]:
    if isinstance(node, Literal):
        return node.value, None
    if isinstance(node, Path):
        return _read(node.name, subject, now)
    if isinstance(node, Not):
        value, flips = _eval(node.term, subject, now)
        return value is not True, flips
    if isinstance(node, BoolOp):
        until: datetime | None = None
        outcomes = []
        for term in node.terms:
            value, term_until = _eval(term, subject, now)
            until = _earliest(until, term_until)
            outcomes.append(value is True)
        return (all(outcomes) if node.op == "and" else any(outcomes)), until
    left, _ = _eval(node.left, subject, now)
    right, _ = _eval(node.right, subject, now)
    return _compare(node.op, left, right), _flip(node.op, node.left, node.right, subject, now)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
