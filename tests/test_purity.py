"""The pure cores load no I/O stack at run time, checked where it counts: a fresh interpreter.

lint-imports (`make lint`) reads import statements; this runs them, so it also catches
what a static graph cannot see (an import inside a function called at import time, a
package `__init__` that pulls a sibling in).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What no pure core may load, and why:
MUST_STAY_OUT = {
    # A heavy import, paid by every DNS worker that loads it: only the domain store's
    # build (DomainStoreBuilder.build) needs it, never a lookup.
    "numpy": "domain store build only",
    # The database belongs to the `store` layers; a core gets its data as values.
    "sqlalchemy": "database",
    # The HTTP stack belongs to the API and DoH adapters.
    "fastapi": "HTTP server",
    "starlette": "HTTP server",
    "uvicorn": "HTTP server",
    # Upstream DoH client: the serve layer's.
    "httpx": "HTTP client",
    # Sockets, event loops and server frameworks are the adapters' (`serve`): a core is
    # called with bytes and a time and returns values.
    "asyncio": "event loop",
    "socket": "sockets",
    "socketserver": "server framework",
}
# Allowed, deliberately: `threading` (the DNS answer cache takes a lock, so several
# serving threads can share one engine).

PURE = [
    "ztsim.dns",
    "ztsim.dns.wire",
    "ztsim.dns.policy",
    "ztsim.dns.engine",
    "ztsim.dns.answered",
    "ztsim.dns.answers",
    "ztsim.dns.answercache",
    "ztsim.dns.querylog",
    "ztsim.radius",
    "ztsim.radius.fastpath",
    "ztsim.radius.aaa.engine",
    "ztsim.radius.aaa.core",
    "ztsim.aka",
    "ztsim.aka.vectors",
    "ztsim.aka.suci",
    "ztsim.identifiers",
    "ztsim.sessions.table",
    "ztsim.feed.change",
    "ztsim.feed.rows",
    "ztsim.sessions.allocator",
    "ztsim.netguard",
    "ztsim.policy.facts",
    "ztsim.policy.conditions",
    "ztsim.policy.syntax",
    "ztsim.policy.evaluation",
    "ztsim.policy.checks",
    "ztsim.policy.rules",
    "ztsim.policy.reasons",
    "ztsim.policy.targets",
    "ztsim.policy.reference",
    "ztsim.policy.compile",
    "ztsim.policy.explain",
    "ztsim.policy.posture",
    "ztsim.policy.diff",
    "ztsim.policy.document",
    "ztsim.policy.durations",
    "ztsim.policy.file_reader",
    "ztsim.policy.file_schema",
    "ztsim.risk.settings",
    "ztsim.risk.approvals",
    "ztsim.risk.clients",
    "ztsim.risk.swap_answers",
    "ztsim.risk.cloudevents",
    "ztsim.risk.subscriptions",
    "ztsim.risk.detectors",
    "ztsim.net.geneve",
    "ztsim.net.identity_option",
    "ztsim.net.tunnel_routes",
    "ztsim.net.endpoint",
    "ztsim.net.ruleset",
    "ztsim.net.nft_documents",
    "ztsim.net.nft_names",
    "ztsim.net.nft_fqdn_documents",
    "ztsim.net.gateway_plan",
    "ztsim.net.gateway_fqdn",
    "ztsim.net.sites",
    "ztsim.net.tunnel_plan",
    "ztsim.net.tunnel_state",
    "ztsim.net.nflog",
    "ztsim.net.denials",
    "ztsim.net.netlink",
    "ztsim.net.ctnetlink",
    "ztsim.net.ctnetlink_requests",
    "ztsim.net.flow_log",
    "ztsim.net.fqdn",
]

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules)))
"""


def loaded_after_import(module: str, watched: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(watched)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


@pytest.mark.parametrize("module", PURE)
def test_pure_core_loads_no_io_stack(module: str) -> None:
    loaded = loaded_after_import(module, sorted(MUST_STAY_OUT))
    assert loaded == [], {name: MUST_STAY_OUT[name] for name in loaded}


def test_the_probe_sees_what_a_module_loads() -> None:
    # Without this, a probe that never imported anything would pass every case above.
    assert loaded_after_import("ztsim.db.engine", ["sqlalchemy", "numpy"]) == ["sqlalchemy"]
    assert loaded_after_import("ztsim.dns.serve.udp", ["asyncio", "socket"]) == [
        "asyncio",
        "socket",
    ]
