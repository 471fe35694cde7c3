"""Each package's public names, pinned (as httpx pins its own): a name added to or dropped
from an `__all__` is an API change, and this table is where it is agreed.

The table is written from what each package is for, not read from the code; a package
that re-exports nothing says so with an empty `__all__` (import its modules instead).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PUBLIC: dict[str, list[str]] = {
    "ztsim": [],
    "ztsim.aka": [],
    "ztsim.api": [],
    "ztsim.api.camara": [],
    "ztsim.cli": [],
    "ztsim.db": [],
    "ztsim.dns": [],
    "ztsim.dns.policy": [
        "Action",
        "BlockAnswer",
        "Category",
        "Decision",
        "DomainStore",
        "DomainStoreBuilder",
        "IdentityResolver",
        "IdentitySnapshot",
        "ListFormat",
        "OrgPolicy",
        "OrgSettings",
        "ParsedList",
        "PolicyData",
        "PolicySnapshot",
        "PrivacyMode",
        "Requester",
        "Rule",
        "parse_list",
    ],
    "ztsim.dns.serve": [],
    "ztsim.dns.store": [],
    "ztsim.dns.wire": [
        "BlockMode",
        "CachedAnswer",
        "DnsDecodeError",
        "DnsEncodeError",
        "Edns",
        "EdnsOption",
        "ExtendedError",
        "Flag",
        "InvalidDomain",
        "Message",
        "Question",
        "QuestionView",
        "ResourceRecord",
        "badvers",
        "block_response",
        "decode_message",
        "formerr",
        "normalize_name",
        "parse_question",
        "patch_id_and_ttls",
        "refused",
        "servfail",
        "truncate",
    ],
    "ztsim.esim": ["ActivationCode", "InvalidActivationCode"],
    "ztsim.events": [],
    "ztsim.feed": ["Change", "NewChange", "Topic", "keys_of"],
    "ztsim.metrics": [
        "CONTENT_TYPE",
        "Family",
        "HistogramValue",
        "Kind",
        "Registry",
        "Sample",
        "Spec",
        "merge",
        "render",
    ],
    "ztsim.identifiers": [
        "Eid",
        "Iccid",
        "Imei",
        "Imeisv",
        "Imsi",
        "InvalidIdentifier",
        "Msisdn",
        "luhn_check_digit",
    ],
    "ztsim.identity": [],
    "ztsim.inventory": [],
    "ztsim.node": [],
    "ztsim.net": [],
    "ztsim.net.store": [],
    "ztsim.net.serve": [],
    "ztsim.web": ["install"],
    "ztsim.policy": [],
    "ztsim.policy.store": [],
    "ztsim.risk": [],
    "ztsim.risk.serve": [],
    "ztsim.risk.store": [],
    "ztsim.radius": [
        "AcctStatusType",
        "AcctTerminateCause",
        "AllocateIpType",
        "Attribute",
        "AttributeDef",
        "AttributeType",
        "CellGlobalId",
        "Code",
        "DataType",
        "DecodedAttribute",
        "DecodedAttributes",
        "ErrorCause",
        "EutranCellGlobalId",
        "FramedProtocol",
        "LocationType",
        "MacroEnodebId",
        "MicrosoftType",
        "MsTimeZone",
        "NasPortType",
        "NrCellGlobalId",
        "Packet",
        "PdpType",
        "Plmn",
        "RadiusAuthError",
        "RadiusDecodeError",
        "RadiusEncodeError",
        "RatType",
        "RoutingAreaId",
        "ServiceAreaId",
        "ServiceType",
        "SharedSecret",
        "ThreeGppType",
        "TrackingAreaId",
        "UserLocationInfo",
        "VENDOR_3GPP",
        "VENDOR_MICROSOFT",
        "Value",
        "decode_attributes",
        "encode_reply",
        "error_cause",
        "framed_ip_address",
        "framed_ipv6_prefix",
        "hide_password",
        "ipv4_dns_servers",
        "ipv6_dns_servers",
        "make_attribute",
        "make_reply",
        "message_authenticator",
        "reply_messages",
        "session_timeout",
        "sign_reply",
        "sign_request",
        "unhide_password",
        "verify_reply",
        "verify_request",
    ],
    "ztsim.radius.aaa": [
        "AaaCore",
        "AccessRequest",
        "Decision",
        "GatewayEntry",
        "Reason",
        "SimEntry",
        "Snapshot",
        "decide",
    ],
    "ztsim.radius.serve": [],
    "ztsim.radius.store": [],
    "ztsim.sessions": [],
    "ztsim.simulator": [],
    "ztsim.udm": [],
}

# Alembic's script folder: its modules are loaded by path as migrations, never imported
# by name, so they have no public names to pin.
NOT_PACKAGES_OF_NAMES = {"ztsim.db.migrations", "ztsim.db.migrations.versions"}


def _packages_in_src() -> set[str]:
    return {
        ".".join(init.parent.relative_to(SRC).parts) for init in SRC.rglob("ztsim/**/__init__.py")
    }


def test_every_package_has_a_row() -> None:
    assert _packages_in_src() - NOT_PACKAGES_OF_NAMES == set(PUBLIC)


def test_the_table_is_sorted_and_has_no_repeats() -> None:
    for names in PUBLIC.values():
        assert names == sorted(set(names))


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} has no __all__"
    assert len(exported) == len(set(exported)), "a name is listed twice"
    assert sorted(exported) == PUBLIC[package]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_public_name_imports(package: str) -> None:
    module = importlib.import_module(package)
    # An attribute, not `from package import name`: that would also find a submodule of
    # the name, which a user of `import *` or of the package's namespace does not get.
    missing = [name for name in PUBLIC[package] if not hasattr(module, name)]
    assert missing == []
