"""Home-network key pairs for SUCI (TS 33.501 Annex C), private halves sealed at rest.

Several keys can be active at once: UEs provisioned with the old public key keep
working while new ones get the new key (rotation). Retiring a key makes SUCIs
concealed with it fail to deconceal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ztsim.aka import ecies
from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.sealing import Sealer

_t = schema.home_network_keys
# TS 33.501 Annex C.3: Profile A (X25519) and Profile B (secp256r1).
SCHEMES = {"A": ecies.PROFILE_A, "B": ecies.PROFILE_B}


@dataclass(frozen=True, slots=True)
class HomeNetworkKey:
    id: int
    scheme: int
    public_key: bytes
    active: bool
    created_at: datetime


def _aad(key_id: int) -> bytes:
    # The sealing associated data is the key id as the rotation code reads it back.
    return str(key_id).encode()


def create(
    conn: Connection,
    sealer: Sealer,
    *,
    key_id: int,
    scheme: int,
    now: datetime,
    random: Callable[[int], bytes],
) -> HomeNetworkKey:
    if not 0 <= key_id <= 255:
        raise InvalidInput("a home network public key identifier is 0 to 255")
    if scheme not in SCHEMES.values():
        raise InvalidInput("scheme must be Profile A (1) or Profile B (2)")
    if conn.execute(select(_t.c.id).where(_t.c.id == key_id)).first():
        raise Conflict(f"home network key {key_id} exists")
    while True:
        private = random(32)
        try:
            public = ecies.public_key(scheme, private)
            break
        except InvalidInput:
            continue  # not a valid secp256r1 scalar (probability ~2^-32): draw again
    conn.execute(
        insert(_t).values(
            id=key_id,
            scheme=scheme,
            public_key=public,
            private_sealed=sealer.seal(private, _aad(key_id)),
            active=True,
            created_at=now,
        )
    )
    return HomeNetworkKey(key_id, scheme, public, True, now)


def list_keys(conn: Connection) -> list[HomeNetworkKey]:
    rows = conn.execute(
        select(_t.c.id, _t.c.scheme, _t.c.public_key, _t.c.active, _t.c.created_at).order_by(
            _t.c.id
        )
    ).all()
    return [HomeNetworkKey(*row) for row in rows]


def retire(conn: Connection, key_id: int) -> None:
    if conn.execute(update(_t).where(_t.c.id == key_id).values(active=False)).rowcount != 1:
        raise NotFound(f"no home network key {key_id}")


def active_private_keys(conn: Connection, sealer: Sealer) -> dict[int, bytes]:
    """Key id -> raw private key, for `ztsim.aka.suci.deconceal`. In memory only."""
    rows = conn.execute(select(_t.c.id, _t.c.private_sealed).where(_t.c.active.is_(True))).all()
    return {key_id: sealer.open(sealed, _aad(key_id)) for key_id, sealed in rows}
