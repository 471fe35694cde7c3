"""`ztsim demo` as a new user runs it, in a fresh directory, on free ports: `--once`
tells the story the devices lived; without it the devices stay attached while it serves.
Where the demo's site can run (root, `ip netns`), it does, and its phones' sessions on
the intranet APN count in what the platform recorded."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ztsim.simulator.demo_site import why_not

from support.dns_gateway_harness import KDIG, kdig, records
from support.leaks import LEAKS

CURL = "/usr/bin/curl"
SITE = why_not() == ""
# The site's phones attach on the intranet APN: an employee, the contractor, and the
# employee whose SIM is cloned (a second session of that SIM, cut with the first).
SITE_ATTACHES = 3 if SITE else 0
SITE_CUT = 1 if SITE else 0  # the cloned SIM's intranet session, disconnected with its first
SITE_LIVE = 2 if SITE else 0


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "ZTSIM_API_PORT": str(_free(socket.SOCK_STREAM)),
        "ZTSIM_RADIUS_AUTH_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_RADIUS_ACCT_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_DNS_PORT": str(_free(socket.SOCK_DGRAM)),
        # One line per sentence: the checks below find names and ICCIDs whole.
        "COLUMNS": "400",
        "PYTHONUNBUFFERED": "1",
    }


def _events(db: Path, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(subject, reason, payload) of each event of `kind`, straight from the demo's database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT subject, reason, payload FROM events WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()
    return [(s, r, json.loads(p)) for s, r, p in rows]


def _one(db: Path, sql: str, *args: str) -> tuple[Any, ...]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None, (sql, args)
    return tuple(row)


def _owner_of(db: Path, iccid: str) -> str:
    return str(
        _one(
            db,
            "SELECT i.name FROM sims s JOIN identities i ON i.id = s.identity_id WHERE s.iccid = ?",
            iccid,
        )[0]
    )


def _check_story(stdout: str, story: dict[str, Any], db: Path) -> None:
    """The story names whom the database says: each actor read from the recorded events."""
    phishing = [e for e in _events(db, "dns.query") if e[2].get("rule") == "phishing"]
    assert len(phishing) == 1
    subject, _, payload = phishing[0]
    name, email = _one(db, "SELECT name, email FROM identities WHERE id = ?", subject[9:])
    assert [(b["who"]["name"], b["who"]["email"], b["domain"]) for b in story["phished"]] == [
        (name, email, payload["name"])
    ]
    assert f"Phished: {name} <{email}> looked up {payload['name']}: blocked" in stdout

    (clone_subject, clone_reason, clone), *more = _events(db, "risk.clone")
    assert not more
    iccid = clone_subject.removeprefix("sim:")
    [cloned] = story["cloned"]
    assert (cloned["iccid"], cloned["owner"]["name"]) == (iccid, _owner_of(db, iccid))
    assert (cloned["reason"], cloned["tried_imei"]) == (clone_reason, clone["imei"])
    assert cloned["signals"] == ["twin_session"]
    # Suspended by the detector's automatic response, not by a person.
    assert [by.partition(":")[0] for by in cloned["suspended_by"]] == ["risk"]
    [(finding_subject, _, finding)] = _events(db, "risk.finding")
    assert finding_subject == clone_subject
    assert finding["detector"] == "twin_session"
    cuts = [e[2] for e in _events(db, "radius.disconnect") if e[0] == clone_subject]
    assert len(cuts) == 1 + SITE_CUT
    assert cloned["disconnected"] == [cut["ue_address"] for cut in cuts]
    assert f"Cloned SIM: ICCID {iccid} ({_owner_of(db, iccid)}" in stdout
    assert "caught by twin session" in stdout

    [(swap_subject, swap_reason, swap)] = _events(db, "risk.device_swap")
    stolen_iccid = swap_subject.removeprefix("sim:")
    [stolen] = story["stolen"]
    assert (stolen["iccid"], stolen["owner"]["name"]) == (stolen_iccid, _owner_of(db, stolen_iccid))
    assert (stolen["reason"], stolen["tried_imei"]) == (swap_reason, swap["imei"])
    assert f"Stolen SIM: ICCID {stolen_iccid} ({_owner_of(db, stolen_iccid)})" in stdout
    assert "refused the attach (imei_mismatch)" in stdout


def _check_site(stdout: str, db: Path) -> None:
    """An employee reached the intranet, the contractor was refused and audited, and the
    cloned SIM's open connection stopped within a second of its suspension."""
    if not SITE:
        assert f"site: skipped, {why_not()}" in stdout
        return
    reached = re.search(r"site: (.+) reached the intranet at \S+ over APN intranet.acme "
                        r"\(200 in (\d+) ms\)", stdout)  # fmt: skip
    assert reached is not None, stdout
    assert int(reached.group(2)) < 1000
    contractor = "John von Neumann"
    line = f"site: {contractor}, a contractor, was refused (net.flow denied, rule default deny)"
    assert line in stdout
    (identity,) = _one(db, "SELECT id FROM identities WHERE name = ?", contractor)
    flows = _events(db, "net.flow")
    [(reason, flow)] = [(r, f) for s, r, f in flows if s == f"identity:{identity}"]
    assert (reason, flow["rule"], flow["port"]) == ("policy_denied", None, 80)
    # Any other denial is the cut connection's next packet: its SIM is suspended now.
    assert {(r, tuple(f["policy_reasons"])) for s, r, f in flows if f is not flow} <= {
        ("no_session", ("sim:not-active",))
    }
    cut = re.search(r"site: the cloned SIM's open connection to the intranet \((.+)'s\) "
                    r"was cut (\d+) ms after the suspension \(its last answer: ([-+]\d+) ms\)",
                    stdout)  # fmt: skip
    assert cut is not None, stdout
    (cloned,) = _one(db, "SELECT subject FROM events WHERE kind = 'risk.clone'")
    assert cut.group(1) == _owner_of(db, str(cloned).removeprefix("sim:"))
    # Measured at the gateway: the role took the address out of its classes. The phone's
    # last answer came before that (a request in flight at the cut is never answered),
    # give or take the threads' scheduling in one busy process.
    assert 0 < int(cut.group(2)) < 1000
    assert int(cut.group(3)) <= int(cut.group(2)) + 50
    assert "site: " not in stdout.split("What the platform recorded")[1]


