"""The condition language: grammar, how values compare, errors with columns, and `until`."""

from __future__ import annotations

import math
import pickle
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.policy.conditions import (
    MAX_LENGTH,
    BoolOp,
    Compare,
    Literal,
    Node,
    Not,
    Outcome,
    Path,
    is_device_path,
    is_sim_path,
    parse,
)
from ztsim.policy.facts import IdentityKind, Posture, SimKind, SimSignals, Subject

from tests_clock import NOW

DEVICE = Posture(
    {
        "managed": True,
        "jailbroken": False,
        "os": "ios",
        "os_version": "17.2",
        "score": 7,
        "ratio": 0.5,
        "label": "true",
    },
    NOW,
)
WHO = Subject("o", "alice", IdentityKind.USER, sim_kind=SimKind.ESIM, posture=DEVICE)


def holds(text: str, who: Subject = WHO) -> bool:
    return parse(text).evaluate(who, NOW).holds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device.managed", True),
        ("device.jailbroken", False),
        ("device.os", False),  # a bare path holds only if it is true, not merely set
        ("device.label", False),  # nor if it is the string "true"
        ("device.absent", False),
        ("not device.absent", True),
        ("not not device.managed", True),
        ("device.managed and device.jailbroken", False),
        ("device.managed or device.jailbroken", True),
        ("device.jailbroken or device.managed and device.absent", False),  # and binds tighter
        ("(device.jailbroken or device.managed) and not device.absent", True),
        ('device.os in ["ios", "ipados"]', True),
        ('device.os in ["android"]', False),
        ("device.score in [1, 7]", True),
        ("device.os_version in []", False),
        ("device.managed == true", True),
        ("device.jailbroken != true", True),
        ('identity.kind == "user"', True),
        ('sim.kind == "esim"', True),
        ("sim.imei_mismatch", False),
        ("not sim.clone_suspected", True),
        ("true", True),
        ("false or 1 == 1", True),
    ],
)
def test_grammar(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('device.os_version >= "17.0"', True),
        ('device.os_version >= "17"', True),
        ('device.os_version == "17.2.0"', True),  # trailing zeros do not count
        ('device.os_version < "17.10"', True),  # versions, not text: 2 < 10
        ('device.os_version > "9.3.1"', True),
        ('"17.2" <= device.os_version', True),
        ('device.os_version > "17.2"', False),
        ('device.os < "zz"', True),  # not versions: compared as text
        ('device.os > "ios"', False),
        ("device.score > 6", True),
        ("device.score >= 7.0", True),  # ints and floats compare as numbers
        ("device.ratio < 1", True),
        ("device.score == -7", False),
    ],
)
def test_versions_numbers_and_text_compare_as_such(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        'device.score == "7"',  # a number is not a string
        "device.managed == 1",  # nor is true a number
        "device.managed > false",  # true and false have no order
        'device.absent != "x"',  # an absent value compares with nothing, even by !=
        "device.absent == device.absent",
        "device.os == 24h",
        "sim.swap_age < 5",  # a duration is not a number
        "device.os_version > 16",
    ],
)
def test_comparisons_across_types_or_with_absent_values_do_not_hold(text: str) -> None:
    assert holds(text) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1 to 500"),
        ("   ", "1 to 500"),
        ("x" * (MAX_LENGTH + 1), "1 to 500"),
        ("device.managed and", "a value is missing at the end"),
        ("device.managed && device.x", "unexpected text at column 16"),
        ("device.managed device.x", "unexpected token at column 16"),
        ("sim.swapped", "no such fact sim.swapped at column 1"),
        ("not sim.swap_recently", "no such fact sim.swap_recently at column 5"),
        ("sim.swap_recent <", "a value is missing at the end"),
        ("not identity.name", "no such fact identity.name at column 5"),
        ('device.os in "ios"', "`in` takes a list"),
        ("(device.managed", "`)` expected at the end"),
        ('device.os in ["a" "b"]', "`,` or `]` expected at column 19"),
        ("device.os in [device.x]", "a list holds strings, numbers or true/false at column 15"),
        ("device.os in [24h]", "a list holds strings, numbers or true/false"),
        ("managed", "unexpected 'managed' at column 1"),
        ("device.os == 'ios'", "unexpected text at column 14"),
    ],
)
def test_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse(text)


