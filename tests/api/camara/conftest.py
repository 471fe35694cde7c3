"""A CAMARA world: two orgs, numbers in every SIM state, API clients and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from ztsim.db import schema
from ztsim.inventory import number_history
from ztsim.inventory.number_history import ChangeKind
from ztsim.sealing import Sealer

from support.api import ApiHarness, OrgHandle, harness
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

ALL_SCOPES = [
    "sim-swap:check",
    "sim-swap:retrieve-date",
    "device-swap:check",
    "device-swap:retrieve-date",
]


@dataclass
class Camara:
    h: ApiHarness
    org: OrgHandle
    other: OrgHandle
    # "active", "suspended", "stock", "assigned", "retired", "unbound", "bravo" -> "+49..."
    numbers: dict[str, str]
    iccids: dict[str, str]

    def post(self, path: str, body: dict[str, Any], org: OrgHandle | None = None) -> Any:
        r = self.h.client.post(path, json=body, headers=(org or self.org).auth())
        assert r.status_code in (200, 201), r.text
        return r.json()

    def client(
        self,
        scopes: list[str] | None = None,
        phone: str | None = None,
        org: OrgHandle | None = None,
    ) -> tuple[str, str]:
        """A new API client of `org` (alpha): its id and secret."""
        body: dict[str, Any] = {"name": "idp", "scopes": scopes or ALL_SCOPES}
        if phone is not None:
            body["phone_number"] = phone
        r = self.h.client.post("/api/v1/api-clients", json=body, headers=(org or self.org).auth())
        assert r.status_code == 201, r.text
        created = r.json()
        LEAKS.add_secret(created["client_secret"])
        LEAKS.allow_once("api POST /api/v1/api-clients", r.text)  # shown once: at creation
        return created["id"], created["client_secret"]

    def token(
        self,
        scopes: list[str] | None = None,
        phone: str | None = None,
        org: OrgHandle | None = None,
    ) -> str:
        client_id, secret = self.client(scopes, phone, org)
        r = self.h.client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        assert isinstance(token, str)
        LEAKS.add_secret(token)
        LEAKS.allow_once("api POST /oauth2/token", r.text)  # the one answer that carries it
        return token

    def history(self, name: str, kind: ChangeKind, at: datetime, current: str = "x") -> None:
        """One change of `kind` at `at` behind number `name` (its earlier ones are kept)."""
        with self.h.engine.begin() as conn:
            number_history.record(
                conn,
                self.org.id if name != "bravo" else self.other.id,
                self.numbers[name],
                kind,
                iccid=self.iccids[name],
                previous=None,
                current=current,
                actor="test",
                now=at,
            )

    def forget(self, name: str) -> None:
        """No history at all behind number `name`."""
        with self.h.engine.begin() as conn:
            conn.execute(
                delete(schema.number_changes).where(
                    schema.number_changes.c.msisdn == self.numbers[name][1:]
                )
            )


def _sims(c: Camara, org: OrgHandle, seed: int, names: list[str]) -> None:
    specs = make_sims(len(names), seed=seed)
    r = c.h.client.post(
        "/api/v1/stock-imports?filename=batch.csv",
        content=stock_csv(specs),
        headers={**org.auth(), "content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    person = c.post("/api/v1/identities", {"kind": "user", "name": f"P{seed}"}, org)
    for name, spec in zip(names, specs, strict=True):
        assert spec.msisdn is not None
        c.numbers[name], c.iccids[name] = "+" + spec.msisdn, spec.iccid
        if name == "stock":
            continue
        base = f"/api/v1/sims/{spec.iccid}"
        c.post(f"{base}/assign", {"identity_id": person["id"]}, org)
        if name == "assigned":
            continue
        c.post(f"{base}/activate", {}, org)
        if name == "suspended":
            c.post(f"{base}/suspend", {"reason": "test"}, org)
        if name == "retired":
            c.post(f"{base}/retire", {"reason": "test"}, org)


def build(h: ApiHarness) -> Camara:
    c = Camara(h, h.new_org("alpha"), h.new_org("bravo"), {}, {})
    _sims(c, c.org, 61, ["active", "suspended", "stock", "assigned", "retired", "unbound"])
    _sims(c, c.other, 62, ["bravo"])
    device = c.post("/api/v1/devices", {"imei": "490154203237518", "name": "phone"})
    for name in ("active", "suspended"):
        r = h.client.put(
            f"/api/v1/sims/{c.iccids[name]}/binding",
            json={"device_id": device["id"], "reason": "test"},
            headers=c.org.auth(),
        )
        assert r.status_code == 200, r.text
    return c


@pytest.fixture
def camara(sqlite_engine: Engine, sealer: Sealer) -> Iterator[Camara]:
    with harness(sqlite_engine, sealer) as h:
        yield build(h)
