"""Every API route with the roles that may call it and a valid request for it.

Written out by hand, independently of the code's grants: the role and isolation
tests check the app against this table, and fail when the app has a route this
table does not know (so a new route cannot escape them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from ztsim.identity.roles import Role

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

A, OP, N, U, S = Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AUDITOR, Role.SELF
SMDP = Role.SMDP
NET = Role.NETWORK
POSTURE = Role.POSTURE
POLICY_READERS = {A, OP, N, U}
NET_READERS = {A, OP, N, U}
Ids = dict[str, str]


@dataclass(frozen=True)
class RouteSpec:
    roles: frozenset[Role]
    body: Callable[[Ids], object] | None = None
    csv: bool = False


def _spec(
    roles: set[Role], body: Callable[[Ids], object] | None = None, csv: bool = False
) -> RouteSpec:
    return RouteSpec(frozenset(roles), body, csv)


_counter = iter(range(10**6))


_GATEWAY_SECRET = "routes-table-gateway-secret"
LEAKS.add_secret(_GATEWAY_SECRET)


def _new_gateway(_ids: Ids) -> dict[str, object]:
    n = next(_counter)
    return {
        "name": f"gw{n}",
        "address": f"198.51.100.{n % 256}",
        "secret": _GATEWAY_SECRET,
        "apns": ["corp"],
    }


def _new_site(_ids: Ids) -> dict[str, object]:
    n = next(_counter)
    return {"name": f"site{n}", "endpoint": "198.51.100.7", "vni": 100_000 + n}


def _new_network(_ids: Ids) -> dict[str, object]:
    # A prefix that no org of the world holds (10.200.0.0/16), behind the org's own site.
    n = next(_counter)
    return {"name": f"net{n}", "cidr": f"10.200.{n % 256}.0/24"}


def _fresh_csv(_ids: Ids) -> str:
    return stock_csv(make_sims(1, seed=90, start=next(_counter)))


ROUTES: dict[tuple[str, str], RouteSpec] = {
    ("GET", "/api/v1/me"): _spec({A, OP, N, U, S, NET, SMDP, POSTURE}),
    ("GET", "/api/v1/org"): _spec({A, OP, N, U, S}),
    ("PATCH", "/api/v1/org"): _spec({A}, lambda ids: {"tofu_binding": False}),
    ("POST", "/api/v1/identities"): _spec({A}, lambda ids: {"kind": "user", "name": "New"}),
    ("GET", "/api/v1/identities"): _spec({A, OP, U}),
    ("GET", "/api/v1/identities/{identity_id}"): _spec({A, OP, U}),
    ("PATCH", "/api/v1/identities/{identity_id}"): _spec({A}, lambda ids: {"name": "Renamed"}),
    ("POST", "/api/v1/groups"): _spec({A}, lambda ids: {"name": f"g{next(_counter)}"}),
    ("GET", "/api/v1/groups"): _spec({A, OP, U}),
    ("GET", "/api/v1/groups/{group_id}"): _spec({A, OP, U}),
    ("PUT", "/api/v1/groups/{group_id}/members/{identity_id}"): _spec({A}),
    ("DELETE", "/api/v1/groups/{group_id}/members/{identity_id}"): _spec({A}),
    ("POST", "/api/v1/fleets"): _spec({A}, lambda ids: {"name": f"f{next(_counter)}"}),
    ("GET", "/api/v1/fleets"): _spec({A, OP, U}),
    ("GET", "/api/v1/fleets/{fleet_id}"): _spec({A, OP, U}),
    ("PUT", "/api/v1/fleets/{fleet_id}/members/{identity_id}"): _spec({A}),
    ("DELETE", "/api/v1/fleets/{fleet_id}/members/{identity_id}"): _spec({A}),
    ("POST", "/api/v1/tokens"): _spec({A}, lambda ids: {"name": "t", "role": "analyst"}),
    ("GET", "/api/v1/tokens"): _spec({A, U}),
    ("DELETE", "/api/v1/tokens/{token_id}"): _spec({A}),
    ("POST", "/api/v1/api-clients"): _spec(
        {A}, lambda ids: {"name": "idp", "scopes": ["sim-swap:check"]}
    ),
    ("GET", "/api/v1/api-clients"): _spec({A, U}),
    ("GET", "/api/v1/api-clients/{api_client_id}"): _spec({A, U}),
    ("DELETE", "/api/v1/api-clients/{api_client_id}"): _spec({A}),
    ("GET", "/api/v1/sims"): _spec({A, OP, U, S}),
    ("GET", "/api/v1/sims/{iccid}"): _spec({A, OP, U, S}),
    ("POST", "/api/v1/sims/{iccid}/assign"): _spec(
        {A, OP}, lambda ids: {"identity_id": ids["identity_id"]}
    ),
    ("POST", "/api/v1/sims/{iccid}/activate"): _spec({A, OP}, lambda ids: {}),
    ("POST", "/api/v1/sims/{iccid}/suspend"): _spec({A, OP}, lambda ids: {"reason": "test"}),
    ("POST", "/api/v1/sims/{iccid}/resume"): _spec({A, OP}, lambda ids: {}),
    ("POST", "/api/v1/sims/{iccid}/retire"): _spec({A, OP}, lambda ids: {"reason": "test"}),
    ("PUT", "/api/v1/sims/{iccid}/binding"): _spec(
        {A}, lambda ids: {"device_id": ids["device_id"], "reason": "test"}
    ),
    ("POST", "/api/v1/devices"): _spec({A, OP}, lambda ids: {"imei": "356938035643809"}),
    ("GET", "/api/v1/devices"): _spec({A, OP, U, S}),
    ("GET", "/api/v1/devices/{device_id}"): _spec({A, OP, U, S}),
    ("PATCH", "/api/v1/devices/{device_id}"): _spec({A, OP}, lambda ids: {"name": "renamed"}),
    # An MDM connector's token reports posture and reads nothing.
    ("POST", "/api/v1/posture"): _spec(
        {A, POSTURE},
        lambda ids: {"device": {"device_id": ids["device_id"]}, "attributes": {"managed": True}},
    ),
    ("GET", "/api/v1/devices/{device_id}/posture"): _spec({A, U, S}),
    ("DELETE", "/api/v1/devices/{device_id}/posture"): _spec({A}),
    # Risk findings (issue 19): read by who reads risk; an admin lifts a clone suspicion.
    ("GET", "/api/v1/risk/findings"): _spec({A, OP, U}),
    ("DELETE", "/api/v1/sims/{iccid}/clone-suspicion"): _spec({A}),
    # Policy (issue 17): admins write; operators, analysts and auditors read; an employee
    # may only ask why about themselves (explain without a subject: 422 for the others).
    ("GET", "/api/v1/policy/checks"): _spec(POLICY_READERS),
    ("POST", "/api/v1/policy/checks"): _spec(
        {A}, lambda ids: {"name": f"c{next(_counter)}", "expression": "device.managed"}
    ),
    ("GET", "/api/v1/policy/checks/{check_id}"): _spec(POLICY_READERS),
    ("PUT", "/api/v1/policy/checks/{check_id}"): _spec(
        {A}, lambda ids: {"name": "managed", "expression": "device.managed and device.compliant"}
    ),
    ("DELETE", "/api/v1/policy/checks/{check_id}"): _spec({A}),
    ("GET", "/api/v1/policy/rules"): _spec(POLICY_READERS),
    ("POST", "/api/v1/policy/rules"): _spec(
        {A},
        lambda ids: {
            "plane": "network",
            "name": f"n{next(_counter)}",
            "action": "allow",
            "cidrs": ["10.9.0.0/16"],
        },
    ),
    ("GET", "/api/v1/policy/rules/{policy_rule_id}"): _spec(POLICY_READERS),
    ("PUT", "/api/v1/policy/rules/{policy_rule_id}"): _spec(
        {A},
        lambda ids: {"plane": "network", "name": "fin", "action": "deny", "cidrs": ["10.1.0.0/16"]},
    ),
    ("DELETE", "/api/v1/policy/rules/{policy_rule_id}"): _spec({A}),
    ("GET", "/api/v1/policy/document"): _spec(POLICY_READERS),
    ("POST", "/api/v1/policy/document"): _spec({A}, lambda ids: {"version": 1}),
    ("GET", "/api/v1/policy/explain"): _spec({A, OP, N, U, S}),
    ("POST", "/api/v1/stock-imports"): _spec({A, OP}, _fresh_csv, csv=True),
    ("GET", "/api/v1/stock-imports"): _spec({A, OP, U}),
    ("GET", "/api/v1/stock-imports/{import_id}"): _spec({A, OP, U}),
    ("GET", "/api/v1/events"): _spec({A, N, U, S}),
    ("POST", "/api/v1/esim/orders"): _spec(
        {A, OP}, lambda ids: {"identity_id": ids["identity_id"], "confirmation_code": True}
    ),
    ("GET", "/api/v1/esim/orders"): _spec({A, OP, U, S}),
    ("GET", "/api/v1/esim/orders/{order_id}"): _spec({A, OP, U, S}),
    ("GET", "/api/v1/esim/orders/{order_id}/pack"): _spec({A, OP, S}),
    ("POST", "/api/v1/esim/orders/{order_id}/cancel"): _spec({A, OP}, lambda ids: {}),
    ("POST", "/api/v1/esim/orders/{order_id}/reissue"): _spec({A}, lambda ids: {"reason": "lost"}),
    ("POST", "/api/v1/esim/progress"): _spec(
        {SMDP},
        lambda ids: {
            "iccid": ids["esim_iccid"],
            "notification_point_id": 3,
            "status": "Executed-Success",
        },
    ),
    ("POST", "/api/v1/gateways"): _spec({A}, _new_gateway),
    ("GET", "/api/v1/gateways"): _spec({A, OP, U}),
    ("GET", "/api/v1/gateways/{gateway_id}"): _spec({A, OP, U}),
    ("DELETE", "/api/v1/gateways/{gateway_id}"): _spec({A}),
    ("POST", "/api/v1/ip-pools"): _spec({A}, lambda ids: {"cidr": "10.64.0.0/16"}),
    ("GET", "/api/v1/ip-pools"): _spec({A, OP, U}),
    ("GET", "/api/v1/sessions"): _spec({A, OP, N, U}),
    ("GET", "/api/v1/dns/settings"): _spec({A, OP, N, U}),
    ("PUT", "/api/v1/dns/settings"): _spec({A}, lambda ids: {"privacy": "all"}),
    ("GET", "/api/v1/dns/rules"): _spec({A, OP, N, U}),
    ("POST", "/api/v1/dns/rules"): _spec(
        {A}, lambda ids: {"name": f"r{next(_counter)}", "action": "block", "domains": ["x.test"]}
    ),
    ("GET", "/api/v1/dns/rules/{rule_id}"): _spec({A, OP, N, U}),
    ("PUT", "/api/v1/dns/rules/{rule_id}"): _spec(
        {A}, lambda ids: {"name": f"r{next(_counter)}", "action": "allow", "domains": [".ok.test"]}
    ),
    ("DELETE", "/api/v1/dns/rules/{rule_id}"): _spec({A}),
    ("GET", "/api/v1/dns/lists"): _spec({A, OP, N, U}),
    ("POST", "/api/v1/dns/lists"): _spec(
        {A}, lambda ids: {"name": f"l{next(_counter)}", "content": "ads.test\n"}
    ),
    ("GET", "/api/v1/dns/lists/{list_id}"): _spec({A, OP, N, U}),
    # Replacing a list's text is a policy change, as creating one: admins only.
    ("PUT", "/api/v1/dns/lists/{list_id}"): _spec(
        {A}, lambda ids: {"content": "ads.test\ntracker.test\n"}
    ),
    ("DELETE", "/api/v1/dns/lists/{list_id}"): _spec({A}),
    ("POST", "/api/v1/dns/device-tokens"): _spec({A}, lambda ids: {"device_id": ids["device_id"]}),
    ("DELETE", "/api/v1/dns/device-tokens/{dns_token_id}"): _spec({A}),
    # Risk (issue 19): operators read and ask for swaps; only admins change the settings
    # and decide swap requests (the two-person rule); auditors read.
    ("GET", "/api/v1/risk/settings"): _spec({A, OP, U}),
    ("GET", "/api/v1/numbers/{msisdn}/changes"): _spec({A, OP, U}),
    ("PUT", "/api/v1/risk/settings"): _spec({A}, lambda ids: {"cooling_off": "12h"}),
    ("GET", "/api/v1/swap-requests"): _spec({A, OP, U}),
    ("GET", "/api/v1/swap-requests/{request_id}"): _spec({A, OP, U}),
    ("POST", "/api/v1/swap-requests/{request_id}/approve"): _spec({A}),
    ("POST", "/api/v1/swap-requests/{request_id}/reject"): _spec(
        {A}, lambda ids: {"reason": "not them"}
    ),
    ("POST", "/api/v1/sims/{iccid}/replace"): _spec(
        {A, OP}, lambda ids: {"new_iccid": ids["spare_iccid"], "reason": "broken card"}
    ),
    # Private connectivity (issue 20): admins write sites and networks; operators,
    # analysts and auditors read them.
    ("POST", "/api/v1/sites"): _spec({A}, _new_site),
    ("GET", "/api/v1/sites"): _spec(NET_READERS),
    ("GET", "/api/v1/sites/{site_id}"): _spec(NET_READERS),
    ("PATCH", "/api/v1/sites/{site_id}"): _spec({A}, lambda ids: {"name": "head office"}),
    ("DELETE", "/api/v1/sites/{site_id}"): _spec({A}),
    ("POST", "/api/v1/sites/{site_id}/networks"): _spec({A}, _new_network),
    ("GET", "/api/v1/sites/{site_id}/networks"): _spec(NET_READERS),
    ("GET", "/api/v1/networks/{network_id}"): _spec(NET_READERS),
    ("DELETE", "/api/v1/networks/{network_id}"): _spec({A}),
    ("POST", "/nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data"): _spec(
        {NET},
        lambda ids: {
            "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
            "ausfInstanceId": "ausf-1",
        },
    ),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """The app's routes as it publishes them (FastAPI includes routers lazily, so its
    OpenAPI document is the one complete list)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(("/api/", "/nudm-"))
        for method in operations
    }


def fill(template: str, ids: Ids) -> str:
    path = template
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no test object for a parameter of {template}: add it to the World"
    return path