def test_demo_once_tells_the_story_the_devices_lived(tmp_path: Path) -> None:
    env = _env()
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    LEAKS.add_text("cli demo", done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    platform, devices = figures["platform"], figures["devices"]

    # The scenario's expected outcomes: 20 phones and 9 meters attach; the cloned SIM
    # and the stolen meter SIM are refused, each as the risk it is.
    assert devices["attached"] == 29
    assert len(devices["refused"]) == 2
    assert platform["attaches_refused"] == {"clone_suspected": 1, "imei_mismatch": 1}
    assert platform["risk"] == {"risk.clone": 1, "risk.device_swap": 1}
    # One phished employee follows one phishing link; the compromised meter beacons
    # on every other query (6 per device: 3 beacons).
    assert platform["blocks_by_category"] == {"phishing": 1, "command-and-control": 3}
    assert devices["no_answer"] == 0

    # What the platform recorded agrees with what the devices (and the site's) saw.
    assert platform["attaches_accepted"] == devices["attached"] + SITE_ATTACHES
    assert platform["sessions_started"] == devices["attached"] + SITE_ATTACHES
    assert platform["dns_queries"] == devices["answered"] == devices["queries"]
    assert (
        platform["dns_blocked"]
        == devices["blocked"]
        == sum(platform["blocks_by_category"].values())
    )
    assert sorted(platform["blocks_by_identity"].values()) == sorted(
        devices["blocked_by_device"].values()
    )
    # The org's response to a twin session (suspend) cut the cloned SIM's genuine session
    # within a second of the twin's refusal, with no admin involved.
    assert platform["disconnects"] == 1 + SITE_CUT
    assert platform["revocation_ms"] is not None
    assert 0 < platform["revocation_ms"] < 1000
    # A re-issue asked for during the run waits for a second admin: nothing swapped.
    swap = figures["prevented_swap"]
    assert swap["state"] == "pending"
    assert f"Prevented swap: a re-issue of {swap['person']}'s eSIM" in done.stdout

    assert "ztsim demo" in done.stdout
    _check_story(done.stdout, figures["story"], tmp_path / "ztsim-demo" / "ztsim.db")
    # Every cut session but the clone's genuine one is still up when the summary is read.
    live = figures["story"]["allowed"]["live_sessions"]
    assert live == devices["attached"] - 1 + SITE_LIVE
    _check_site(done.stdout, tmp_path / "ztsim-demo" / "ztsim.db")
    # Progress, one line per step as it goes, all before the summary.
    steps = ["identities:", "SIMs:", "eSIM orders:", "gateway:", "roles:", "operator: attaching"]
    at = [done.stdout.find(step) for step in steps]
    assert -1 not in at, at
    assert at == sorted(at), at
    assert (
        at[-1] < done.stdout.find("What the platform recorded") < done.stdout.find("What happened")
    )
    pack = tmp_path / "ztsim-demo" / "onboarding-pack.zip"
    assert pack.stat().st_mode & 0o777 == 0o600
    # Run again: the demo directory is recreated, not refused.
    again = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]


