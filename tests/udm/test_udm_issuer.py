"""The batched issuer: the same vectors, refusals and events as `service.generate`, with
SQN blocks that are never reused after a crash and never outlive a resynchronisation,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select, text, update

from udm.usim_model import Usim
from ztsim.db import schema
from ztsim.db.engine import psycopg_conninfo
from ztsim.errors import NotFound, SealingError
from ztsim.events import store as events
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.sealing import Sealer
from ztsim.udm import service
from ztsim.udm.issuer import VectorIssuer, VectorRequest
from ztsim.udm.pg_batches import PgBatches

from support.factories import SimSpec, activate, make_sims, sqn_seq
from support.pg_backends import terminate
from tests_clock import NOW

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
APPLICATION = "ztsim-test-issuer"
IND_BITS = 5


def _active_sim(
    engine: Engine, sealer: Sealer, slug: str = "acme", seed: int = 3
) -> tuple[str, SimSpec]:
    spec = make_sims(1, seed=seed)[0]
    with engine.begin() as conn:
        org = identities.create_org(conn, slug.title(), slug, NOW).id
        activate(conn, sealer, org, spec, NOW)
    return org, spec


class OnALoop:
    """The issuer's event-loop path (batches awaited on the loop that calls, through an
    asyncio PostgreSQL connection), driven from the tests' threads through a loop of its
    own, as a server's requests drive it."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        conninfo = psycopg_conninfo(engine, APPLICATION)
        assert conninfo is not None
        self.issuer = VectorIssuer(
            engine, sealer, rand=random.Random(9).randbytes, pg=PgBatches(conninfo)
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def issue(self, request: VectorRequest) -> service.IssuedVector | service.Refusal:
        future = asyncio.run_coroutine_threadsafe(self.issuer.issue_async(request), self.loop)
        return future.result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.issuer.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


Issuer = VectorIssuer | OnALoop


@pytest.fixture(params=["thread", "loop"])
def issuer(request: pytest.FixtureRequest, engine: Engine, sealer: Sealer) -> Iterator[Issuer]:
    """Each scenario through the flusher thread, and (on PostgreSQL, the one asyncio
    driver here) through the batches awaited on an event loop."""
    if request.param == "thread":
        with VectorIssuer(engine, sealer, rand=random.Random(9).randbytes) as it:
            yield it
        return
    if engine.dialect.name != "postgresql":
        pytest.skip("no asyncio driver for this backend: the thread path serves it")
    on_a_loop = OnALoop(engine, sealer)
    try:
        yield on_a_loop
    finally:
        on_a_loop.close()


def _issue(
    issuer: Issuer,
    org: str,
    spec: SimSpec,
    *,
    node: str = "ausf-1",
    resync: service.Resynchronization | None = None,
) -> service.IssuedVector:
    issued = issuer.issue(VectorRequest(org, spec.imsi, SNN, node, NOW, resync))
    assert isinstance(issued, service.IssuedVector), issued
    return issued


def _seq(issued: service.IssuedVector) -> int:
    return issued.sqn >> IND_BITS


def test_concurrent_requests_get_distinct_sqns_in_real_time_order(
    engine: Engine, sealer: Sealer, issuer: Issuer
) -> None:
    """Many threads, one SIM: all SQNs distinct, and a request made after another was
    answered always gets a higher one (as with one UPDATE per vector)."""
    org, spec = _active_sim(engine, sealer)
    clock = itertools.count()
    lock = threading.Lock()

    def one(_: int) -> tuple[int, int, int]:
        with lock:
            asked = next(clock)
        seq = _seq(_issue(issuer, org, spec))
        with lock:
            answered = next(clock)
        return asked, answered, seq

    with ThreadPoolExecutor(max_workers=16) as pool:
        done = list(pool.map(one, range(300)))
    seqs = [seq for _, _, seq in done]
    assert len(set(seqs)) == 300
    for (_, answered, before), (asked, _, after) in itertools.product(done, done):
        if answered < asked:
            assert before < after
    assert sqn_seq(engine, spec) >= max(seqs)  # the row is a high-water mark


def test_vectors_authenticate_and_resyncs_work_as_with_one_update_per_vector(
    engine: Engine, sealer: Sealer, issuer: Issuer
) -> None:
    """The scenario of test_udm_service's thousand authentications, through the issuer:
    a restored database (SEQ_HE back to 1) is noticed, and the same four resyncs follow."""
    org, spec = _active_sim(engine, sealer)
    usim = Usim(spec.k, spec.opc)
    resyncs = 0
    for n in range(400):
        if n % 100 == 99:
            with engine.begin() as conn:
                conn.execute(
                    update(schema.sims).where(schema.sims.c.iccid == spec.iccid).values(sqn_seq=1)
                )
        v = _issue(issuer, org, spec, node=f"ausf-{n % 3}").vector
        answer = usim.authenticate(v.rand, v.autn, SNN)
        if answer.kind == "sync":
            resyncs += 1
            resync = service.Resynchronization(v.rand, answer.value)
            v = _issue(issuer, org, spec, resync=resync).vector
            answer = usim.authenticate(v.rand, v.autn, SNN)
        assert (answer.kind, answer.value) == ("res", v.xres_star), n
    assert resyncs == 4
    with engine.connect() as conn:
        page, _ = events.query(conn, org, events.EventQuery(kind="aka.resync"))
    assert len(page) == 4


def _burst(issuer: Issuer, org: str, spec: SimSpec, count: int) -> list[int]:
    """Vectors in quick succession, so that the SIM's blocks grow."""
    return [_seq(_issue(issuer, org, spec)) for _ in range(count)]


def test_a_discarded_process_block_is_skipped_never_reused(engine: Engine, sealer: Sealer) -> None:
    org, spec = _active_sim(engine, sealer)
    first = VectorIssuer(engine, sealer)
    issued = _burst(first, org, spec, 20)
    reserved = sqn_seq(engine, spec)
    assert reserved > max(issued)  # a block was reserved ahead
    first.close()  # as if the process died: its block is lost with it
    with VectorIssuer(engine, sealer) as second:
        after = _burst(second, org, spec, 5)
    # The rest of the first block (max(issued), reserved] is skipped, never issued.
    assert min(after) == reserved + 1


def test_a_killed_process_never_has_its_sqns_reissued(engine: Engine, sealer: Sealer) -> None:
    """A child process issues vectors and is killed with SIGKILL mid-run; the next
    process's SQNs are above every SQN the child printed."""
    org, spec = _active_sim(engine, sealer)
    search_path = None
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            search_path = conn.execute(text("SHOW search_path")).scalar_one()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, engine.url.render_as_string(hide_password=False)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(f"{org}\n{spec.imsi}\n{search_path or ''}\n")
    child.stdin.close()
    try:
        printed = [int(child.stdout.readline()) for _ in range(40)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    with VectorIssuer(engine, sealer) as after:
        next_seq = _seq(_issue(after, org, spec))
    assert next_seq > max(printed)


# The child: the test KEK (tests/conftest.py), one SIM, vectors until killed.
_CHILD = """
import sys
from ztsim.clock import utc_now
from ztsim.db.engine import make_engine
from ztsim.sealing import Sealer
from ztsim.udm.issuer import VectorIssuer, VectorRequest
from ztsim.udm.pg_batches import PgBatches
org, imsi, search_path = (sys.stdin.readline().strip() for _ in range(3))
engine = make_engine(sys.argv[1], schema=search_path or None)
issuer = VectorIssuer(engine, Sealer(bytes(range(32))))
for _ in range(100_000):
    v = issuer.issue(VectorRequest(org, imsi, "5G:mnc001.mcc001.3gppnetwork.org", "k", utc_now()))
    print(v.sqn >> 5, flush=True)
"""


def test_a_resync_drops_the_block_in_this_process_and_in_others(
    engine: Engine, sealer: Sealer
) -> None:
    org, spec = _active_sim(engine, sealer)
    usim = Usim(spec.k, spec.opc)
    with VectorIssuer(engine, sealer) as a, VectorIssuer(engine, sealer) as b:
        early = _issue(a, org, spec).vector
        assert usim.authenticate(early.rand, early.autn, SNN).kind == "res"
        _burst(a, org, spec, 40)  # never used: the USIM still stands at the first
        assert sqn_seq(engine, spec) > 41  # a holds a block reserved ahead
        for resyncing, other in ((a, b), (b, a)):
            stale = _issue(other, org, spec)  # from a block reserved ahead
            replay = usim.authenticate(early.rand, early.autn, SNN)
            assert replay.kind == "sync"
            resync = service.Resynchronization(early.rand, replay.value)
            fresh = _issue(resyncing, org, spec, resync=resync)
            # SEQ_HE moved back to SEQ_MS: every later vector, from either process,
            # continues from there, not from a block reserved before.
            assert _seq(fresh) == usim.window.highest_seq + 1
            assert _seq(_issue(resyncing, org, spec)) == _seq(fresh) + 1
            assert _seq(_issue(other, org, spec)) == _seq(fresh) + 2
            assert _seq(_issue(resyncing, org, spec)) == _seq(fresh) + 3
            assert _seq(fresh) < _seq(stale)  # moved back: old SEQs issued again, as before


def test_another_writer_moving_the_row_is_noticed(
    engine: Engine, sealer: Sealer, issuer: Issuer
) -> None:
    org, spec = _active_sim(engine, sealer)
    _burst(issuer, org, spec, 20)
    with engine.begin() as conn:  # the one-vector path (`ztsim aka vector`)
        one = service.generate(
            conn,
            sealer,
            org,
            spec.imsi,
            serving_network_name=SNN,
            node_id="cli",
            now=NOW,
            rand=os.urandom,
        )
    assert isinstance(one, service.IssuedVector)
    assert _seq(_issue(issuer, org, spec)) == _seq(one) + 1


def test_refusals_and_unknown_supis_as_before(
    engine: Engine, sealer: Sealer, issuer: Issuer
) -> None:
    org, spec = _active_sim(engine, sealer)
    other, _ = _active_sim(engine, sealer, "other", seed=4)
    with pytest.raises(NotFound):
        issuer.issue(VectorRequest(other, spec.imsi, SNN, "a", NOW))
    with pytest.raises(NotFound):
        issuer.issue(VectorRequest(org, "001019999999999", SNN, "a", NOW))
    _burst(issuer, org, spec, 5)
    with engine.begin() as conn:
        inventory.change_state(
            conn, org, spec.iccid, SimAction.SUSPEND, actor="t", reason="lost", now=NOW
        )
    # Its block still holds SEQs: the state is checked for every vector all the same.
    refusal = issuer.issue(VectorRequest(org, spec.imsi, SNN, "a", NOW))
    assert refusal == service.Refusal("the SIM is suspended, not active")
    with engine.connect() as conn:
        page, _ = events.query(conn, org, events.EventQuery(kind="aka.refused"))
    assert [e.subject for e in page] == [f"sim:{spec.iccid}"]


def _together(issuer: Issuer, requests: list[VectorRequest]) -> list[object]:
    """Each request's answer or exception, the requests handed in at once (on the loop:
    in one turn, so in one batch)."""
    if isinstance(issuer, OnALoop):

        async def at_once() -> list[object]:
            futures = [issuer.issuer.issue_soon(request) for request in requests]
            return list(await asyncio.gather(*futures, return_exceptions=True))

        return asyncio.run_coroutine_threadsafe(at_once(), issuer.loop).result(30)

    def one(request: VectorRequest) -> object:
        try:
            return issuer.issue(request)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_a_key_that_does_not_open_fails_its_own_request_only(
    engine: Engine, sealer: Sealer, issuer: Issuer
) -> None:
    """A SIM whose keys were sealed under a key-encryption key this process lacks: its
    request fails with the sealing error, the others beside it are answered."""
    org, good = _active_sim(engine, sealer)
    elsewhere, sealed_away = _active_sim(engine, Sealer(b"\x07" * 32), "away", seed=4)
    answers = _together(
        issuer,
        [
            VectorRequest(org, good.imsi, SNN, "a", NOW),
            VectorRequest(elsewhere, sealed_away.imsi, SNN, "a", NOW),
            VectorRequest(org, good.imsi, SNN, "a", NOW),
        ],
    )
    first, failed, last = answers
    assert isinstance(failed, SealingError)
    assert isinstance(first, service.IssuedVector)
    assert isinstance(last, service.IssuedVector)
    assert first.sqn != last.sqn


def test_on_the_loop_a_current_block_answers_before_a_reservation_commits(
    engine: Engine, sealer: Sealer
) -> None:
    """One batch: a SIM with SEQs left in its block, and one that needs a reservation
    whose row another transaction holds locked. The first is answered while the
    reservation waits; the second once the lock goes, with a SEQ of its own."""
    if engine.dialect.name != "postgresql":
        pytest.skip("no asyncio driver for this backend")
    org, current = _active_sim(engine, sealer)
    other, fresh = _active_sim(engine, sealer, "fresh", seed=4)
    on_a_loop = OnALoop(engine, sealer)
    try:
        issued = _burst(on_a_loop, org, current, 5)
        assert sqn_seq(engine, current) > max(issued)  # its block has SEQs left

        Answer = asyncio.Future[service.IssuedVector | service.Refusal]

        async def submit() -> tuple[Answer, Answer]:
            soon = on_a_loop.issuer.issue_soon
            return (
                soon(VectorRequest(org, current.imsi, SNN, "ausf-1", NOW)),
                soon(VectorRequest(other, fresh.imsi, SNN, "ausf-1", NOW)),
            )

        async def settled(future: Answer, seconds: float) -> bool:
            await asyncio.wait([future], timeout=seconds)
            return future.done()

        def on_loop(coroutine: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coroutine, on_a_loop.loop).result(30)

        with engine.connect() as locker:
            sims = schema.sims
            locker.execute(
                select(sims.c.id).where(sims.c.imsi == fresh.imsi).with_for_update()
            ).all()
            early, late = on_loop(submit())
            assert on_loop(settled(early, 10))
            assert not on_loop(settled(late, 0.3))  # its reservation waits for the lock
            locker.rollback()
        assert on_loop(settled(late, 10))
        answered_early, answered_late = early.result(), late.result()
    finally:
        on_a_loop.close()
    assert isinstance(answered_early, service.IssuedVector)
    assert isinstance(answered_late, service.IssuedVector)
    assert _seq(answered_early) == max(issued) + 1
    assert _seq(answered_late) == sqn_seq(engine, fresh)


def test_the_loop_path_and_the_thread_path_never_share_an_sqn(
    engine: Engine, sealer: Sealer
) -> None:
    """One issuer, called from its home loop and from another loop (whose batches go to
    the flusher thread) at once: every SQN distinct."""
    if engine.dialect.name != "postgresql":
        pytest.skip("no asyncio driver for this backend")
    org, spec = _active_sim(engine, sealer)
    on_a_loop = OnALoop(engine, sealer)
    try:
        _issue(on_a_loop, org, spec)  # the loop becomes the issuer's home

        def elsewhere(_: int) -> int:
            async def one() -> int:
                issued = await on_a_loop.issuer.issue_async(
                    VectorRequest(org, spec.imsi, SNN, "a", NOW)
                )
                assert isinstance(issued, service.IssuedVector)
                return _seq(issued)

            return asyncio.run(one())

        with ThreadPoolExecutor(max_workers=8) as pool:
            home = pool.map(lambda _: _seq(_issue(on_a_loop, org, spec)), range(150))
            other = pool.map(elsewhere, range(30))
            seqs = [*home, *other]
    finally:
        on_a_loop.close()
    assert len(set(seqs)) == len(seqs) == 180


def test_the_loop_path_reconnects_after_losing_its_connection(
    engine: Engine, sealer: Sealer
) -> None:
    """PostgreSQL restarted or the connection killed: the batch that finds it gone fails
    (its callers answered 503 by the API), and the next one connects afresh."""
    if engine.dialect.name != "postgresql":
        pytest.skip("no asyncio driver for this backend")
    org, spec = _active_sim(engine, sealer)
    on_a_loop = OnALoop(engine, sealer)
    try:
        before = _seq(_issue(on_a_loop, org, spec))
        killed = terminate(engine, APPLICATION)
        assert killed == 1
        with pytest.raises(psycopg.OperationalError):
            _issue(on_a_loop, org, spec)
        after = _seq(_issue(on_a_loop, org, spec))
    finally:
        on_a_loop.close()
    assert after > before


def test_issue_soon_answers_callbacks_on_the_home_loop_and_elsewhere(
    engine: Engine, sealer: Sealer
) -> None:
    """`issue_soon` is for callers that are not coroutines (a server's protocol): on the
    home loop its future is settled by the batch itself, on another loop by a task of
    `issue_async`; an answer nobody waits for any more (cancelled) leaves the batch to the
    others."""
    if engine.dialect.name != "postgresql":
        pytest.skip("no asyncio driver for this backend")
    org, spec = _active_sim(engine, sealer)
    on_a_loop = OnALoop(engine, sealer)
    request = VectorRequest(org, spec.imsi, SNN, "a", NOW)
    try:
        _issue(on_a_loop, org, spec)  # the loop becomes the issuer's home

        async def from_callbacks() -> list[int]:
            futures = [on_a_loop.issuer.issue_soon(request) for _ in range(12)]
            assert not any(isinstance(f, asyncio.Task) for f in futures)  # no task each
            futures[3].cancel()
            await asyncio.wait(futures)
            assert futures[3].cancelled()
            issued = [f.result() for i, f in enumerate(futures) if i != 3]
            assert all(isinstance(v, service.IssuedVector) for v in issued)
            return [v.sqn >> IND_BITS for v in issued if isinstance(v, service.IssuedVector)]

        home = asyncio.run_coroutine_threadsafe(from_callbacks(), on_a_loop.loop).result(30)

        async def elsewhere() -> int:
            issued = await on_a_loop.issuer.issue_soon(request)
            assert isinstance(issued, service.IssuedVector)
            return _seq(issued)

        other = asyncio.run(elsewhere())
        after = _seq(_issue(on_a_loop, org, spec))
    finally:
        on_a_loop.close()
    seqs = [*home, other, after]
    assert len(set(seqs)) == len(seqs) == 13
    assert home == sorted(home)
