"""5G HE authentication vectors for stored SIMs (TS 33.501 6.1.3.2), with SQN kept
in the database and advanced atomically.

Decisions:
- SEQ_HE lives in `sims.sqn_seq` and is advanced by one `UPDATE ... RETURNING`
  per vector, so two concurrent requests never get the same SQN (on SQLite the
  write lock serialises them, on PostgreSQL the row lock does). That is one commit
  per vector: right for `ztsim aka vector` and for resynchronisations; the Nudm
  endpoint goes through `issuer` (SQN blocks reserved ahead, group commit), which
  keeps these rules and calls back here for what it shares (`refuse`,
  `milenage_for`, `issued_vector`, resyncs).
- The IND slot of TS 33.102 Annex C is derived from the serving network name and
  the AUSF instance id (a stable hash), so each serving node gets its own slot
  without a registry; two nodes sharing a slot is harmless (Annex C allows it).
- K and OPc are unsealed for the one computation and dropped; nothing caches them.
- Signals for the risk engine, recorded as events on the SIM:
  `aka.resync` (every verified AUTS); `aka.sqn_ahead` when the USIM reports a
  SEQ_MS the home network never issued (someone else holds K and ran vectors:
  a clone); `aka.sqn_backwards` when resync moves SEQ_HE back; and
  `aka.auts_mac_failure` when an AUTS does not verify under the SIM's keys.
- Only `active` SIMs get vectors. A refusal is a result (`Refusal`), not an
  exception, so that its event commits with the caller's transaction.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from ztsim.aka.errors import ResyncError
from ztsim.aka.milenage import Milenage
from ztsim.aka.sqn import (
    DEFAULT_IND_BITLEN,
    split_sqn,
    sqn_for,
    sqn_to_bytes,
    verify_auts,
)
from ztsim.aka.vectors import FiveGHeVector, fiveg_he_vector
from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.inventory.lifecycle import SimState
from ztsim.sealing import Sealer

_s = schema.sims
# TS 33.102 Annex H: AMF separation bit set, as EPS and 5G require of HE vectors.
DEFAULT_AMF = b"\x80\x00"
ACTOR = "system:udm"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no vector was issued; the SIM's event log says it too."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resynchronization:
    rand: bytes
    auts: bytes


@dataclass(frozen=True, slots=True)
class IssuedVector:
    supi: str
    iccid: str
    sqn: int
    vector: FiveGHeVector


@functools.lru_cache(maxsize=4096)  # a few AUSFs ask for vectors again and again
def serving_node_slot(
    serving_network_name: str, node_id: str, ind_bitlen: int = DEFAULT_IND_BITLEN
) -> int:
    digest = hashlib.sha256(f"{serving_network_name}\x00{node_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (1 << ind_bitlen)


def milenage_for(sealer: Sealer, iccid: str, k_sealed: bytes, opc_sealed: bytes) -> Milenage:
    """The SIM's Milenage, its K and OPc unsealed for this one computation."""
    aad = iccid.encode()
    return Milenage(sealer.open(k_sealed, aad), sealer.open(opc_sealed, aad))


def issued_vector(
    milenage: Milenage,
    imsi: str,
    iccid: str,
    new_seq: int,
    *,
    serving_network_name: str,
    node_id: str,
    rand: Callable[[int], bytes],
    amf: bytes = DEFAULT_AMF,
    ind_bitlen: int = DEFAULT_IND_BITLEN,
) -> IssuedVector:
    """The vector carrying SEQ `new_seq` (already committed as issued) in the node's slot."""
    slot = serving_node_slot(serving_network_name, node_id, ind_bitlen)
    sqn = sqn_for(new_seq, slot, ind_bitlen)
    vector = fiveg_he_vector(milenage, rand(16), sqn_to_bytes(sqn), amf, serving_network_name)
    return IssuedVector(f"imsi-{imsi}", iccid, sqn, vector)