def test_allowed_limits_what_a_condition_may_read() -> None:
    assert parse("device.managed", allowed=is_device_path).paths == {"device.managed"}
    with pytest.raises(InvalidInput, match=r"sim\.swap_age cannot be used here"):
        parse("device.managed and sim.swap_age < 1h", allowed=is_device_path)
    with pytest.raises(InvalidInput, match=r"sim\.swap_recent cannot be used here"):
        parse("device.managed and not sim.swap_recent", allowed=is_device_path)
    assert parse("not sim.swap_recent", allowed=is_sim_path).paths == {"sim.swap_recent"}
    with pytest.raises(InvalidInput, match=r"device\.managed cannot be used here"):
        parse("device.managed", allowed=is_sim_path)
    parsed = parse('  identity.kind == "service" or sim.imei_mismatch ', allowed=is_sim_path)
    assert parsed.text == 'identity.kind == "service" or sim.imei_mismatch'
    assert parsed.paths == {"identity.kind", "sim.imei_mismatch"}


def _swapped(ago: timedelta | None) -> Subject:
    return Subject("o", signals=SimSignals(swapped_at=None if ago is None else NOW - ago))


def test_a_sim_reissued_an_hour_ago_matches_a_recent_swap() -> None:
    recent = parse("sim.swap_age < 24h")
    outcome = recent.evaluate(_swapped(timedelta(hours=1)), NOW)
    assert outcome.holds
    assert outcome.until == NOW + timedelta(hours=23)  # when the swap stops being recent
    later = recent.evaluate(_swapped(timedelta(hours=1)), NOW + timedelta(hours=23))
    assert not later.holds
    assert later.until is None  # it only gets older


def test_swap_age_until_for_every_comparison_and_no_swap() -> None:
    who = _swapped(timedelta(hours=1))
    for text, holds_now in [
        ("sim.swap_age > 2h", False),
        ("sim.swap_age >= 2h", False),
        ("sim.swap_age <= 2h", True),
        ("2h > sim.swap_age", True),  # written the other way round
        ("sim.swap_age != 2h", True),
        ("not sim.swap_age < 2h", False),
        ("sim.swap_age < 2h or sim.swap_age > 3d", True),
    ]:
        outcome = parse(text).evaluate(who, NOW)
        assert outcome.holds is holds_now, text
        assert outcome.until == NOW + timedelta(hours=1), text
    never = parse("sim.swap_age < 24h").evaluate(_swapped(None), NOW)
    assert never == parse("sim.swap_age < 24h").evaluate(_swapped(None), NOW)
    assert not never.holds
    assert never.until is None
    assert parse("sim.swap_age > 30d").evaluate(_swapped(None), NOW).holds  # forever ago


def test_a_swap_reported_in_the_future_counts_as_just_now() -> None:
    ahead = Subject("o", signals=SimSignals(swapped_at=NOW + timedelta(minutes=5)))
    outcome = parse("sim.swap_age < 1h").evaluate(ahead, NOW)
    assert outcome.holds
    assert outcome.until == NOW + timedelta(hours=1, minutes=5)


def _cooling(ends_in: timedelta | None, swapped_ago: timedelta | None = None) -> Subject:
    signals = SimSignals(
        swapped_at=None if swapped_ago is None else NOW - swapped_ago,
        swap_recent_until=None if ends_in is None else NOW + ends_in,
    )
    return Subject("o", signals=signals)


def test_swap_recent_holds_until_the_cooling_off_ends_then_never_again() -> None:
    recent = parse("sim.swap_recent")
    cooling = _cooling(timedelta(hours=47))
    assert recent.evaluate(cooling, NOW) == Outcome(True, NOW + timedelta(hours=47))
    just_before = NOW + timedelta(hours=47) - timedelta(microseconds=1)
    assert recent.evaluate(cooling, just_before) == Outcome(True, NOW + timedelta(hours=47))
    # At the instant itself it no longer holds, and nothing ahead can change that.
    assert recent.evaluate(cooling, NOW + timedelta(hours=47)) == Outcome(False, None)
    assert recent.evaluate(_cooling(-timedelta(seconds=1)), NOW) == Outcome(False, None)
    assert recent.evaluate(_cooling(None), NOW) == Outcome(False, None)  # never swapped


