"""`ztsim`: run the platform and administer it locally.

Admin commands work on the database directly (they run where the data lives);
remote administration goes through the REST API with a token.

Every command is registered here by name, help and loader (`ztsim.cli.lazy`): a command's
module is imported when it runs, so `ztsim --help` and `ztsim <group> --help` import
none of the platform. A new command or group is an entry below; the help written here
is checked against the command's own by tests/cli/test_cli_lazy.py (which prints the
entry to paste when they differ).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

import typer

# Imported with the root, not with the first command: its consoles take their width
# from COLUMNS when they are made (a test runs many commands at several widths).
from ztsim.cli import common  # noqa: F401
from ztsim.cli.lazy import Entry, LazyGroup, Loaded


def _at(module: str, name: str = "app") -> Callable[[], Loaded]:
    def load() -> Loaded:
        found: Loaded = getattr(import_module(f"ztsim.cli.{module}"), name)
        return found

    return load


def _tokens() -> Loaded:
    from ztsim.cli import tokens

    app = typer.Typer(help=ENTRIES["tokens"].help, no_args_is_help=True)
    app.command("create")(tokens.create)
    app.command("list")(tokens.list_all)
    app.command("revoke")(tokens.revoke)
    return app


ENTRIES: dict[str, Entry] = {
    "demo": Entry(
        "Provision Acme, start every role, run the virtual operator's scenario, print what "
        "happened.",
        _at("demo", "demo"),
    ),
    "simulate": Entry(
        "Attach DEVICES virtual devices through RADIUS and let them query DNS for DURATION\n"
        "seconds, against the ztsim running on this data directory's settings.",
        _at("simulate", "simulate"),
    ),
    "init": Entry(
        "Create the data directory, the master key, the first org and its first admin token.",
        _at("setup", "init"),
    ),
    "up": Entry(
        "Run every role in one process: the API (with DoH), RADIUS AAA and the DNS gateway.",
        _at("setup", "up"),
    ),
    "sims": Entry(
        "SIM inventory.",
        _at("sims_group"),
        {
            "assign": "Give a stock SIM to an identity.",
            "activate": "Activate an assigned SIM: it may attach.",
            "resume": "Resume a suspended SIM.",
            "retire": "Retire a SIM for good.",
            "import": "Import a SIM vendor batch file (CSV), all or nothing.",
            "list": "List SIMs (ordered by ICCID).",
            "suspend": "Suspend an active SIM (by ICCID, IMSI or MSISDN).",
        },
    ),
    "tokens": Entry(
        "API tokens.",
        _tokens,
        {
            "create": "Create an API token; it is printed once.",
            "list": "List API tokens (never the tokens themselves).",
            "revoke": "Revoke an API token: it stops working at once.",
        },
    ),
    "api-clients": Entry(
        "CAMARA API clients (OAuth 2.0 client credentials).",
        _at("api_clients"),
        {
            "create": "Register an API client; its secret is printed once.",
            "list": "List API clients (never their secrets).",
            "revoke": "Revoke an API client: its tokens stop working at once.",
        },
    ),
    "keys": Entry(
        "The key-encryption key that seals SIM secrets.",
        _at("setup", "keys_app"),
        {
            "rotate": "Re-wrap every sealed secret under a new key-encryption key.",
            "generate": "Print a new random key-encryption key (for ZTSIM_MASTER_KEY).",
        },
    ),
    "aka": Entry(
        "3GPP authentication (UDM/ARPF).",
        _at("aka"),
        {
            "vector": "Issue one 5G HE vector for a SIM, as an AUSF would get it (advances "
            "its SQN).",
            "hn-key": "Home-network keys for SUCI.",
        },
    ),
    "esim": Entry(
        "eSIM onboarding: orders and printable packs.",
        _at("esim"),
        {
            "order": "Order an eSIM for each named employee who has no open order yet.",
            "pack": "Write the onboarding packs (HTML, PDF, QR PNG and SVG per employee) "
            "into a zip.",
            "reissue": "Lost or new phone: re-issue an order (or ask a second admin, when the "
            "org requires it).",
        },
    ),
    "risk": Entry(
        "SIM-swap defence: the org's risk settings.",
        _at("risk"),
        {
            "show": "Show the org's risk settings.",
            "set": "Change risk settings: each option given replaces that setting; the rest "
            "are kept.",
        },
    ),
    "swaps": Entry(
        "Swap requests waiting for a second admin (the two-person rule).",
        _at("risk", "swaps"),
        {
            "list": "List swap requests, newest first.",
            "approve": "Approve a swap request and make the swap (another user than its "
            "requester).",
            "reject": "Reject a swap request: nothing is swapped (its requester may withdraw "
            "it so).",
        },
    ),
    "serve": Entry(
        "Run one role of the platform.",
        _at("serve"),
        {
            "radius": "The RADIUS AAA server (auth and accounting) for the registered gateways.",
            "api": "The REST API alone (no DoH: that needs the DNS gateway in the same process).",
            "dns": "The DNS gateway (UDP and TCP) with per-identity policy.",
            "net": "The net role: network rules in nftables, tunnels to the sites (root only).",
        },
    ),
    "identities": Entry(
        "Identities: people and service identities.",
        _at("identities"),
        {
            "create": "Create an identity.",
            "list": "List identities.",
            "disable": "Disable an identity: its SIMs are refused at the next attach or reload.",
            "enable": "Enable a disabled identity.",
            "rename": "Give an identity a new display name.",
        },
    ),
    "groups": Entry(
        "Groups of identities (eSIM orders, DNS rules).",
        _at("groups", "groups"),
        {
            "create": "Create a group.",
            "list": "List groups and their members.",
            "add": "Add identities to a group (all or none).",
            "remove": "Take identities out of a group (all or none).",
        },
    ),
    "fleets": Entry(
        "Fleets of service identities (IoT).",
        _at("groups", "fleets"),
        {
            "create": "Create a fleet.",
            "list": "List fleets and their members.",
            "add": "Add service identities to a fleet (all or none).",
            "remove": "Take service identities out of a fleet (all or none).",
        },
    ),
    "gateways": Entry(
        "Packet gateways (RADIUS clients).",
        _at("gateways", "gateways"),
        {
            "create": "Register a packet gateway.",
            "list": "List gateways (secrets are never shown).",
            "delete": "Remove a gateway: its requests are dropped from the next reload on.",
        },
    ),
    "sites": Entry(
        "Sites: where tunnels from the gateway end.",
        _at("net", "sites"),
        {
            "create": "Register a site: a tunnel endpoint and its VNI.",
            "list": "List sites.",
            "delete": "Delete a site (one that has networks only with --force, which deletes "
            "them too).",
        },
    ),
    "networks": Entry(
        "Private networks behind sites.",
        _at("net", "networks"),
        {
            "add": "Add a private network behind a site.",
            "list": "List private networks and their sites.",
            "delete": "Delete a private network: its route is withdrawn on the next reload.",
        },
    ),
    "pools": Entry(
        "The org's UE address pool.",
        _at("gateways", "pools"),
        {"create": "Create the org's address pool.", "list": "List the org's address pools."},
    ),
    "dns": Entry(
        "DNS policy: rules, block lists, settings.",
        _at("dns_policy"),
        {
            "rules": "DNS rules, applied first to last.",
            "lists": "Block lists that rules name.",
            "settings": "The org's DNS settings.",
            "device-tokens": "DNS-over-HTTPS tokens for devices.",
        },
    ),
    "policy": Entry(
        "The org's policy as code: checks and the rules of every plane.",
        _at("policy"),
        {
            "export": "Write the org's policy as a policy file.",
            "diff": "Show what applying a policy file would change, and whose decisions.",
            "apply": "Make a policy file the org's policy, all or nothing (shows the diff first).",
            "explain": "Say why a subject gets its decision for a target, rule by rule, for each "
            "of its SIMs.",
            "schema": "Print the policy file's JSON Schema.",
        },
    ),
}


class ZtsimGroup(LazyGroup):
    entries = ENTRIES


app = typer.Typer(cls=ZtsimGroup, help="ztsim: a Zero Trust SIM platform.", no_args_is_help=True)


@app.callback()
def main() -> None:
    # The commands are the entries above: Typer builds a group only for an app that has
    # a callback or commands of its own.
    pass
