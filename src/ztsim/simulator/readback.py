"""What the demo prints, read back from the platform's own API as an admin would: the
counts (`Summary`) and the story (`ztsim.simulator.story`), from `GET /api/v1/events`
and the identities, SIMs, devices, DNS rules and live sessions the events point to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ztsim.simulator.story import KINDS, Directory, Event, Person, Story, tell

_PAGE = 1000  # the API's largest page


@dataclass
class Summary:
    """What the platform recorded, in counts."""

    attaches_accepted: int = 0
    attaches_refused: Counter[str] = field(default_factory=Counter)  # reason -> count
    sessions_started: int = 0
    risk: Counter[str] = field(default_factory=Counter)  # kind -> count
    dns_queries: int = 0
    dns_blocked: int = 0
    blocks_by_category: Counter[str] = field(default_factory=Counter)  # rule -> count
    blocks_by_identity: Counter[str] = field(default_factory=Counter)  # name -> count
    disconnects: int = 0
    revocation_ms: float | None = None


def _pages(client: httpx.Client, path: str, **query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str | int] = {**query, "limit": _PAGE}
    while True:
        page = client.get(path, params=params).raise_for_status().json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def _directory(client: httpx.Client) -> Directory:
    people = {
        i["id"]: Person(i["id"], i["name"], i["email"], i["kind"])
        for i in _pages(client, "/api/v1/identities")
    }
    sims = _pages(client, "/api/v1/sims")
    devices = _pages(client, "/api/v1/devices")
    rules = client.get("/api/v1/dns/rules").raise_for_status().json()
    return Directory(
        people=people,
        sim_owners={s["iccid"]: s["identity_id"] for s in sims},
        sim_devices={s["iccid"]: s["device_id"] for s in sims},
        device_imeis={d["id"]: d["imei"] for d in devices},
        rule_categories={r["name"]: frozenset(r["categories"]) for r in rules},
    )


def _summary(by_kind: Mapping[str, Sequence[Event]], directory: Directory) -> Summary:
    s = Summary()
    for e in by_kind["radius.access"]:
        if e["outcome"] == "success":
            s.attaches_accepted += 1
        else:
            s.attaches_refused[e["reason"]] += 1
    s.sessions_started = len(by_kind["radius.session_started"])
    for kind in ("risk.clone", "risk.device_swap"):
        s.risk[kind] = len(by_kind[kind])
    for e in by_kind["dns.stats"]:
        s.dns_queries += e["payload"]["queries"]
        s.dns_blocked += e["payload"]["blocked"]
    for e in by_kind["dns.query"]:
        if e["payload"]["action"] == "blocked":
            s.blocks_by_category[e["payload"]["rule"]] += 1
            person = directory.people.get(e["subject"].partition(":")[2])
            s.blocks_by_identity[e["subject"] if person is None else person.name] += 1
    s.disconnects = sum(e["outcome"] == "success" for e in by_kind["radius.disconnect"])
    return s


def read_back(api_url: str, token: str) -> tuple[Summary, Story]:
    """The counts and the story, as the API tells them now."""
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as c:
        by_kind = {k: _pages(c, "/api/v1/events", kind=k) for k in (*KINDS, "dns.stats")}
        directory = _directory(c)
        live = len(_pages(c, "/api/v1/sessions"))
    return _summary(by_kind, directory), tell(by_kind, directory, live)
