"""`ztsim serve dns --workers 2` end to end: policy file, static source, dnsmasq upstream,
kdig client, and the query events it stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from support.dns_gateway_harness import DNSMASQ, KDIG, dnsmasq, free_port, kdig, records
from support.dns_tls_cert import HOSTNAME, write_cert

pytestmark = [
    pytest.mark.skipif(DNSMASQ is None or KDIG is None, reason="needs dnsmasq and kdig"),
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT workers: Linux"),
]


def _ztsim(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ztsim", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )


def test_serve_dns_with_workers(tmp_path: Path) -> None:
    env = {**os.environ, "ZTSIM_DATA_DIR": str(tmp_path / "data")}
    _ztsim("init", env=env)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        org_id = conn.execute(sa.text("select id from orgs")).scalar_one()
    (tmp_path / "ads.txt").write_text("||ads.test^\nnot a valid line !!\n")
    (tmp_path / "policy.toml").write_text(
        f"""
sample_feeds = true
[lists.ads]
path = "ads.txt"
format = "adblock"
[[orgs]]
id = "{org_id}"
privacy = "blocked-only"
[[orgs.rules]]
id = "ads"
action = "block"
lists = ["ads"]
[[orgs.static]]
address = "127.0.0.1"
identity = "id-cli"
"""
    )
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 www.example.test\n")
    port, tls_port, doh_port = free_port(), free_port(), free_port()
    cert, key = write_cert(tmp_path)
    with dnsmasq(hosts) as upstream:
        env |= {
            "ZTSIM_DNS_TLS_PORT": str(tls_port),
            "ZTSIM_DNS_DOH_PORT": str(doh_port),
            "ZTSIM_DNS_TLS_CERT": str(cert),
            "ZTSIM_DNS_TLS_KEY": str(key),
            "ZTSIM_DNS_PORT": str(port),
            "ZTSIM_DNS_UPSTREAMS": json.dumps([f"127.0.0.1:{upstream}"]),
            "ZTSIM_DNS_POLICY_FILE": str(tmp_path / "policy.toml"),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "ztsim", "serve", "dns", "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out = ""
            for _ in range(50):
                out = kdig(port, "www.example.test", "A")
                if "status: NOERROR" in out:
                    break
                time.sleep(0.2)
            assert records(out)[0][-1] == "192.0.2.1", out
            blocked = kdig(port, "x.ads.test", "A", "+edns")
            assert "EDE: 15 (Blocked): 'blocked by rule ads'" in blocked
            refused = kdig(port, "www.example.test", "A", source="127.0.0.5")
            assert "status: REFUSED" in refused
            # DNS over TLS (RFC 7858), certificate checked against the test CA.
            tls = (f"+tls-ca={cert}", f"+tls-hostname={HOSTNAME}")
            over_tls = kdig(tls_port, *tls, "x.ads.test", "A", "+edns")
            assert "TLS session (TLS1.3)" in over_tls, over_tls
            assert "EDE: 15 (Blocked): 'blocked by rule ads'" in over_tls
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=15)
        assert server.returncode == 0, stderr
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select subject, outcome, payload from events where kind = 'dns.query'")
        ).all()
    engine.dispose()
    payloads = [json.loads(r[2]) if isinstance(r[2], str) else r[2] for r in rows]
    # blocked-only: no allowed query (over UDP and TLS, x.ads.test was blocked twice)
    assert [p["name"] for p in payloads] == ["x.ads.test", "x.ads.test"]
    assert rows[0][0] == "identity:id-cli"
    assert rows[0][1] == "denied"
