"""Every module under src has its test file in the mirrored folder, or says where it is tested.

The rule: `src/ztsim/<path>/<module>.py` is tested by `tests/<path>/test_<module>.py` or
by a file there whose name ends in `_<module>.py` (`dns/wire/message.py` ->
`tests/dns/wire/test_dns_message.py`); a leading underscore is not part of the name
(`dns/wire/_wirename.py` -> `test_dns_wirename.py`). A module tested through others is
listed in COVERED_ELSEWHERE with the test files that exercise it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ztsim"
TESTS = ROOT / "tests"

# Module (relative to src/ztsim) -> the test files that cover it, found by what imports
# it or drives it (the API, the CLI in a subprocess).
COVERED_ELSEWHERE: dict[str, list[str]] = {
    "net/serve/classes.py": [
        "net/serve/test_net_serve_role.py",
        "net/serve/test_net_serve_gateway.py",
    ],
    "net/serve/holdings.py": ["net/serve/test_net_serve_role.py"],
    "net/serve/staging.py": ["net/serve/test_net_serve_role.py", "node/test_node_net.py"],
    "net/serve/ticker.py": [
        "net/serve/test_net_serve_role.py",
        "net/serve/test_net_serve_audit.py",
    ],
    "net/netns.py": [
        "net/serve/test_net_serve_audit.py",
        "node/test_node_net.py",
        "net/test_net_tun.py",
    ],
    "net/store/flow_events.py": ["net/serve/test_net_serve_audit.py"],
    "net/serve/netlink_reader.py": [
        "net/serve/test_net_serve_nflog_socket.py",
        "net/serve/test_net_serve_conntrack_socket.py",
    ],
    "net/serve/learning.py": ["net/serve/test_net_serve_fqdn.py"],
    "net/netlink.py": ["net/test_net_nflog.py", "net/test_net_ctnetlink.py"],
    "net/serve/flow_writer.py": ["net/serve/test_net_serve_audit.py"],
    "net/nft_names.py": ["net/test_net_nft_documents.py", "net/test_net_nft.py"],
    "net/nft_fqdn_documents.py": ["net/test_net_fqdn.py"],
    "net/gateway_fqdn.py": ["net/test_net_fqdn.py"],
    "net/ctnetlink_requests.py": ["net/test_net_ctnetlink.py", "net/test_net_ctdelete.py"],
    "net/tunnel_state.py": ["net/test_net_tunnel_plan.py", "net/serve/test_net_serve_tunnels.py"],
    "risk/store/second_person.py": ["api/test_api_routes_risk.py"],
    "db/chunks.py": [
        "policy/store/test_policy_store_posture.py",
        "dns/store/test_dns_identity_view.py",
    ],
    "policy/durations.py": ["policy/test_policy_document.py"],
    "policy/file_reader.py": ["policy/test_policy_document.py"],
    "policy/file_schema.py": ["policy/test_policy_document.py", "cli/test_cli_policy.py"],
    "dns/store/policy_check.py": ["api/test_api_policy.py", "cli/test_cli_policy.py"],
    "dns/store/explained.py": ["api/test_api_policy.py", "cli/test_cli_policy.py"],
    "policy/syntax.py": ["policy/test_policy_conditions.py"],
    "policy/evaluation.py": ["policy/test_policy_conditions.py"],
    "api/routes_policy.py": ["api/test_api_policy.py"],
    "policy/reasons.py": ["policy/test_policy_reference.py", "policy/test_policy_explain.py"],
    "api/routes_posture.py": ["api/test_api_posture.py"],
    "policy/targets.py": ["policy/test_policy_reference.py", "policy/test_policy_compile.py"],
    "__main__.py": ["cli/test_cli_main.py", "node/test_node_demo.py"],
    "aka/_check.py": ["aka/test_aka_milenage.py"],
    "aka/conversion.py": ["aka/test_aka_milenage.py"],
    "aka/ecies.py": ["aka/test_aka_suci.py"],
    "aka/errors.py": ["aka/test_aka_milenage.py", "aka/test_aka_sqn.py"],
    "api/app.py": ["api/test_api_schema.py", "api/test_api_flows.py"],
    "api/deps.py": ["api/test_api_authz.py"],
    "api/problems.py": ["api/test_api_flows.py", "api/test_api_authz.py"],
    "api/routes_dns.py": ["dns/test_dns_policy_api.py"],
    "api/routes_doh.py": ["dns/serve/test_dns_doh.py"],
    "api/routes_esim.py": ["esim/test_esim_api.py"],
    "api/routes_events.py": ["api/test_api_flows.py"],
    "api/routes_identity.py": ["api/test_api_flows.py", "api/test_api_authz.py"],
    "api/routes_inventory.py": ["api/test_api_flows.py", "api/test_api_authz.py"],
    "api/routes_radius.py": ["radius/test_radius_api.py"],
    "api/routes_udm.py": ["udm/test_udm_nudm_api.py"],
    "api/schemas.py": ["api/test_api_schema.py", "api/test_api_flows.py"],
    "cli/aka.py": ["cli/test_cli_main.py"],
    "cli/common.py": ["cli/test_cli_main.py"],
    "cli/demo.py": ["node/test_node_demo.py"],
    "cli/serve.py": ["cli/test_cli_dns.py", "radius/test_radius_cli.py"],
    "cli/setup.py": ["cli/test_cli_main.py", "cli/test_cli_errors.py"],
    "cli/sims_group.py": ["cli/test_cli_main.py", "cli/test_cli_sims.py"],
    "cli/simulate.py": ["simulator/test_simulator_loadtest.py"],
    "clock.py": ["esim/test_esim_api.py", "udm/test_udm_nudm_api.py"],
    "db/pagination.py": ["api/test_api_flows.py", "events/test_events_store.py"],
    "db/schema.py": ["db/test_db_migrations.py"],
    "dns/answercache.py": ["dns/test_dns_engine.py"],
    "dns/answers.py": ["dns/test_dns_engine.py"],
    "dns/policy/config.py": ["dns/serve/test_dns_runner.py"],
    "dns/policy/feeds.py": ["dns/policy/test_dns_rules.py"],
    "dns/policy/identity.py": ["dns/policy/test_dns_rules.py", "dns/test_dns_engine.py"],
    "dns/policy/safesearch.py": ["dns/policy/test_dns_rules.py"],
    "dns/policy/snapshot.py": ["dns/policy/test_dns_rules.py", "dns/test_dns_engine.py"],
    "dns/querylog.py": ["dns/test_dns_engine.py"],
    "dns/serve/gateway.py": [
        "dns/serve/test_dns_gateway_kdig.py",
        "dns/serve/test_dns_gateway_stale.py",
    ],
    "dns/serve/tcp.py": ["dns/serve/test_dns_gateway_kdig.py"],
    "dns/serve/upstream.py": [
        "dns/serve/test_dns_upstream_health.py",
        "dns/serve/test_dns_upstream_tls.py",
    ],
    "dns/serve/workers.py": ["cli/test_cli_dns.py"],
    "dns/store/policy_view.py": ["dns/store/test_dns_refresh.py"],
    "dns/store/repository.py": ["dns/test_dns_policy_api.py"],
    "dns/wire/_rdata.py": ["dns/wire/test_dns_message.py"],
    "dns/wire/_scan.py": ["dns/wire/test_dns_cache.py", "dns/wire/test_dns_fast.py"],
    "dns/wire/block.py": ["dns/wire/test_dns_fast.py", "dns/wire/test_dns_kdig.py"],
    "dns/wire/constants.py": ["dns/wire/test_dns_message.py"],
    "dns/wire/edns.py": ["dns/wire/test_dns_message.py", "dns/wire/test_dns_cache.py"],
    "dns/wire/errors.py": ["dns/wire/test_dns_message.py"],
    "dns/wire/truncate.py": ["dns/wire/test_dns_fast.py", "dns/wire/test_dns_dnsmasq.py"],
    "errors.py": ["api/test_api_flows.py", "inventory/test_service.py"],
    "esim/repository.py": ["esim/test_esim_service.py"],
    "events/schema.py": ["events/test_events_store.py"],
    "identifiers/_digits.py": ["identifiers/test_identifiers_common.py"],
    "identifiers/errors.py": ["identifiers/test_identifiers_common.py"],
    "identity/models.py": ["identity/test_identity_repository.py"],
    "identity/roles.py": ["api/test_api_authz.py"],
    "identity/token_store.py": ["identity/test_identity_repository.py"],
    "identity/tokens.py": ["identity/test_identity_repository.py"],
    "inventory/models.py": ["inventory/test_service.py"],
    "inventory/repository.py": ["inventory/test_service.py"],
    "node/platform.py": ["cli/test_cli_esim.py", "radius/test_radius_cli.py"],
    "node/radius.py": ["radius/test_radius_cli.py"],
    "node/up.py": ["cli/test_cli_main.py", "simulator/test_simulator_loadtest.py"],
    "radius/attrtypes.py": ["radius/test_radius_dictionary.py", "radius/test_radius_auth.py"],
    "radius/builders.py": ["radius/test_radius_dictionary.py", "radius/test_radius_auth.py"],
    "radius/codes.py": ["radius/test_radius_packet.py", "radius/test_radius_fuzz.py"],
    "radius/datatypes.py": ["radius/test_radius_freeradius_dictionary.py"],
    "radius/errors.py": ["radius/test_radius_packet.py", "radius/test_radius_fuzz.py"],
    "radius/fastpath.py": ["radius/test_radius_fast.py"],
    "radius/reply.py": ["radius/test_radius_auth.py", "radius/test_radius_radclient.py"],
    "radius/secret.py": ["radius/test_radius_auth.py"],
    "radius/serve/coa.py": ["radius/serve/test_radius_service.py"],
    "simulator/readback.py": ["node/test_node_demo.py"],
    "radius/serve/counting.py": ["radius/serve/test_radius_metrics.py"],
    "radius/store/registry.py": ["radius/test_radius_api.py", "radius/test_radius_cli.py"],
    "radius/store/snapshot.py": ["radius/serve/test_radius_service.py"],
    "radius/values.py": ["radius/test_radius_fuzz.py", "radius/test_radius_dictionary.py"],
    "radius/vsa.py": ["radius/test_radius_dictionary.py", "radius/test_radius_fuzz.py"],
    "settings.py": ["cli/test_cli_main.py"],
    "simulator/demo_world.py": ["node/test_node_demo.py"],
    "simulator/internet.py": ["simulator/test_simulator_peers.py"],
    "simulator/pgw.py": ["simulator/test_simulator_peers.py"],
    # Structural types only: mypy --strict holds node.platform.Platform to PlatformStore.
    "simulator/platform.py": ["node/test_node_demo.py", "simulator/test_simulator_loadtest.py"],
    "simulator/resolver.py": ["simulator/test_simulator_peers.py"],
    "simulator/runner.py": ["node/test_node_demo.py", "simulator/test_simulator_loadtest.py"],
    "udm/hn_keys.py": ["udm/test_udm_nudm_api.py"],
}


def _modules() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        # Alembic's scripts: env.py and the revisions are run by alembic, tested as
        # migrations (tests/db/test_db_migrations.py), not one file each.
        if path.name == "__init__.py" or rel.parts[:2] == ("db", "migrations"):
            continue
        found.append(rel.as_posix())
    return found


def own_test_files(module: str) -> list[Path]:
    rel = Path(module)
    name = rel.stem if rel.stem == "__main__" else rel.stem.lstrip("_")
    folder = TESTS / rel.parent
    return sorted(
        path
        for path in folder.glob("test_*.py")
        if path.name == f"test_{name}.py" or path.name.endswith(f"_{name}.py")
    )


MODULES = _modules()


def test_the_walk_finds_modules_and_their_files() -> None:
    # A walk that found nothing, or a rule that matched nothing, would pass everything.
    assert "dns/wire/message.py" in MODULES
    assert own_test_files("dns/wire/message.py") == [TESTS / "dns/wire/test_dns_message.py"]
    assert own_test_files("dns/wire/_wirename.py") == [TESTS / "dns/wire/test_dns_wirename.py"]
    assert own_test_files("mmsg.py") == [TESTS / "test_mmsg.py"]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_its_test_file(module: str) -> None:
    assert own_test_files(module) or module in COVERED_ELSEWHERE


def test_covered_elsewhere_is_not_stale() -> None:
    listed = set(COVERED_ELSEWHERE)
    assert listed - set(MODULES) == set(), "listed modules that no longer exist"
    assert [m for m in sorted(listed) if own_test_files(m)] == [], "now have their own file"
    missing = [
        test
        for tests in COVERED_ELSEWHERE.values()
        for test in tests
        if not (TESTS / test).is_file()
    ]
    assert missing == []
