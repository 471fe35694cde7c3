"""The CLI's changes reach the planes as the API's do (the same use cases): each command
that changes plane state leaves its outbox rows, written here by hand per command; one
that changes none, or is refused, leaves none."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.db.engine import make_engine
from ztsim.feed.change import Topic

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS
from support.traces import Mark

Cli = Callable[..., tuple[int, str]]
SECRET = "cli-changes-gateway-secret"
LEAKS.add_secret(SECRET)


@pytest.fixture
def db(org: list[str], tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    yield engine
    engine.dispose()


def _id_of(engine: Engine, table: str, **where: str) -> str:
    t = schema.metadata.tables[table]
    with engine.connect() as conn:
        query = select(t.c.id).where(*(t.c[k] == v for k, v in where.items()))
        return str(conn.execute(query).scalar_one())


def test_each_command_publishes_what_it_changed(
    cli: Cli, org: list[str], db: Engine, tmp_path: Path
) -> None:
    def run(*args: str) -> list[tuple[Topic, str]]:
        mark = Mark(db)
        code, output = cli(*args)
        assert code == 0, (args, output)
        return mark.left().topics

    org_id = _id_of(db, "orgs", slug="acme")
    iccid = org[0]
    assert run("identities", "create", "--name", "Ann", "--email", "ann@x.test") == []
    ann = _id_of(db, "identities", email="ann@x.test")
    assert run("sims", "assign", iccid, "--identity", "Ann") == [(Topic.SIM, iccid)]
    assert run("sims", "activate", iccid) == [(Topic.SIM, iccid)]
    assert run("sims", "suspend", iccid, "--reason", "lost") == [(Topic.SIM, iccid)]
    assert run("sims", "resume", iccid) == [(Topic.SIM, iccid)]
    assert run("identities", "disable", "Ann") == [(Topic.IDENTITY, ann)]
    assert run("identities", "enable", "Ann") == [(Topic.IDENTITY, ann)]
    assert run("groups", "create", "staff") == []
    assert run("groups", "add", "staff", "Ann") == [(Topic.IDENTITY, ann)]
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    gateway = ("gateways", "create", "--name", "pgw", "--apn", "corp", "--address", "192.0.2.1")
    assert run(*gateway, "--secret-file", str(secret)) == [(Topic.NETWORK, org_id)]
    assert run("gateways", "delete", "pgw") == [(Topic.NETWORK, org_id)]
    assert run("pools", "create", "10.64.0.0/16") == [(Topic.NETWORK, org_id)]
    mark = Mark(db)
    code, output = cli("tokens", "create", "--role", "analyst", "--name", "ci")
    assert code == 0, output
    (token,) = re.findall(r"ztsim_\S+", output)
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli tokens create", output)  # shown once, at creation
    assert mark.left().changes == []
    assert run("tokens", "revoke", "ci") == []
    assert run("sims", "retire", iccid, "--reason", "broken") == [(Topic.SIM, iccid)]
    # A refused command leaves nothing.
    mark = Mark(db)
    assert cli("sims", "suspend", iccid, "--reason", "again")[0] == 1
    assert mark.left().empty


def test_esim_orders_publish_each_sim_they_assign(
    cli: Cli, org: list[str], db: Engine, tmp_path: Path
) -> None:
    batch = tmp_path / "esim.csv"
    batch.write_text(stock_csv(make_sims(2, seed=43)))
    assert cli("sims", "import", str(batch), "--kind", "ESIM")[0] == 0
    for name in ("Ann", "Bob"):
        assert cli("identities", "create", "--name", name)[0] == 0
    mark = Mark(db)
    code, output = cli("esim", "order", "--user", "Ann", "--user", "Bob")
    assert code == 0, output
    left = mark.left()
    with db.connect() as conn:
        assigned = set(
            conn.scalars(select(schema.sims.c.iccid).where(schema.sims.c.state == "assigned"))
        )
    assert len(assigned) == 2
    assert sorted(left.topics) == sorted((Topic.SIM, iccid) for iccid in assigned)
    assert left.kinds.count("esim.order_created") == 2
