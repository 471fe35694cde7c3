"""The demo's story is told from the events, whatever the scenario made happen."""

from __future__ import annotations

from typing import Any

from ztsim.simulator.story import (
    DEVICE_LOCK,
    KINDS,
    SQN_AHEAD,
    TWIN_SESSION,
    Directory,
    Person,
    tell,
)

ADA = Person("i-ada", "Ada Lovelace", "ada.lovelace@acme.test", "user")
ALAN = Person("i-alan", "Alan Turing", "alan.turing@acme.test", "user")
METER = Person("i-m1", "meter-01", None, "service")


def _directory() -> Directory:
    return Directory(
        people={p.id: p for p in (ADA, ALAN, METER)},
        sim_owners={"8901": "i-ada", "8902": "i-alan", "8903": "i-m1"},
        sim_devices={"8901": "d-ada", "8902": "d-alan", "8903": "d-m1"},
        device_imeis={"d-ada": "111", "d-alan": "222", "d-m1": "333"},
        rule_categories={
            "phishing": frozenset({"phishing"}),
            "command-and-control": frozenset({"command-and-control"}),
            "ads": frozenset({"advertising"}),
        },
    )


def _event(
    kind: str, subject: str, reason: str = "", outcome: str = "success", **payload: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "actor": "gateway:g1",
        "subject": subject,
        "outcome": outcome,
        "reason": reason,
        "payload": payload,
    }


def _query(who: str, name: str, rule: str, action: str = "blocked") -> dict[str, Any]:
    return _event("dns.query", f"identity:{who}", "", "denied", name=name, rule=rule, action=action)


def _by_kind(*events: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for e in events:
        by_kind[e["kind"]].append(e)
    return by_kind


def test_the_phished_person_is_whoever_a_phishing_rule_blocked() -> None:
    ada = tell(_by_kind(_query("i-ada", "login.phish.example", "phishing")), _directory(), 0)
    assert [(b.who, b.domain, b.times) for b in ada.phished] == [(ADA, "login.phish.example", 1)]
    # Another run, another victim: the story follows the events, not the demo's constants.
    alan = tell(
        _by_kind(
            _query("i-alan", "bank-secure.test", "phishing"),
            _query("i-alan", "bank-secure.test", "phishing"),
        ),
        _directory(),
        0,
    )
    assert [(b.who, b.domain, b.times) for b in alan.phished] == [(ALAN, "bank-secure.test", 2)]
    # A block by a rule of another category, or a query let through, is no phishing.
    none = tell(
        _by_kind(
            _query("i-ada", "ads.example", "ads"),
            _query("i-ada", "login.phish.example", "phishing", action="forwarded"),
        ),
        _directory(),
        0,
    )
    assert none.phished == ()


def test_beacons_name_the_device_and_the_c2_domain() -> None:
    story = tell(
        _by_kind(*[_query("i-m1", "beacon.c2.example", "command-and-control")] * 3),
        _directory(),
        0,
    )
    assert [(b.who, b.domain, b.times) for b in story.beacons] == [(METER, "beacon.c2.example", 3)]


def test_a_clone_names_its_owner_the_twin_and_what_was_done() -> None:
    story = tell(
        _by_kind(
            _event("radius.session_started", "sim:8901", imei="111", ue_address="10.0.0.1"),
            _event("radius.access", "sim:8901", "accepted"),
            _event("risk.clone", "sim:8901", "clone_suspected", "denied", imsi="00101", imei="999"),
            _event("sim.suspend", "sim:8901", "clone detected"),
            _event("radius.disconnect", "sim:8901", "sim_not_active", ue_address="10.0.0.1"),
        ),
        _directory(),
        0,
    )
    [clone] = story.cloned
    assert (clone.iccid, clone.owner, clone.reason) == ("8901", ADA, "clone_suspected")
    assert (clone.tried_imei, clone.bound_imei, clone.live_imeis) == ("999", "111", ("111",))
    assert clone.signals == (TWIN_SESSION,)
    assert clone.suspended_by == ("gateway:g1: clone detected",)
    assert clone.disconnected == ("10.0.0.1",)
    assert story.stolen == ()


def test_an_sqn_anomaly_is_named_as_a_signal() -> None:
    story = tell(
        _by_kind(
            _event("risk.clone", "sim:8902", "clone_suspected", "denied", imei="999"),
            _event("aka.sqn_ahead", "sim:8902"),
            _event("aka.sqn_ahead", "sim:8901"),  # another SIM's
        ),
        _directory(),
        0,
    )
    [clone] = story.cloned
    assert (clone.owner, clone.signals) == (ALAN, (TWIN_SESSION, SQN_AHEAD))


def test_a_stolen_sim_names_its_owner_and_both_devices() -> None:
    story = tell(
        _by_kind(_event("risk.device_swap", "sim:8903", "imei_mismatch", "denied", imei="777")),
        _directory(),
        0,
    )
    [stolen] = story.stolen
    assert (stolen.iccid, stolen.owner, stolen.tried_imei, stolen.bound_imei) == (
        "8903",
        METER,
        "777",
        "333",
    )
    assert (stolen.signals, stolen.suspended_by, stolen.disconnected) == ((DEVICE_LOCK,), (), ())
    assert story.cloned == ()


def test_what_was_allowed_is_counted_per_kind_of_identity() -> None:
    story = tell(
        _by_kind(
            _event("radius.access", "sim:8901", "accepted"),
            _event("radius.access", "sim:8901", "accepted"),
            _event("radius.access", "sim:8903", "accepted"),
            _event("radius.access", "sim:8902", "imei_mismatch", "denied"),
        ),
        _directory(),
        2,
    )
    a = story.allowed
    assert (a.attaches, dict(a.attaches_by_kind), a.identities, a.live_sessions) == (
        3,
        {"service": 1, "user": 2},
        2,
        2,
    )
    assert story.as_json()["allowed"]["attaches"] == 3
