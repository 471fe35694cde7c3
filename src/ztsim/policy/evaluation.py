"""Conditions compiled once into closures: what a gateway's load runs a million times.

The semantics are `conditions`' (its docstring); this module only makes them fast. A
gateway's load evaluates a handful of conditions for a million subjects: the tree is
turned, once, into nested closures specialised by node, path and literal type, so that
evaluating does no dispatch on node types and parses no literal (a literal version is
parsed here). Anything a specialised closure does not expect goes to `_compare`, the
plain rules, so the answer is the same either way.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ztsim.policy.facts import IdentityKind, Scalar, SimKind, Subject
from ztsim.policy.syntax import BoolOp, Compare, Literal, Node, Not, Path

_Value = Scalar | tuple[Scalar, ...] | timedelta | None
_Read = Callable[[Subject, datetime], _Value]  # a node's value
_Test = Callable[[Subject, datetime], bool]  # whether a node's value is `true`
_FOREVER = timedelta.max
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_ZERO = timedelta(0)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# `literal op x` is `x mirror(op) literal` for every type a fast path compares.
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
# Kinds as the language reads them: plain text, not the enum (whose `.value` is slow).
_SIM_KINDS: dict[SimKind | None, str | None] = {None: None, **{k: k.value for k in SimKind}}
_IDENTITY_KINDS: dict[IdentityKind | None, str | None] = {
    None: None,
    **{k: k.value for k in IdentityKind},
}


@functools.lru_cache(maxsize=4096)  # a fleet reports a few dozen OS versions, over and over
def _version(value: str) -> tuple[int, ...] | None:
    if not _VERSION.fullmatch(value):
        return None
    parts = [int(p) for p in value.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _finite(value: int | float) -> bool:
    # An int is finite however large (math.isfinite would overflow converting it).
    return isinstance(value, int) or math.isfinite(value)


def _compare(op: str, left: _Value, right: _Value) -> bool:
    """The plain rules of a comparison, for any two values."""
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
        if not (_finite(a) and _finite(b)):
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
        return bool(_OPS[op](a, b))
    except (TypeError, KeyError):
        return False


def _constant(value: bool) -> _Test:
    return lambda subject, now: value


def _swap_age(subject: Subject, now: datetime) -> _Value:
    swapped = subject.signals.swapped_at
    if swapped is None:
        return _FOREVER
    age = now - swapped
    return age if age > _ZERO else _ZERO  # a swap reported ahead of our clock: just now


def _swap_recent(subject: Subject, now: datetime) -> _Value:
    ends = subject.signals.swap_recent_until
    return ends is not None and now < ends


def _reader(name: str) -> _Read:
    if name.startswith("device."):
        key = name[7:]

        def device(subject: Subject, now: datetime) -> _Value:
            posture = subject.posture
            return None if posture is None else posture.attributes.get(key)

        return device
    if name == "sim.swap_age":
        return _swap_age
    if name == "sim.swap_recent":
        return _swap_recent
    if name == "sim.imei_mismatch":
        return lambda subject, now: subject.signals.imei_mismatch
    if name == "sim.clone_suspected":
        return lambda subject, now: subject.signals.clone_suspected
    if name == "sim.kind":
        return lambda subject, now: _SIM_KINDS[subject.sim_kind]
    return lambda subject, now: _IDENTITY_KINDS[subject.identity_kind]


def _value(node: Node) -> _Read:
    """A node's value: a literal's, a fact's, or (any other node) whether it holds."""
    if isinstance(node, Literal):
        value = node.value
        return lambda subject, now: value
    if isinstance(node, Path):
        return _reader(node.name)
    return compiled(node)


def compiled(node: Node) -> _Test:
    """Whether a node's value is `true`."""
    if isinstance(node, Literal):
        return _constant(node.value is True)
    if isinstance(node, Path):
        if node.name.startswith("device."):
            key = node.name[7:]

            def flag(subject: Subject, now: datetime) -> bool:
                posture = subject.posture
                return posture is not None and posture.attributes.get(key) is True

            return flag
        read = _reader(node.name)
        return lambda subject, now: read(subject, now) is True
    if isinstance(node, Not):
        term = compiled(node.term)
        return lambda subject, now: not term(subject, now)
    if isinstance(node, BoolOp):
        return _bool_op(node.op, tuple(compiled(t) for t in node.terms))
    return _comparison(node)


