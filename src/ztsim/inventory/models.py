"""Inventory records as the rest of the platform sees them. No secret ever sits here:
K, OPc, PIN and PUK stay sealed in the database until a component that needs one
(authentication) opens it in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ztsim.inventory.lifecycle import SimState


class SimKind(StrEnum):
    ESIM = "esim"
    PHYSICAL = "physical"


@dataclass(frozen=True, slots=True)
class Sim:
    iccid: str
    org_id: str
    imsi: str
    msisdn: str | None
    kind: SimKind
    state: SimState
    identity_id: str | None
    device_id: str | None
    bound_at: datetime | None
    import_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    org_id: str
    imei: str
    eid: str | None
    owner_id: str | None
    name: str
    created_at: datetime
    serial_number: str | None = None  # what an MDM names it by when it reports posture


@dataclass(frozen=True, slots=True)
class StockImport:
    id: str
    org_id: str
    filename: str
    status: str  # "imported" or "rejected"
    rows: int
    imported: int
    errors: list[dict[str, object]]  # the first MAX_ERRORS (ztsim.inventory.stock)
    actor: str
    created_at: datetime
    error_count: int = 0  # every error, listed or not
