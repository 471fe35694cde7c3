"""A small world for the DNS gateway's change-feed tests: each write is the real state
change plus its change on the outbox, in one transaction, as the use cases publish them
(written here directly, so these tests need nothing but the repositories and the outbox).
Each writer returns the sequence number its change got."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.dns.policy.rules import OrgSettings, Rule
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.store import repository as dns_repo
from ztsim.feed import outbox
from ztsim.feed.change import NewChange, Topic
from ztsim.identity import repository as identities
from ztsim.inventory import repository as inventory
from ztsim.inventory.lifecycle import SimState
from ztsim.sessions import repository as sessions
from ztsim.sessions.table import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STORE_KEY = bytes(range(16))
T = TypeVar("T")


def _seq(conn: Connection) -> int:
    return int(conn.execute(select(func.max(schema.change_outbox.c.seq))).scalar_one())


class FeedWorld:
    def __init__(self, engine: Engine, org_id: str = "o1") -> None:
        self.engine = engine
        self.org = org_id
        self._n = 0
        with self.write() as conn:
            if conn.execute(select(schema.orgs.c.id).where(schema.orgs.c.id == org_id)).first():
                return
            conn.execute(
                insert(schema.orgs).values(id=org_id, name=org_id, slug=org_id, created_at=T0)
            )

    def write(self) -> Any:
        return for_writing(self.engine).begin()

    def publish(self, conn: Connection, topic: Topic, key: str, **payload: object) -> int:
        outbox.publish(conn, [NewChange(self.org, topic, key, payload)], datetime.now(UTC))
        return _seq(conn)

    # -- setup (no change published: loaded at start) --------------------------------------

    def identity(self, identity_id: str, *, kind: str = "user") -> None:
        with self.write() as conn:
            conn.execute(
                insert(schema.identities).values(
                    id=identity_id, org_id=self.org, kind=kind, name=identity_id, created_at=T0
                )
            )

    def sim(self, iccid: str, imsi: str, identity_id: str, *, kind: str = "esim") -> None:
        with self.write() as conn:
            conn.execute(
                insert(schema.sims).values(
                    org_id=self.org,
                    iccid=iccid,
                    imsi=imsi,
                    kind=kind,
                    state="active",
                    identity_id=identity_id,
                    k_sealed=b"x",
                    opc_sealed=b"x",
                    created_at=T0,
                    updated_at=T0,
                )
            )

    def rule(self, rule: Rule) -> int:
        with self.write() as conn:
            dns_repo.create_rule(conn, self.org, rule, None, T0)
            return self.publish(conn, Topic.DNS, self.org)

    def settings(self, networks: tuple[str, ...], **values: Any) -> int:
        with self.write() as conn:
            dns_repo.put_settings(conn, self.org, OrgSettings(**values), networks, T0)
            return self.publish(conn, Topic.DNS, self.org)

    # -- changes ----------------------------------------------------------------------------

    def session(
        self,
        key: str,
        address: str | None,
        iccid: str,
        imsi: str,
        identity_id: str,
        *,
        stopped: bool = False,
        gateway: str = "gw",
    ) -> int:
        self._n += 1
        now = datetime.now(UTC)
        session = Session(
            self.org, gateway, key, "192.0.2.250", imsi, iccid, identity_id,
            f"dev-{identity_id}", None, address, None, None, None, T0, now,
            now if stopped else None, "User-Request" if stopped else None,
        )  # fmt: skip
        with self.write() as conn:
            sessions.save(conn, [session])
            payload = {"iccid": iccid, "gateway_id": gateway, "acct_session_id": key}
            return self.publish(
                conn, Topic.SESSION, address or f"{gateway}/{key}", stopped=stopped, **payload
            )

    def sim_state(self, iccid: str, before: SimState, after: SimState) -> int:
        with self.write() as conn:
            inventory.change_state(conn, self.org, iccid, before, after, datetime.now(UTC))
            return self.publish(conn, Topic.SIM, iccid, state=after.value)

    def enabled(self, identity_id: str, enabled: bool) -> int:
        with self.write() as conn:
            identities.update_identity(conn, self.org, identity_id, name=None, enabled=enabled)
            return self.publish(conn, Topic.IDENTITY, identity_id)

    def join_group(self, group_id: str, identity_id: str) -> int:
        with self.write() as conn:
            exists = select(schema.groups.c.id).where(schema.groups.c.id == group_id)
            if conn.execute(exists).first() is None:
                conn.execute(
                    insert(schema.groups).values(
                        id=group_id, org_id=self.org, name=group_id, created_at=T0
                    )
                )
            identities.add_member(conn, self.org, group_id, identity_id, fleet=False)
            return self.publish(conn, Topic.IDENTITY, identity_id)

    def device(self, device_id: str, owner: str | None, imei: str) -> None:
        with self.write() as conn:
            conn.execute(
                insert(schema.devices).values(
                    id=device_id, org_id=self.org, imei=imei, owner_id=owner, name="", created_at=T0
                )
            )

    def issue_token(self, device_id: str, token: str) -> tuple[str, int]:
        with self.write() as conn:
            token_id = dns_repo.add_device_token(conn, self.org, device_id, token, T0)
            return token_id, self.publish(conn, Topic.DEVICE_TOKEN, token_id)

    def revoke_token(self, token_id: str) -> int:
        with self.write() as conn:
            dns_repo.revoke_device_token(conn, self.org, token_id, datetime.now(UTC))
            return self.publish(conn, Topic.DEVICE_TOKEN, token_id)


def options(engine: Engine | None, port: int = 0, **values: Any) -> GatewayOptions:
    return GatewayOptions(
        "127.0.0.1", port, [], None, database=engine, store_key=lambda: STORE_KEY, **values
    )


class Served:
    """A GatewayProcess serving on its own event loop in a thread (as in `ztsim up`)."""

    def __init__(self, process: GatewayProcess) -> None:
        self.process = process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def __enter__(self) -> Served:
        self._thread.start()
        self.call(self.process.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.process.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