def _bool_op(op: str, terms: tuple[_Test, ...]) -> _Test:
    if len(terms) == 2:  # the common case, without a generator
        a, b = terms
        if op == "and":
            return lambda subject, now: a(subject, now) and b(subject, now)
        return lambda subject, now: a(subject, now) or b(subject, now)
    if op == "and":
        return lambda subject, now: all(t(subject, now) for t in terms)
    return lambda subject, now: any(t(subject, now) for t in terms)


def _comparison(node: Compare) -> _Test:
    op, left, right = node.op, node.left, node.right
    if isinstance(left, Literal) and isinstance(right, Literal):
        return _constant(_compare(op, left.value, right.value))
    if isinstance(right, Literal):
        return _against(op, _value(left), right.value, mirrored=False)
    if isinstance(left, Literal):
        return _against(op, _value(right), left.value, mirrored=True)
    a, b = _value(left), _value(right)
    return lambda subject, now: _compare(op, a(subject, now), b(subject, now))


def _against(op: str, read: _Read, literal: _Value, *, mirrored: bool) -> _Test:
    """`read op literal` (or `literal op read` if mirrored), fast for the value types the
    literal can meet in the same type."""
    if mirrored:

        def plain(x: _Value) -> bool:
            return _compare(op, literal, x)
    else:

        def plain(x: _Value) -> bool:
            return _compare(op, x, literal)

    def general(subject: Subject, now: datetime) -> bool:
        return plain(read(subject, now))

    if op == "in":
        if mirrored or not isinstance(literal, tuple):
            return general
        items = literal

        def member(subject: Subject, now: datetime) -> bool:
            x = read(subject, now)
            return x is not None and not isinstance(x, tuple) and x in items

        return member
    if op not in _OPS:
        return general
    fn = _OPS[_MIRROR[op] if mirrored else op]
    kind = type(literal)
    if kind is str:
        return _against_text(fn, read, literal, plain)  # type: ignore[arg-type]
    if kind is bool and op in ("==", "!="):
        same: type = bool
    elif (kind is int or kind is float) and _finite(literal):  # type: ignore[arg-type]
        return _against_number(fn, read, literal, plain)  # type: ignore[arg-type]
    elif kind is timedelta:
        same = timedelta
    else:
        return general

    def typed(subject: Subject, now: datetime) -> bool:
        x = read(subject, now)
        if type(x) is same:
            return fn(x, literal)
        return False if x is None else plain(x)

    return typed


def _against_text(
    fn: Callable[[Any, Any], bool], read: _Read, literal: str, plain: Callable[[_Value], bool]
) -> _Test:
    version = _version(literal)  # parsed once, here

    def text(subject: Subject, now: datetime) -> bool:
        x = read(subject, now)
        if type(x) is str:
            if version is not None:
                other = _version(x)
                if other is not None:
                    return fn(other, version)
            return fn(x, literal)
        return False if x is None else plain(x)

    return text


def _against_number(
    fn: Callable[[Any, Any], bool],
    read: _Read,
    literal: int | float,
    plain: Callable[[_Value], bool],
) -> _Test:
    def number(subject: Subject, now: datetime) -> bool:
        x = read(subject, now)
        kind = type(x)
        if kind is int:
            return fn(x, literal)
        if kind is float:
            return math.isfinite(x) and fn(x, literal)  # type: ignore[arg-type]
        return False if x is None else plain(x)

    return number


def swap_durations(node: Node) -> tuple[timedelta, ...]:
    """The durations the swap's age is compared with, shortest first: where the age
    passes one of them the condition may change (inside an operand too, as in
    `(sim.swap_age < 2h) == false`)."""
    if isinstance(node, Not):
        return swap_durations(node.term)
    if isinstance(node, BoolOp):
        return tuple(sorted({d for term in node.terms for d in swap_durations(term)}))
    if not isinstance(node, Compare):
        return ()
    for path, literal, op in (
        (node.left, node.right, node.op),
        (node.right, node.left, _MIRROR.get(node.op) if node.op not in ("==", "!=") else None),
    ):
        if (
            isinstance(path, Path)
            and path.name == "sim.swap_age"
            and isinstance(literal, Literal)
            and isinstance(literal.value, timedelta)
            and op in _OPS
        ):
            return (literal.value,)
    return tuple(sorted({*swap_durations(node.left), *swap_durations(node.right)}))
