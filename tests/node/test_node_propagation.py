"""Issue 15, end to end on the embedded default: every change reaches every plane of a
running `ztsim up` within a second, whichever process makes it.

Each test starts `ztsim up` on a fresh data directory (a real process, loopback ports),
attaches a device through a packet gateway (Access-Request, Accounting-Start), checks
its UE address gets DNS answers, makes one change, and watches from the outside: the
Disconnect-Request reaching the gateway's CoA listener and the first REFUSED (with an
Extended DNS Error) for the address. Latencies are measured from the change's audit
timestamp (stamped before its transaction commits) and printed (`pytest -s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from support.propagation_probes import Gateway, LoopThread, ask, first_time
from support.propagation_watch import (
    MEASURED,
    WINDOW,
    answered,
    api_post,
    assert_within,
    live,
    ms,
    refused,
    report,
    revocation_probes,
    watch,
)
from support.propagation_world import (
    ACK_NAS,
    APN,
    PROBE_ADDRESS,
    PROBE_NAME,
    SILENT_NAS,
    Site,
    Subscriber,
    close,
    provision,
)
from support.ztsim_processes import Process, run_cli, start_api, start_up


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    """Every latency this module measured, together at the end (`pytest -s`)."""
    yield
    if MEASURED:
        print("\n[propagation] summary:\n  " + "\n  ".join(MEASURED))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    world = provision(tmp_path / "data")
    yield world
    close(world)


@pytest.fixture
def up(site: Site) -> Iterator[Process]:
    process = start_up(site)
    yield process
    process.stop()


@pytest.fixture
def gateways(site: Site, up: Process) -> Iterator[dict[str, Gateway]]:
    """The acknowledging gateway (ACK_NAS) and the one that never answers (SILENT_NAS)."""
    loop = LoopThread()
    made = {
        nas: Gateway(
            loop,
            nas,
            site.radius_auth,
            site.radius_acct,
            site.secrets[nas],
            site.coa_ports[nas],
            APN,
            answer_coa=nas == ACK_NAS,
        )
        for nas in (ACK_NAS, SILENT_NAS)
    }
    try:
        for gateway in made.values():
            gateway.start()
        yield made
    finally:
        for gateway in made.values():
            gateway.close()
        loop.close()


def revoke_case(
    case: str,
    site: Site,
    gateway: Gateway,
    sub: Subscriber,
    change: Callable[[], None],
    kind: str,
) -> None:
    address = live(site, gateway, sub)
    probes = revocation_probes(site, gateway, address)
    started, seen = watch(change, probes)
    assert_within(report(case, site, sub, kind, started, seen, list(probes)), *probes)


# -- 1-4: each way a SIM is revoked disconnects the session and refuses its DNS ----------


def test_esim_reissue_disconnects_the_old_sim_and_refuses_its_address(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    sub = site.esim_enabled

    def reissue() -> None:
        path = f"/esim/orders/{sub.order_id}/reissue"
        api_post(site.api_url, site, path, {"reason": "phone lost"}, 201)

    revoke_case("eSIM re-issue (API)", site, gateways[ACK_NAS], sub, reissue, "sim.retire")


def test_esim_cancel_disconnects_its_sim_and_refuses_its_address(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    sub = site.esim_downloaded

    def cancel() -> None:
        api_post(site.api_url, site, f"/esim/orders/{sub.order_id}/cancel", {"reason": "left"}, 200)

    revoke_case("eSIM cancel (API)", site, gateways[ACK_NAS], sub, cancel, "sim.retire")


def test_cli_suspend_in_another_process_reaches_the_running_node(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    sub = site.physical[0]

    def suspend() -> None:
        done = run_cli(site, "sims", "suspend", sub.iccid, "--reason", "reported stolen")
        assert done.returncode == 0, done.stdout + done.stderr

    revoke_case("suspend (CLI process)", site, gateways[ACK_NAS], sub, suspend, "sim.suspend")


def test_suspend_through_a_separate_api_process_reaches_the_running_node(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    sub = site.physical[1]
    api, url = start_api(site)
    try:

        def suspend() -> None:
            api_post(url, site, f"/sims/{sub.iccid}/suspend", {"reason": "reported stolen"}, 200)

        revoke_case(
            "suspend (separate serve api)", site, gateways[ACK_NAS], sub, suspend, "sim.suspend"
        )
    finally:
        api.stop()


# -- 5: revocation does not wait for the packet gateway's cooperation -------------------

STILL = 7.0  # seconds after a suspend when its address must still be refused


def test_gateway_that_never_answers_coa_cannot_keep_a_suspended_sim_online(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    gateway, sub = gateways[SILENT_NAS], site.physical[0]
    address = live(site, gateway, sub)
    probes = revocation_probes(site, gateway, address)

    def suspend() -> None:
        api_post(site.api_url, site, f"/sims/{sub.iccid}/suspend", {"reason": "stolen"}, 200)

    started, seen = watch(suspend, probes)
    latencies = report(
        "suspend, gateway never answers CoA", site, sub, "sim.suspend", started, seen, list(probes)
    )
    assert_within(latencies, "REFUSED")
    again = gateway.attach(sub.device)
    assert not again.timed_out, "the Access-Request went unanswered"
    assert not again.accepted, "a suspended SIM was accepted"
    # Its session row is still live (never acknowledged): a later rebuild from the
    # session table (today's DNS reload is every 5 s) must not bring the address back.
    time.sleep(max(0.0, started + STILL - time.time()))
    later = ask(address, site.dns, PROBE_NAME)
    assert later is not None, f"no DNS reply {STILL} s after the suspend"
    assert later.refused, f"{STILL} s after the suspend: {later}"


# -- 6: a new session is known before its Accounting-Start is acknowledged ---------------


def test_new_session_is_answered_on_its_first_query(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    gateway = gateways[ACK_NAS]
    firsts = []
    for sub in site.physical[:3]:
        result = gateway.attach(sub.device)  # returns once the Accounting-Response arrived
        acknowledged = time.time()
        assert result.accepted, result.reply_message
        address = str(result.address)
        first = ask(address, site.dns, PROBE_NAME, timeout=1.0)
        ok = first is not None and first.answered(PROBE_ADDRESS)
        later = first_time(partial(answered, site, address), acknowledged + WINDOW)
        what = "answered" if ok else "no reply" if first is None else f"rcode {first.rcode}"
        after = None if later is None else later - acknowledged
        line = f"new session: first query {what}; answers after {ms(after)} from the ack"
        MEASURED.append(line)
        print(f"\n[propagation] {line}")
        firsts.append(ok)
    assert all(firsts), f"first queries answered: {firsts}"


# -- 7: resume brings the answers back --------------------------------------------------


def test_resume_brings_answers_back_within_a_second(
    site: Site, gateways: dict[str, Gateway]
) -> None:
    # The gateway never acknowledged the Disconnect-Request: the session is still up, so
    # the device needs no new attach once its SIM is active again.
    gateway, sub = gateways[SILENT_NAS], site.physical[2]
    address = live(site, gateway, sub)

    def suspend() -> None:
        api_post(site.api_url, site, f"/sims/{sub.iccid}/suspend", {"reason": "lost"}, 200)

    _, seen = watch(suspend, {"REFUSED": lambda _: refused(site, address)})
    assert "REFUSED" in seen, f"the suspended SIM's address was not refused within {WINDOW} s"

    def resume() -> None:
        api_post(site.api_url, site, f"/sims/{sub.iccid}/resume", {"reason": "found"}, 200)

    started, seen = watch(resume, {"answers": lambda _: answered(site, address)})
    latencies = report("resume", site, sub, "sim.resume", started, seen, ["answers"])
    assert_within(latencies, "answers")