def test_swap_recent_until_however_it_is_written() -> None:
    ends = NOW + timedelta(hours=5)
    for text, holds_now in [
        ("not sim.swap_recent", False),
        ("sim.swap_recent == true", True),
        ("sim.swap_recent == false", False),
        ("false != sim.swap_recent", True),  # written the other way round
        ("sim.swap_recent in [true]", True),
        ('sim.swap_recent and sim.kind == "esim"', False),  # no SIM kind: fails, still timed
        ("(sim.swap_recent or sim.imei_mismatch) == false", False),
    ]:
        assert parse(text).evaluate(_cooling(timedelta(hours=5)), NOW) == Outcome(
            holds_now, ends
        ), text
    # A SIM swap's cooling-off is no duration: it compares with nothing but true and false.
    assert not holds("sim.swap_recent < 24h", _cooling(timedelta(hours=5)))
    assert not holds("sim.swap_recent == 1", _cooling(timedelta(hours=5)))


def test_with_the_swap_age_the_earlier_flip_is_until() -> None:
    both = parse("sim.swap_recent or sim.swap_age < 2h")
    early_age = _cooling(timedelta(hours=5), swapped_ago=timedelta(hours=1))
    assert both.evaluate(early_age, NOW) == Outcome(True, NOW + timedelta(hours=1))
    early_end = _cooling(timedelta(minutes=10), swapped_ago=timedelta(hours=1))
    assert both.evaluate(early_end, NOW) == Outcome(True, NOW + timedelta(minutes=10))
    over = _cooling(-timedelta(minutes=10), swapped_ago=timedelta(hours=1))
    assert both.evaluate(over, NOW) == Outcome(True, NOW + timedelta(hours=1))


def test_a_swap_age_inside_an_operand_still_sets_until() -> None:
    # Before, only a comparison of the age itself counted: this one never came due.
    outcome = parse("(sim.swap_age < 2h) == false").evaluate(_swapped(timedelta(hours=1)), NOW)
    assert outcome == Outcome(False, NOW + timedelta(hours=1))


def test_durations_units() -> None:
    who = _swapped(timedelta(seconds=100))
    assert holds("sim.swap_age > 90s", who)
    assert holds("sim.swap_age < 2m", who)
    assert holds("sim.swap_age < 1d", who)
    assert not holds("sim.swap_age >= 1h", who)


def test_a_number_too_large_for_a_float_compares_without_raising() -> None:
    huge = "1" + "0" * 320
    assert holds(f"device.score < {huge}")
    assert not holds(f"device.score > {huge}.0")  # written as a float it is infinite
    assert not holds(f"device.score != {huge}.0")  # nor does an infinite one compare
    assert holds(f"device.score != {huge}")


def test_a_condition_pickles_and_evaluates_alike() -> None:
    condition = parse('device.os_version >= "17.0" and sim.swap_age > 2h')
    copy = pickle.loads(pickle.dumps(condition))  # noqa: S301 - our own bytes
    assert copy == condition
    assert copy.evaluate(WHO, NOW) == condition.evaluate(WHO, NOW)


# -- the compiled evaluation against a plain walk of the tree ---------------------------
#
# `Condition.evaluate` runs closures compiled from the tree; this walk is the semantics
# written plainly (the module's evaluator before it was compiled), kept here to hold it.

_Plain = Any  # a node's value: a scalar, a tuple, a timedelta or None


def _plain_read(path: str, who: Subject, now: datetime) -> _Plain:
    if path.startswith("device."):
        return None if who.posture is None else who.posture.attributes.get(path[7:])
    signals = who.signals
    if path == "sim.swap_age":
        if signals.swapped_at is None:
            return timedelta.max
        return max(now - signals.swapped_at, timedelta(0))
    if path == "sim.swap_recent":
        return signals.swap_recent_until is not None and now < signals.swap_recent_until
    if path == "sim.imei_mismatch":
        return signals.imei_mismatch
    if path == "sim.clone_suspected":
        return signals.clone_suspected
    if path == "sim.kind":
        return None if who.sim_kind is None else who.sim_kind.value
    return None if who.identity_kind is None else who.identity_kind.value


