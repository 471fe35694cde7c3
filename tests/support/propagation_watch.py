"""Watching a running site from the outside while a change is made: the first REFUSED
(with an Extended DNS Error) or the first answer for a UE address, and the first
Disconnect-Request at a gateway; latencies measured from the change's audit timestamp,
printed (`pytest -s`) and kept for the run's summary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from support.leaks import LEAKS
from support.propagation_probes import Gateway, ask, first_time
from support.propagation_world import PROBE_ADDRESS, PROBE_NAME, Site, Subscriber

LIMIT = 1.0  # issue 15: a change lands everywhere within a second
# How long a change is watched after it returned, so a late landing is measured too.
WINDOW = 5.0
# How long a first attach may take to reach the DNS gateway before a revocation test
# starts (not what those tests measure: the new-session test does).
SETTLE = 15.0
Probe = Callable[[float], float | None]  # (when the change started) -> when it was seen
MEASURED: list[str] = []  # one line per measurement, for the summary at the end


def refused(site: Site, address: str) -> float | None:
    reply = ask(address, site.dns, PROBE_NAME)
    return reply.at if reply is not None and reply.refused else None


def answered(site: Site, address: str) -> float | None:
    reply = ask(address, site.dns, PROBE_NAME)
    return reply.at if reply is not None and reply.answered(PROBE_ADDRESS) else None


def live(site: Site, gateway: Gateway, sub: Subscriber) -> str:
    """Attach `sub` and wait until its address gets answers; returns the address."""
    result = gateway.attach(sub.device)
    assert result.accepted, result.reply_message
    assert result.address is not None
    address = str(result.address)
    at = first_time(lambda: answered(site, address), time.time() + SETTLE)
    assert at is not None, f"the new session's address got no answer within {SETTLE} s"
    return address


def watch(change: Callable[[], None], probes: dict[str, Probe]) -> tuple[float, dict[str, float]]:
    """Make `change` (on a thread of its own, so a landing before it returns is seen) and
    poll every probe until each has seen its effect or WINDOW has passed since the change
    returned. Returns when the change started and what each probe saw when."""
    started = time.time()
    returned: list[float] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            change()
        except BaseException as exc:
            failed.append(exc)
        finally:
            returned.append(time.time())

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    seen: dict[str, float] = {}
    while len(seen) < len(probes):
        for name, probe in probes.items():
            if name not in seen:
                at = probe(started)
                if at is not None:
                    seen[name] = at
        if returned and time.time() > returned[0] + WINDOW:
            break
        time.sleep(0.005)
    thread.join(timeout=180)
    if failed:
        raise failed[0]
    assert returned, "the change did not return"
    return started, seen


def revocation_probes(site: Site, gateway: Gateway, address: str) -> dict[str, Probe]:
    def disconnect(started: float) -> float | None:
        seen = gateway.disconnect_for(address, started)
        return None if seen is None else seen.at

    return {"Disconnect-Request": disconnect, "REFUSED": lambda _: refused(site, address)}


def report(
    case: str,
    site: Site,
    sub: Subscriber,
    kind: str,
    started: float,
    seen: dict[str, float],
    probes: list[str],
) -> dict[str, float | None]:
    """Latencies from the change's audit timestamp (else from when it was sent); printed."""
    stamped = site.change_time(sub.iccid, kind)
    origin = stamped if stamped is not None else started
    latencies = {name: (seen[name] - origin if name in seen else None) for name in probes}
    shown = ", ".join(f"{name} {ms(v)}" for name, v in latencies.items())
    since = "audit timestamp" if stamped is not None else "request sent (no audit event found)"
    line = f"{case}: {shown} (from the {since})"
    MEASURED.append(line)
    print(f"\n[propagation] {line}")
    return latencies


def ms(seconds: float | None) -> str:
    return f"not within {WINDOW:.0f} s" if seconds is None else f"{seconds * 1000:.0f} ms"


def assert_within(latencies: dict[str, float | None], *names: str) -> None:
    for name in names:
        value = latencies[name]
        assert value is not None, f"{name}: not seen within {WINDOW} s of the change"
        assert value < LIMIT, f"{name}: {value * 1000:.0f} ms (limit {LIMIT * 1000:.0f} ms)"


def api_post(
    url: str, site: Site, path: str, body: dict[str, object], expect: int
) -> dict[str, object]:
    """A POST as the org's admin; the response is kept for the leak scan."""
    r = httpx.post(
        f"{url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {site.token}"},
        timeout=30,
    )
    where = f"api POST /api/v1{path}"
    LEAKS.add_text(where, r.text)
    assert r.status_code == expect, r.text[:500]
    data: dict[str, object] = r.json()
    if "matching_id" in data:
        # An eSIM (re-)issue shows its matching ID once, in this response only.
        LEAKS.add_secret(str(data["matching_id"]))
        LEAKS.allow_once(where, r.text)
    return data
