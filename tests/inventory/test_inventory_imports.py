"""Stock imports at scale: streamed, errors capped and counted, all or nothing, off the
event loop; an identifier held by another org is answered as any registered one."""

from __future__ import annotations

import io
import threading
import time

import pytest
from sqlalchemy import Engine, func, select

from ztsim.api import routes_inventory
from ztsim.db import schema
from ztsim.identifiers import Iccid
from ztsim.identity.roles import Role
from ztsim.inventory import service
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import MAX_ERRORS
from ztsim.sealing import Sealer

from support.api import ApiHarness
from support.factories import make_sims, stock_csv
from support.world import World

CSV = {"content-type": "text/csv"}


def _rows(count: int, *, seed: int = 55, bad_every: int = 0) -> str:
    """A vendor file without the leak watch's bookkeeping (its keys are not secrets)."""
    out = io.StringIO()
    out.write("ICCID,IMSI,Ki,OPc\n")
    for n in range(count):
        iccid = Iccid.with_check_digit(f"8944{seed:04d}{n:010d}").value
        k = "zz" * 16 if bad_every and n % bad_every == 0 else f"{n:032x}"
        out.write(f"{iccid},001{seed:02d}{n:010d},{k},{n + 1:032x}\n")
    return out.getvalue()


def _count_sims(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(schema.sims)) or 0)