def _plain_version(value: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(?:\.\d+)*", value):
        return None
    parts = [int(p) for p in value.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _plain_compare(op: str, a: _Plain, b: _Plain) -> bool:
    if a is None or b is None:
        return False
    if op == "in":
        return isinstance(b, tuple) and not isinstance(a, tuple) and a in b
    if isinstance(a, str) and isinstance(b, str):
        va, vb = _plain_version(a), _plain_version(b)
        if va is not None and vb is not None:
            a, b = va, vb
    elif isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)):
            return False
    elif isinstance(a, int | float) and isinstance(b, int | float):
        if any(isinstance(v, float) and not math.isfinite(v) for v in (a, b)):
            return False
    elif type(a) is not type(b):
        return False
    if op in ("==", "!="):
        return (a == b) is (op == "==")
    if isinstance(a, bool):
        return False
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    except TypeError:
        return False


def _plain_flip(node: Compare, who: Subject, now: datetime) -> datetime | None:
    swapped = who.signals.swapped_at
    mirrored = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(node.op)
    for path, literal, op in ((node.left, node.right, node.op), (node.right, node.left, mirrored)):
        if (
            swapped is not None
            and isinstance(path, Path)
            and path.name == "sim.swap_age"
            and isinstance(literal, Literal)
            and isinstance(literal.value, timedelta)
            and op in ("<", "<=", ">", ">=", "==", "!=")
        ):
            instant = swapped + literal.value
            return instant if instant > now else None
    return None


def _plain_eval(node: Node, who: Subject, now: datetime) -> tuple[_Plain, datetime | None]:
    if isinstance(node, Literal):
        return node.value, None
    if isinstance(node, Path):
        ends = who.signals.swap_recent_until
        if node.name == "sim.swap_recent" and ends is not None and ends > now:
            return _plain_read(node.name, who, now), ends  # the one instant it changes
        return _plain_read(node.name, who, now), None
    if isinstance(node, Not):
        value, until = _plain_eval(node.term, who, now)
        return value is not True, until
    if isinstance(node, BoolOp):
        found = [_plain_eval(term, who, now) for term in node.terms]
        untils = [u for _, u in found if u is not None]
        truths = [value is True for value, _ in found]
        value = all(truths) if node.op == "and" else any(truths)
        return value, min(untils) if untils else None
    flip = _plain_flip(node, who, now)
    left, left_until = _plain_eval(node.left, who, now)
    right, right_until = _plain_eval(node.right, who, now)
    if flip is None:  # not the age against a duration: the operands' flips are its own
        untils = [u for u in (left_until, right_until) if u is not None]
        flip = min(untils) if untils else None
    return _plain_compare(node.op, left, right), flip


_STRINGS = ('"17.0"', '"9.3.1"', '"17"', '"18.2"', '"ios"', '"esim"', '"user"', '""')
_NUMBERS = ("7", "7.0", "-7", "0.5", "0")
_DURATIONS = ("0s", "90s", "30m", "2h", "1d")
_SCALARS = (*_STRINGS, *_NUMBERS, "true", "false")
# What each fact is usually compared with (a comparison across types is drawn too).
_LIKELY = {
    "device.os_version": _STRINGS,
    "device.os": _STRINGS,
    "device.score": _NUMBERS,
    "device.ratio": _NUMBERS,
    "device.managed": ("true", "false"),
    "device.absent": _SCALARS,
    "sim.swap_age": _DURATIONS,
    "sim.swap_recent": ("true", "false"),
    "sim.imei_mismatch": ("true", "false"),
    "sim.clone_suspected": ("true", "false"),
    "sim.kind": _STRINGS,
    "identity.kind": _STRINGS,
}
_PATHS = tuple(_LIKELY)
_OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
_ops = st.sampled_from(_OPERATORS)
_lists = st.lists(st.sampled_from(_SCALARS), max_size=3).map(lambda x: f"[{', '.join(x)}]")
_operands = st.sampled_from((*_PATHS, *_SCALARS, *_DURATIONS))
_pairs = st.sampled_from(_PATHS).flatmap(
    lambda path: st.tuples(st.just(path), st.sampled_from(_LIKELY[path]))
)
_leaves = st.one_of(
    st.tuples(_pairs, _ops).map(lambda t: f"{t[0][0]} {t[1]} {t[0][1]}"),
    st.tuples(_pairs, _ops).map(lambda t: f"{t[0][1]} {t[1]} {t[0][0]}"),  # the other way
    st.tuples(_operands, _ops, _operands).map(" ".join),
    st.sampled_from(_PATHS),
    st.tuples(_operands, _lists).map(lambda t: f"{t[0]} in {t[1]}"),
)
_conditions = st.recursive(
    _leaves,
    lambda inner: (
        inner.map(lambda x: f"not {x}")
        | st.tuples(inner, st.sampled_from(("and", "or")), inner).map(" ".join)
        | st.tuples(inner, _ops, _operands).map(lambda t: f"({t[0]}) {t[1]} {t[2]}")
        | st.tuples(_operands, _ops, inner).map(lambda t: f"{t[0]} {t[1]} ({t[2]})")
    ),
    max_leaves=4,
)
# The first values are the likeliest drawn: ones that compare differently as text.
_VALUES: dict[str, tuple[Any, ...]] = {
    "managed": (True, False, 1, "true"),
    "os_version": ("17", "9.10", "17.0.1", "16.7", "18.2", "x", ""),
    "os": ("17.0", "ios", "esim"),
    "score": (7.0, 8, -7, 0, True, 10**320),
    "ratio": (0.5, 1e308, 7, -0.0),
}
_attributes = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in _VALUES.items()})
_instants = st.integers(-3 * 86400, 3 * 86400).map(lambda s: NOW + timedelta(seconds=s))


