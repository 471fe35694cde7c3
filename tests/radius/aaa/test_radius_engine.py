"""The access decision, on hand-built snapshots (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.radius import SharedSecret, decode_attributes
from ztsim.radius.aaa.engine import (
    AccessRequest,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    SnapshotPatch,
    access_request,
    attach_of,
    attach_text,
    decide,
    imei_of,
)
from ztsim.radius.dictionary import make_attribute

IMEI = "353490069873327"  # TS 23.003 §6.2.1 check digit: Luhn over 35349006987332
OTHER_IMEI = "490154203237518"
GW = GatewayEntry(
    id="g1",
    org_id="o1",
    name="pgw",
    network=ip_network("192.0.2.0/24"),
    secret=SharedSecret("s" * 16),
    apns=frozenset({"corp"}),
    require_message_authenticator=True,
    coa_port=3799,
)
HOST_GW = GatewayEntry(
    id="g2",
    org_id="o2",
    name="pgw-host",
    network=ip_network("192.0.2.7/32"),
    secret=SharedSecret("t" * 16),
    apns=frozenset({"corp"}),
    require_message_authenticator=True,
    coa_port=3799,
)


def _snapshot(**sim_fields: object) -> Snapshot:
    fields: dict[str, object] = {
        "iccid": "8944",
        "org_id": "o1",
        "imsi": "001010000000001",
        "state": "active",
        "identity_id": "i1",
        "device_id": "d1",
        **sim_fields,
    }
    sim = SimEntry(**fields)  # type: ignore[arg-type]
    return Snapshot(
        sims={sim.imsi: sim},
        device_imeis={"d1": IMEI},
        identities_enabled={"i1": True, "i2": False},
        tofu_orgs=frozenset({"o9"}),
        gateways=(GW, HOST_GW),
    )


OK = AccessRequest("001010000000001", IMEI, "corp")


@pytest.mark.parametrize(
    ("sim_fields", "request_", "live", "reason"),
    [
        ({}, OK, (), Reason.ACCEPTED),
        ({}, OK, (IMEI,), Reason.ACCEPTED),
        ({}, AccessRequest(None, IMEI, "corp"), (), Reason.IMSI_MISSING),
        ({}, AccessRequest("001019999999999", IMEI, "corp"), (), Reason.UNKNOWN_IMSI),
        ({"org_id": "o2"}, OK, (), Reason.UNKNOWN_IMSI),
        ({"state": "suspended"}, OK, (), Reason.SIM_NOT_ACTIVE),
        ({"state": "retired"}, OK, (), Reason.SIM_NOT_ACTIVE),
        ({}, AccessRequest(OK.imsi, IMEI, "internet"), (), Reason.APN_NOT_ALLOWED),
        ({}, AccessRequest(OK.imsi, IMEI, None), (), Reason.APN_NOT_ALLOWED),
        ({"identity_id": None}, OK, (), Reason.NO_IDENTITY),
        ({"identity_id": "i2"}, OK, (), Reason.IDENTITY_DISABLED),
        ({"identity_id": "gone"}, OK, (), Reason.IDENTITY_DISABLED),
        ({}, AccessRequest(OK.imsi, None, "corp"), (), Reason.IMEI_MISSING),
        ({}, OK, (OTHER_IMEI,), Reason.CLONE_SUSPECTED),
        ({"device_id": None}, OK, (), Reason.NO_BOUND_DEVICE),
        ({}, AccessRequest(OK.imsi, OTHER_IMEI, "corp"), (), Reason.IMEI_MISMATCH),
    ],
)
def test_decision_reasons(
    sim_fields: dict[str, object], request_: AccessRequest, live: tuple[str, ...], reason: Reason
) -> None:
    decision = decide(_snapshot(**sim_fields), GW, request_, live)
    assert decision.reason is reason
    assert decision.accepted is (reason is Reason.ACCEPTED)
    assert decision.risk is (reason in (Reason.CLONE_SUSPECTED, Reason.IMEI_MISMATCH))
    assert decision.message


def test_trust_on_first_attach_binds_only_where_the_org_enables_it() -> None:
    snapshot = _snapshot(device_id=None, org_id="o9")
    gateway = replace(GW, org_id="o9")
    decision = decide(snapshot, gateway, OK)
    assert (decision.reason, decision.bind_imei) == (Reason.BOUND_ON_FIRST_ATTACH, IMEI)
    assert decision.accepted


def test_gateway_lookup_prefers_the_longest_prefix_and_ignores_strangers() -> None:
    snapshot = _snapshot()
    assert snapshot.gateway_for("192.0.2.7") is HOST_GW
    assert snapshot.gateway_for("192.0.2.8") is GW
    assert snapshot.gateway_for("198.51.100.1") is None
    assert snapshot.gateway_for("::1") is None
    assert snapshot.gateway_for("not an address") is None


def test_request_fields_come_from_3gpp_attributes() -> None:
    attrs = decode_attributes(
        [
            make_attribute("User-Name", "someone@example"),
            make_attribute("3GPP-IMSI", "001010000000001"),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", " Corp "),
        ]
    )
    assert access_request(attrs) == AccessRequest("001010000000001", IMEI, "corp")
    # Without 3GPP-IMSI a User-Name of digits stands for the IMSI; anything else does not.
    only_user = decode_attributes([make_attribute("User-Name", "001010000000002")])
    assert access_request(only_user).imsi == "001010000000002"
    assert access_request(decode_attributes([make_attribute("User-Name", "bob")])).imsi is None


@pytest.mark.parametrize(
    ("value", "imei"),
    [
        ("3534900698733201", IMEI),
        (IMEI, IMEI),
        ("353490069873320", None),  # bad Luhn digit
        ("12345", None),
        (None, None),
    ],
)
def test_imei_of(value: str | None, imei: str | None) -> None:
    assert imei_of(value) == imei


@given(
    imsi=st.one_of(st.none(), st.text(max_size=20)),
    imei=st.one_of(st.none(), st.text(max_size=20)),
    apn=st.one_of(st.none(), st.text(max_size=20)),
    live=st.lists(st.text(max_size=16), max_size=3),
)
def test_decide_never_raises_and_accepts_only_the_bound_device(
    imsi: str | None, imei: str | None, apn: str | None, live: list[str]
) -> None:
    decision = decide(_snapshot(), GW, AccessRequest(imsi, imei, apn), live)
    if decision.accepted:
        assert (imsi, imei, apn) == (OK.imsi, IMEI, "corp")


@given(st.text(alphabet="0123456789", min_size=14, max_size=16))
def test_imei_of_agrees_with_the_identifier_types(digits: str) -> None:
    from ztsim.identifiers import Imei, Imeisv, InvalidIdentifier

    try:
        expected: str | None = (
            Imeisv(digits).imei.value if len(digits) == 16 else Imei(digits).value
        )
    except InvalidIdentifier:
        expected = None
    assert imei_of(digits) == expected


def test_a_patch_replaces_sims_and_forgets_what_no_longer_exists() -> None:
    snapshot = _snapshot()
    gateway_before = snapshot.gateway_for("192.0.2.7")
    sims = snapshot.sims
    snapshot.patch(
        SnapshotPatch(
            sims=(SimEntry("8944", "o1", "001010000000001", "suspended", "i1", "d2"),),
            identities_enabled={"i1": None, "i3": True},
            device_imeis={"d1": None, "d2": OTHER_IMEI},
        )
    )
    assert snapshot.sims is sims  # in place: no copy of the SIM table
    assert decide(snapshot, GW, OK).reason is Reason.SIM_NOT_ACTIVE
    assert snapshot.identities_enabled == {"i2": False, "i3": True}
    assert snapshot.device_imeis == {"d2": OTHER_IMEI}
    assert snapshot.gateway_for("192.0.2.7") is gateway_before
    snapshot.patch(
        SnapshotPatch(sims=(SimEntry("8944", "o1", "001010000000001", "active", "i1", "d2"),))
    )
    # The identity is gone: disabled, as one never known.
    assert decide(snapshot, GW, OK).reason is Reason.IDENTITY_DISABLED
    snapshot.patch(SnapshotPatch(identities_enabled={"i1": True}))
    assert decide(snapshot, GW, AccessRequest(OK.imsi, OTHER_IMEI, "corp")).reason is (
        Reason.ACCEPTED
    )


@pytest.mark.parametrize(
    ("imei", "apn"),
    [(IMEI, "corp"), (None, "corp"), (IMEI, None), (None, None), (IMEI, "a\x00b.example")],
)
def test_an_attach_remembered_as_text_comes_back(imei: str | None, apn: str | None) -> None:
    text = attach_text(AccessRequest("001010000000001", imei, apn))
    assert isinstance(text, str)
    assert attach_of(text) == (imei, apn)