def test_demo_never_wipes_a_directory_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "ztsim-demo"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not made by `ztsim demo`" in done.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def _read_until(process: subprocess.Popen[str], marker: str, deadline: float) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in:\n" + "\n".join(lines))


def _query_serving(process: subprocess.Popen[str], env: dict[str, str]) -> None:
    """Ask the serving demo as a user would: curl for its sessions, kdig from one of them."""
    lines = _read_until(process, "admin token (shown once)", time.monotonic() + 120)
    assert process.stdout is not None
    token = process.stdout.readline().strip()
    assert any("operator: attaching" in line for line in lines)
    assert "own page in the console" in process.stdout.readline()
    employee_token = process.stdout.readline().strip()
    api = f"http://127.0.0.1:{env['ZTSIM_API_PORT']}"
    # The employee's token is their own: `self`, tied to them.
    me = subprocess.run(
        [CURL, "-sf", "-H", f"Authorization: Bearer {employee_token}", f"{api}/api/v1/me"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(me.stdout)["role"] == "self", me.stdout
    listed = subprocess.run(
        [CURL, "-sf", "-H", f"Authorization: Bearer {token}", f"{api}/api/v1/sessions"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sessions = json.loads(listed.stdout)["items"]
    # 20 phones and 9 meters attached; the cloned SIM's genuine session was cut.
    assert len(sessions) == 28 + SITE_LIVE
    assert all(s["stopped_at"] is None for s in sessions)
    # The DNS gateway knows who asks from a live session's address, and answers it.
    answer = kdig(
        int(env["ZTSIM_DNS_PORT"]), "intranet.acme.test", "A", source=sessions[0]["ue_address"]
    )
    assert "status: NOERROR" in answer, answer
    assert any(r[3] == "A" for r in records(answer)), answer


@pytest.mark.skipif(KDIG is None, reason="kdig (knot-dnsutils) is not installed")
def test_demo_keeps_its_devices_attached_while_it_serves(tmp_path: Path) -> None:
    env = _env()
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            _query_serving(process, env)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert code == 0
    # On stop the gateway detached every device cleanly: each session got its Accounting-Stop.
    db = tmp_path / "ztsim-demo" / "ztsim.db"
    assert _one(db, "SELECT count(*) FROM radius_sessions WHERE stopped_at IS NULL") == (0,)
    stops = [e for e in _events(db, "radius.session_stopped") if e[1] == "stop"]
    assert len(stops) == 28 + SITE_LIVE