def generate(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    imsi: str,
    *,
    serving_network_name: str,
    node_id: str,
    now: datetime,
    rand: Callable[[int], bytes],
    resync: Resynchronization | None = None,
    amf: bytes = DEFAULT_AMF,
    ind_bitlen: int = DEFAULT_IND_BITLEN,
) -> IssuedVector | Refusal:
    """A 5G HE AV for the SIM with `imsi` in `org_id`. Call inside a transaction:
    the SQN advance and the signal events commit together."""
    if resync is None:
        # The common case is one statement: advance SEQ_HE of an active SIM and read
        # its keys; concurrent callers serialise on the row.
        row = conn.execute(
            update(_s)
            .where(_s.c.org_id == org_id, _s.c.imsi == imsi, _s.c.state == SimState.ACTIVE.value)
            .values(sqn_seq=_s.c.sqn_seq + 1)
            .returning(_s.c.iccid, _s.c.sqn_seq, _s.c.k_sealed, _s.c.opc_sealed)
        ).first()
        if row is None:
            return refuse(conn, org_id, imsi, now)
        iccid, new_seq, k_sealed, opc_sealed = row
        milenage = milenage_for(sealer, iccid, k_sealed, opc_sealed)
    else:
        found = conn.execute(
            select(_s.c.id, _s.c.iccid, _s.c.state, _s.c.sqn_seq, _s.c.k_sealed, _s.c.opc_sealed)
            .where(_s.c.org_id == org_id, _s.c.imsi == imsi, _s.c.state == SimState.ACTIVE.value)
            .with_for_update()
        ).first()
        if found is None:
            return refuse(conn, org_id, imsi, now)
        sim_id, iccid, _state, seq_he, k_sealed, opc_sealed = found
        milenage = milenage_for(sealer, iccid, k_sealed, opc_sealed)
        refusal = _resynchronise(
            conn,
            org_id,
            sim_id,
            subject_of("sim", iccid),
            milenage,
            resync,
            seq_he,
            ind_bitlen,
            now,
        )
        if refusal is not None:
            return refusal
        new_seq = conn.execute(
            update(_s)
            .where(_s.c.id == sim_id)
            .values(sqn_seq=_s.c.sqn_seq + 1)
            .returning(_s.c.sqn_seq)
        ).scalar_one()
    return issued_vector(
        milenage,
        imsi,
        iccid,
        new_seq,
        serving_network_name=serving_network_name,
        node_id=node_id,
        rand=rand,
        amf=amf,
        ind_bitlen=ind_bitlen,
    )


def refuse(conn: Connection, org_id: str, imsi: str, now: datetime) -> Refusal:
    """Why the SIM got no vector: unknown (NotFound) or not active (a Refusal, recorded)."""
    row = conn.execute(
        select(_s.c.iccid, _s.c.state).where(_s.c.org_id == org_id, _s.c.imsi == imsi)
    ).first()
    if row is None:
        raise NotFound("no subscriber with that SUPI")
    iccid, state = row
    reason = f"the SIM is {state}, not active"
    events.append(
        conn,
        [NewEvent(org_id, "aka.refused", ACTOR, subject_of("sim", iccid), Outcome.DENIED, reason)],
        now,
    )
    return Refusal(reason)


def _resynchronise(
    conn: Connection,
    org_id: str,
    sim_id: int,
    subject: str,
    milenage: Milenage,
    resync: Resynchronization,
    seq_he: int,
    ind_bitlen: int,
    now: datetime,
) -> Refusal | None:
    try:
        sqn_ms = verify_auts(milenage, resync.rand, resync.auts)
    except ResyncError as exc:
        events.append(
            conn,
            [NewEvent(org_id, "aka.auts_mac_failure", ACTOR, subject, Outcome.FAILURE, str(exc))],
            now,
        )
        return Refusal("the AUTS does not verify")
    seq_ms, _ = split_sqn(sqn_ms, ind_bitlen)
    payload = {"seq_he": seq_he, "seq_ms": seq_ms}
    signals = [NewEvent(org_id, "aka.resync", ACTOR, subject, payload=payload)]
    if seq_ms > seq_he:
        signals.append(
            NewEvent(
                org_id,
                "aka.sqn_ahead",
                ACTOR,
                subject,
                Outcome.FAILURE,
                "the USIM reports an SQN beyond all this network issued: K used elsewhere (a clone), or SQN state was lost",
                payload,
            )
        )
    elif seq_ms < seq_he:
        signals.append(NewEvent(org_id, "aka.sqn_backwards", ACTOR, subject, payload=payload))
    events.append(conn, signals, now)
    conn.execute(update(_s).where(_s.c.id == sim_id).values(sqn_seq=seq_ms))
    return None
