"""Scenarios as data, and the deterministic plan they unfold into.

A scenario names behaviours and their domains; the devices (IMSI, IMEISV, the
behaviour each follows) come from whoever provisioned the SIMs. `plan()` turns
both into a time-ordered list of actions; the same seed gives the same plan.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from ztsim.errors import InvalidInput


class Behaviour(StrEnum):
    EMPLOYEE = "employee"  # browsing: work and everyday sites
    IOT_TELEMETRY = "iot-telemetry"  # reports to its telemetry endpoint on a period
    PHISHED = "phished"  # browsing, then follows a phishing link
    COMPROMISED_IOT = "compromised-iot"  # telemetry plus beacons to a command-and-control domain
    CLONED_SIM = "cloned-sim"  # a copy of another device's SIM attaching from a second IMEI
    STOLEN_SIM = "stolen-sim"  # a SIM taken out of its (offline) device, tried in another one


# Behaviours that attach from a device other than the SIM's bound one, and stop there.
FOREIGN_DEVICE = frozenset({Behaviour.CLONED_SIM, Behaviour.STOLEN_SIM})


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    imsi: str
    imeisv: str
    msisdn: str | None
    behaviour: Behaviour
    # For a cloned or stolen SIM: the IMEISV of the device it attaches from (not the bound one).
    clone_imeisv: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    duration_s: float
    apn: str
    browsing: tuple[str, ...]
    telemetry: tuple[str, ...]
    phishing: tuple[str, ...]
    command_and_control: tuple[str, ...]
    queries_per_device: int = 8
    settle_s: float = 0.0  # from a device's attach to its first query
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, text: str) -> Scenario:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"scenario is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("a scenario is a mapping")
        try:
            domains = data["domains"]
            scenario = cls(
                name=str(data["name"]),
                seed=int(data["seed"]),
                duration_s=float(data["duration_s"]),
                apn=str(data["apn"]),
                browsing=tuple(map(str, domains["browsing"])),
                telemetry=tuple(map(str, domains["telemetry"])),
                phishing=tuple(map(str, domains["phishing"])),
                command_and_control=tuple(map(str, domains["command_and_control"])),
                queries_per_device=int(data.get("queries_per_device", 8)),
                settle_s=float(data.get("settle_s", 0.0)),
                options=dict(data.get("options", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"scenario is missing or mistypes a field: {exc}") from None
        if scenario.duration_s <= 0 or scenario.queries_per_device < 1:
            raise InvalidInput("duration_s and queries_per_device must be positive")
        if not 0 <= scenario.settle_s < 0.75 * scenario.duration_s:
            raise InvalidInput("settle_s must leave time for queries")
        return scenario

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.from_yaml(path.read_text(encoding="utf-8"))


class ActionKind(StrEnum):
    ATTACH = "attach"
    QUERY = "query"
    DETACH = "detach"


@dataclass(frozen=True, slots=True)
class Action:
    at: float  # seconds from the start
    kind: ActionKind
    device: Device
    name: str = ""  # the domain of a query
    qtype: int = 1  # A


def _queries(s: Scenario, device: Device, rng: random.Random) -> list[str]:
    n = s.queries_per_device
    if device.behaviour is Behaviour.EMPLOYEE:
        return [rng.choice(s.browsing) for _ in range(n)]
    if device.behaviour is Behaviour.IOT_TELEMETRY:
        return [s.telemetry[i % len(s.telemetry)] for i in range(n)]
    if device.behaviour is Behaviour.PHISHED:
        names = [rng.choice(s.browsing) for _ in range(n - 1)]
        names.insert(rng.randrange(1, n), rng.choice(s.phishing))
        return names
    if device.behaviour is Behaviour.COMPROMISED_IOT:
        return [
            s.command_and_control[i % len(s.command_and_control)] if i % 2 else s.telemetry[0]
            for i in range(n)
        ]
    return []  # a cloned or stolen SIM never gets as far as DNS


def plan(scenario: Scenario, devices: list[Device]) -> list[Action]:
    """Every device attaches early, queries through the run, and detaches at the end;
    clones and stolen SIMs attach in the middle, after the genuine devices are live."""
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible plan, not a secret
    span = scenario.duration_s
    actions: list[Action] = []
    for device in devices:
        if device.behaviour in FOREIGN_DEVICE:
            actions.append(
                Action(round(span * rng.uniform(0.3, 0.5), 3), ActionKind.ATTACH, device)
            )
            continue
        start = round(span * rng.uniform(0.0, 0.15), 3)
        actions.append(Action(start, ActionKind.ATTACH, device))
        for name in _queries(scenario, device, rng):
            at = round(rng.uniform(start + max(0.05 * span, scenario.settle_s), 0.9 * span), 3)
            qtype = 28 if rng.random() < 0.2 else 1
            actions.append(Action(at, ActionKind.QUERY, device, name, qtype))
        actions.append(Action(round(span * 0.95, 3), ActionKind.DETACH, device))
    order = {ActionKind.ATTACH: 0, ActionKind.QUERY: 1, ActionKind.DETACH: 2}
    actions.sort(key=lambda a: (a.at, order[a.kind], a.device.imsi, a.name))
    return actions
