"""Hypothesis strategies for policy values: subjects, posture, checks and rule selectors.

Shared by the tests that hold two deciders to one semantics (the compiled policy, the DNS
gateway's snapshot against `ztsim.policy.reference`). The value pools are small on
purpose, so that random rules both name and miss random subjects, and requirements both
hold and fail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import IdentityKind, Posture, SimKind, SimSignals, Subject

from tests_clock import NOW

ORG = "o"
IDENTITIES = ("alice", "bob", "carol")
GROUPS = ("staff", "admins", "guests")
FLEETS = ("trucks", "meters")
CHECK_NAMES = ("managed", "modern", "jailbroken", "gone")  # "gone" is never defined
SIM_CONDITIONS = (
    "sim.swap_age < 24h",
    "sim.swap_age > 2h",
    "not sim.clone_suspected",
    "sim.imei_mismatch or sim.swap_age <= 30m",
    "not sim.swap_recent",
    "sim.swap_recent == (sim.swap_age < 12h)",  # the two signals against each other
    'sim.kind == "esim"',
    'identity.kind == "service"',
    "true",
)

# Instants within three days either side of NOW: reports, swaps and cooling-offs both fresh
# and old.
offsets = st.integers(-3 * 86400, 3 * 86400).map(lambda s: timedelta(seconds=s))


def subset(values: tuple[str, ...], most: int = 2) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=most, unique=True)


@st.composite
def selector_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A rule's subject selectors and requirements in their flat (spec) form."""
    spec: dict[str, Any] = {
        "identities": draw(subset(IDENTITIES)),
        "groups": draw(subset(GROUPS)),
        "fleets": draw(subset(FLEETS, 1)),
        "sim_kinds": draw(subset(("esim", "physical"), 1)),
        "identity_kinds": draw(subset(("user", "service"), 1)),
        "posture": [
            ("!" if draw(st.booleans()) else "") + name for name in draw(subset(CHECK_NAMES))
        ],
        "sim": draw(subset(SIM_CONDITIONS)),
    }
    # Few selectors at a time, so that rules both name and miss the random subjects.
    for field in ("identities", "groups", "fleets", "sim_kinds", "identity_kinds"):
        if draw(st.integers(0, 3)):
            spec[field] = []
    return spec


@st.composite
def postures(draw: st.DrawFn) -> Posture | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["managed"] = draw(st.booleans())
    if draw(st.booleans()):
        attributes["os_version"] = draw(st.sampled_from(("16.7", "17", "17.0.1", "18.2", "x")))
    if draw(st.booleans()):
        attributes["jailbroken"] = draw(st.sampled_from((True, False, 1, "no")))
    observed = NOW - timedelta(seconds=draw(st.integers(0, 3 * 86400)))
    expires = None
    if draw(st.booleans()):
        expires = observed + timedelta(seconds=draw(st.integers(1, 2 * 86400)))
    return Posture(attributes, observed, expires)


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    swapped = draw(st.none() | offsets.map(lambda d: NOW + d))
    # A cooling-off's end, ahead of or behind the instants decided at (and of any swap:
    # the signals are read as stored, not made consistent here).
    recent_until = draw(st.none() | offsets.map(lambda d: NOW + d))
    return Subject(
        ORG,
        draw(st.none() | st.sampled_from((*IDENTITIES, "dave"))),
        draw(st.none() | st.sampled_from(list(IdentityKind))),
        frozenset(draw(subset(GROUPS))),
        frozenset(draw(subset(FLEETS, 1))),
        draw(st.none() | st.sampled_from(list(SimKind))),
        SimSignals(draw(st.booleans()), draw(st.booleans()), swapped, recent_until),
        draw(postures()),
    )


@st.composite
def checks(draw: st.DrawFn) -> dict[str, PostureCheck]:
    """The org's checks by name: every name of CHECK_NAMES but "gone"."""
    ages = st.sampled_from((timedelta(hours=1), timedelta(hours=12), timedelta(days=2)))
    return {
        "managed": PostureCheck("managed", "device.managed", draw(ages)),
        "modern": PostureCheck(
            "modern", 'device.managed and device.os_version >= "17"', draw(ages)
        ),
        "jailbroken": PostureCheck("jailbroken", "device.jailbroken", draw(ages)),
    }