def test_errors_are_capped_and_counted_and_nothing_is_imported(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    before = _count_sims(api.engine)
    r = api.client.post(
        "/api/v1/stock-imports?filename=bad.csv",
        content=_rows(2500, bad_every=10),  # 250 bad rows among 2,500
        headers={**alpha.org.auth(), **CSV},
    )
    assert r.status_code == 422, r.text
    assert len(r.json()["errors"]) == MAX_ERRORS
    assert r.json()["detail"] == (
        "the file has 250 error(s), the first 100 listed; nothing was imported"
    )
    assert r.json()["errors"][0] == {
        "line": 2,
        "field": "k",
        "message": "K must be 32 hexadecimal digits",
    }
    assert _count_sims(api.engine) == before
    stored = api.client.get("/api/v1/stock-imports?limit=1", headers=alpha.org.auth()).json()
    (record,) = stored["items"]
    assert (record["status"], record["rows"], record["error_count"]) == ("rejected", 2500, 250)
    assert len(record["errors"]) == MAX_ERRORS


def test_another_orgs_identifier_is_answered_as_any_registered_one(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, beta = two_orgs
    mine, theirs = make_sims(1, seed=71), make_sims(1, seed=72)
    for org, specs in ((alpha, mine), (beta, theirs)):
        r = api.client.post(
            "/api/v1/stock-imports", content=stock_csv(specs), headers={**org.org.auth(), **CSV}
        )
        assert r.status_code == 201, r.text
    answers = []
    for specs in (mine, theirs):  # alpha again: its own SIM, then beta's
        r = api.client.post(
            "/api/v1/stock-imports", content=stock_csv(specs), headers={**alpha.org.auth(), **CSV}
        )
        assert r.status_code == 422
        answers.append(r.json())
    assert answers[0] == answers[1]  # byte for byte the same answer
    assert answers[0]["errors"] == [
        {"line": 2, "field": "iccid", "message": "ICCID, IMSI and MSISDN are already registered"}
    ]
    assert beta.org.id not in str(answers[1])


def test_a_reimport_lists_each_registered_row_once_and_imports_nothing(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    old, new = make_sims(2, seed=73), make_sims(2, seed=74)
    first = api.client.post(
        "/api/v1/stock-imports", content=stock_csv(old), headers={**alpha.org.auth(), **CSV}
    )
    assert first.status_code == 201, first.text
    before = _count_sims(api.engine)
    # One old row with its MSISDN left out: that row names only what it repeats.
    lines = stock_csv([*old, *new]).splitlines()
    assert old[1].msisdn is not None
    lines[2] = lines[2].replace(old[1].msisdn, "")
    again = api.client.post(
        "/api/v1/stock-imports?filename=again.csv",
        content="\n".join(lines) + "\n",
        headers={**alpha.org.auth(), **CSV},
    )
    assert again.status_code == 422, again.text
    assert again.json()["errors"] == [
        {"line": 2, "field": "iccid", "message": "ICCID, IMSI and MSISDN are already registered"},
        {"line": 3, "field": "iccid", "message": "ICCID and IMSI are already registered"},
    ]
    assert again.json()["detail"] == ("the file has 2 error(s); nothing was imported")
    assert _count_sims(api.engine) == before


def test_stock_imports_are_paginated(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    for n in range(5):
        api.client.post(
            f"/api/v1/stock-imports?filename=f{n}.csv",
            content=stock_csv(make_sims(1, seed=80 + n)),
            headers={**alpha.org.auth(), **CSV},
        )
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = api.client.get(
            f"/api/v1/stock-imports?limit=2{cursor}", headers=alpha.org.auth()
        ).json()
        seen += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    everything = api.client.get("/api/v1/stock-imports", headers=alpha.org.auth()).json()
    assert seen == [i["id"] for i in everything["items"]]
    assert len(seen) == len(set(seen)) >= 5
    bad = api.client.get("/api/v1/stock-imports?cursor=nonsense", headers=alpha.org.auth())
    assert bad.status_code in (400, 422)


def test_a_body_over_the_limit_is_413_and_changes_nothing(
    api: ApiHarness, two_orgs: tuple[World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha, _ = two_orgs
    monkeypatch.setattr(routes_inventory, "MAX_IMPORT_BYTES", 4096)
    before = _count_sims(api.engine)
    r = api.client.post(
        "/api/v1/stock-imports", content=_rows(100), headers={**alpha.org.auth(), **CSV}
    )
    assert r.status_code == 413
    assert _count_sims(api.engine) == before
    listed = api.client.get("/api/v1/stock-imports", headers=alpha.org.auth()).json()["items"]
    assert all(i["filename"] != "upload.csv" for i in listed)


def test_a_file_that_is_not_utf8_midway_imports_nothing(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    body = _rows(3000).encode() + b"\xff\xfe,,,\n"
    r = api.client.post("/api/v1/stock-imports", content=body, headers={**alpha.org.auth(), **CSV})
    assert r.status_code in (400, 422)
    assert "UTF-8" in r.text


def test_streamed_import_is_all_or_nothing(engine: Engine, sealer: Sealer) -> None:
    from ztsim.clock import utc_now
    from ztsim.identity import repository as identities

    with engine.begin() as conn:
        org = identities.create_org(conn, "Org", "org", utc_now())
    text = _rows(12000, seed=66)
    good = service.import_stock_file(
        engine,
        sealer,
        org.id,
        lambda: io.StringIO(text, newline=""),
        filename="a.csv",
        kind=SimKind.PHYSICAL,
        actor="test",
        now=utc_now(),
    )
    assert (good.status, good.imported, _count_sims(engine)) == ("imported", 12000, 12000)
    # The same file plus one new row: every old row is registered; nothing is added.
    again = text + _rows(12001, seed=66).splitlines()[-1] + "\n"
    bad = service.import_stock_file(
        engine,
        sealer,
        org.id,
        lambda: io.StringIO(again, newline=""),
        filename="b.csv",
        kind=SimKind.PHYSICAL,
        actor="test",
        now=utc_now(),
    )
    # One error per registered row, whatever number of its identifiers are taken.
    assert (bad.status, bad.error_count, len(bad.errors)) == ("rejected", 12000, MAX_ERRORS)
    assert bad.errors[0] == {
        "line": 2,
        "field": "iccid",
        "message": "ICCID and IMSI are already registered",
    }
    assert _count_sims(engine) == 12000


def test_the_api_keeps_answering_during_a_large_import(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    body = _rows(100_000, seed=77)
    result: dict[str, object] = {}

    def run_import() -> None:
        r = api.client.post(
            "/api/v1/stock-imports?filename=big.csv",
            content=body,
            headers={**alpha.org.auth(Role.OPERATOR), **CSV},
        )
        result["status"] = r.status_code

    importer = threading.Thread(target=run_import)
    started = time.monotonic()
    importer.start()
    latencies: list[float] = []
    # Bounded: at most 400 requests and 120 s, whichever ends first.
    while importer.is_alive() and len(latencies) < 400 and time.monotonic() - started < 120:
        t0 = time.monotonic()
        r = api.client.get("/api/v1/sims?limit=1", headers=alpha.org.auth())
        assert r.status_code == 200
        latencies.append(time.monotonic() - t0)
        time.sleep(0.02)
    importer.join(timeout=120)
    assert result.get("status") == 201
    assert len(latencies) >= 10, latencies  # the import took a while, and requests got in
    latencies.sort()
    median, worst = latencies[len(latencies) // 2], latencies[-1]
    print(
        f"\n{len(latencies)} requests during the import: median {median:.3f}s, worst {worst:.3f}s"
    )
    assert median < 0.25
    # On SQLite a request's transaction waits for the store phase's write lock (one
    # transaction, for all or nothing); the check phase, most of the time, blocks nobody.
    assert latencies[int(len(latencies) * 0.8)] < 0.5
    assert worst < 10.0  # below SQLite's busy timeout: no request failed for the lock