@st.composite
def _subjects(draw: st.DrawFn) -> Subject:
    posture = None
    if draw(st.sampled_from((True, True, False))):
        posture = Posture(draw(_attributes), NOW - timedelta(hours=1))
    return Subject(
        "o",
        "alice",
        draw(st.none() | st.sampled_from(list(IdentityKind))),
        sim_kind=draw(st.none() | st.sampled_from(list(SimKind))),
        signals=SimSignals(
            draw(st.booleans()),
            draw(st.booleans()),
            draw(st.none() | _instants),
            draw(st.none() | _instants),
        ),
        posture=posture,
    )


@settings(max_examples=500, deadline=None)
@given(_conditions, _subjects(), _instants)
def test_the_compiled_evaluation_is_the_plain_walk(text: str, who: Subject, now: datetime) -> None:
    try:
        condition = parse(text)
    except InvalidInput:
        assume(False)  # too long for the language (the huge literals): not a condition
        raise
    value, until = _plain_eval(condition.root, who, now)
    assert condition.evaluate(who, now) == Outcome(value is True, until), text
    assert condition.holds(who, now) is (value is True), text


def _every_subject() -> list[Subject]:
    out = [Subject("o"), Subject("o", "a", IdentityKind.SERVICE, sim_kind=SimKind.PHYSICAL)]
    for i in range(max(len(v) for v in _VALUES.values())):
        attributes = {k: v[i % len(v)] for k, v in _VALUES.items()}
        swapped = NOW + timedelta(minutes=(-1) ** i * 45 * i)  # before and after NOW
        ends = NOW + timedelta(minutes=(-1) ** (i // 2) * 30 * i)  # ahead, behind, at NOW
        signals = SimSignals(i % 2 == 0, i % 3 == 0, swapped, ends)
        posture = Posture(attributes, NOW - timedelta(hours=1))
        out.append(
            Subject(
                "o",
                "a",
                IdentityKind.USER,
                frozenset(),
                frozenset(),
                SimKind.ESIM,
                signals,
                posture,
            )
        )
    return out


def test_every_comparison_of_a_fact_with_a_literal_is_the_plain_walk() -> None:
    """Each fact against each literal, each operator, either way round (exhaustive: the
    compiled fast paths are chosen by exactly these)."""
    subjects = _every_subject()
    literals = (*_SCALARS, *_DURATIONS, "1" + "0" * 320, "1" + "0" * 320 + ".0")
    checked = 0
    for path in _PATHS:
        for literal in literals:
            for op in _OPERATORS:
                for text in (f"{path} {op} {literal}", f"{literal} {op} {path}"):
                    condition = parse(text)
                    for who in subjects:
                        value, until = _plain_eval(condition.root, who, NOW)
                        assert condition.evaluate(who, NOW) == Outcome(value is True, until), text
                        checked += 1
    assert checked > 10_000
