from pathlib import Path

import pytest

from ztsim.errors import InvalidInput
from ztsim.simulator.scenario import ActionKind, Behaviour, Device, Scenario, plan

ACME = Path(__file__).resolve().parents[2] / "src/ztsim/simulator/scenarios/acme.yaml"


def _devices() -> list[Device]:
    kinds = [Behaviour.EMPLOYEE] * 4 + [
        Behaviour.PHISHED,
        Behaviour.IOT_TELEMETRY,
        Behaviour.COMPROMISED_IOT,
    ]
    devices = [
        Device(f"d{i}", f"0010100000000{i:02d}", f"35349006987332{i:02d}", None, b)
        for i, b in enumerate(kinds)
    ]
    devices.append(
        Device(
            "clone",
            devices[0].imsi,
            devices[0].imeisv,
            None,
            Behaviour.CLONED_SIM,
            "3534900698739901",
        )
    )
    return devices


def test_the_shipped_scenario_loads() -> None:
    s = Scenario.load(ACME)
    assert (s.name, s.seed, s.apn) == ("acme-demo", 20261124, "corp.acme")
    assert "beacon.c2.botnet.example" in s.command_and_control


def test_plan_is_deterministic_under_a_seed() -> None:
    s = Scenario.load(ACME)
    assert plan(s, _devices()) == plan(s, _devices())
    other = Scenario.from_yaml(ACME.read_text().replace("seed: 20261124", "seed: 7"))
    assert plan(other, _devices()) != plan(s, _devices())


def test_plan_follows_each_behaviour() -> None:
    s = Scenario.load(ACME)
    actions = plan(s, _devices())
    assert actions == sorted(actions, key=lambda a: a.at)
    by_device: dict[str, list[str]] = {}
    for a in actions:
        if a.kind is ActionKind.QUERY:
            by_device.setdefault(a.device.name, []).append(a.name)
    assert sum(n in s.phishing for n in by_device["d4"]) == 1
    assert set(by_device["d5"]) == set(s.telemetry)
    assert set(s.command_and_control) <= set(by_device["d6"])
    assert all(n in s.browsing for n in by_device["d0"])
    assert "clone" not in by_device
    clone_attach = next(a for a in actions if a.device.name == "clone")
    genuine_attach = next(
        a for a in actions if a.device.name == "d0" and a.kind is ActionKind.ATTACH
    )
    assert clone_attach.at > genuine_attach.at
    assert sum(a.kind is ActionKind.DETACH for a in actions) == 7


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2", "not valid YAML"),
        ("- a\n- b", "a mapping"),
        ("name: x\nseed: 1\n", "missing"),
        (
            "name: x\nseed: one\nduration_s: 1\napn: a\ndomains: {browsing: [], telemetry: [], phishing: [], command_and_control: []}",
            "mistypes",
        ),
    ],
)
def test_bad_scenarios_are_refused_clearly(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        Scenario.from_yaml(text)
