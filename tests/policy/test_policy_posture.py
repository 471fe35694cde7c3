"""Posture reports read from ztsim's own shape, Intune's managedDevice and Jamf Pro's
mobile device detail: the mapped attributes, the device reference, expiry, and refusals
that name their field. Random JSON never raises anything but InvalidInput."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.policy.checks import CheckStatus, PostureCheck
from ztsim.policy.facts import Subject
from ztsim.policy.posture import (
    MAX_REPORTS,
    DeviceRef,
    Source,
    parse,
    parse_generic,
    parse_intune,
    parse_jamf,
)

from tests_clock import NOW

IMEI = "490154203237518"
OTHER_IMEI = "352099001761481"
SERIAL = "F9FXK1ABCD7Q"


def _one(reports: tuple[Any, ...]) -> Any:
    assert len(reports) == 1
    return reports[0]


def _refused(call: Any, *args: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return str(caught.value)


# -- the device reference --------------------------------------------------------------------


@pytest.mark.parametrize(
    "given_",
    [
        {},
        {"imei": IMEI, "serial_number": SERIAL},
        {"device_id": "ab" * 16, "imei": IMEI},
    ],
)
def test_a_ref_names_exactly_one_identifier(given_: dict[str, str]) -> None:
    assert "exactly one" in _refused(lambda: DeviceRef(**given_))


@pytest.mark.parametrize(
    ("given_", "field"),
    [
        ({"imei": "490154203237517"}, "imei"),  # Luhn digit wrong
        ({"imei": "4901542032375"}, "imei"),
        ({"device_id": "AB" * 16}, "device_id"),
        ({"serial_number": "has space"}, "serial_number"),
        ({"serial_number": "x" * 65}, "serial_number"),
    ],
)
def test_a_ref_refuses_a_malformed_identifier(given_: dict[str, str], field: str) -> None:
    assert _refused(lambda: DeviceRef(**given_)).startswith(f"{field}:")


# -- ztsim's own shape -------------------------------------------------------------------------


def test_a_generic_report_keeps_its_attributes_and_expires_after_a_day() -> None:
    report = _one(
        parse_generic(
            {
                "device": {"imei": IMEI},
                "attributes": {
                    "managed": True,
                    "os": "ios",
                    "os_version": "17.4",
                    "risk_score": 3,
                    "battery": 0.5,
                    "jailbroken": None,  # unknown to the MDM: left absent
                },
                "connector": "ours v2",  # unknown fields are ignored
            },
            NOW,
        )
    )
    assert report.ref == DeviceRef(imei=IMEI)
    assert dict(report.posture.attributes) == {
        "managed": True,
        "os": "ios",
        "os_version": "17.4",
        "risk_score": 3,
        "battery": 0.5,
    }
    assert (report.posture.observed_at, report.posture.expires_at) == (NOW, NOW + timedelta(days=1))
    assert report.posture.source == "generic"


@pytest.mark.parametrize(
    ("extra", "expires"),
    [
        ({"ttl_s": 3600}, NOW - timedelta(minutes=10) + timedelta(hours=1)),
        ({"expires_at": "2026-11-24T18:00:00+02:00"}, datetime(2026, 11, 24, 16, tzinfo=UTC)),
    ],
)
def test_a_generic_report_may_say_when_it_expires(
    extra: dict[str, object], expires: datetime
) -> None:
    body = {"device": {"serial_number": SERIAL}, "observed_at": "2026-11-24T11:50:00Z", **extra}
    posture = _one(parse_generic(body, NOW)).posture
    assert posture.observed_at == NOW - timedelta(minutes=10)
    assert posture.expires_at == expires


def test_a_report_from_the_near_future_is_forgiven_clock_skew_but_no_more() -> None:
    def body(minutes: int) -> dict[str, object]:
        at = (NOW + timedelta(minutes=minutes)).isoformat()
        return {"device": {"imei": IMEI}, "observed_at": at}

    assert _one(parse_generic(body(5), NOW)).posture.observed_at == NOW + timedelta(minutes=5)
    assert "future" in _refused(parse_generic, body(6), NOW)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: a JSON object"),
        ({"attributes": {}}, "body.device: required"),
        ({"device": {"imei": 490154203237518}}, "body.device.imei: a string"),
        ({"device": {"imei": "490154203237517"}}, "body.device.imei: IMEI"),
        ({"device": {"imei": IMEI}, "attributes": []}, "body.attributes: a JSON object"),
        ({"device": {"imei": IMEI}, "attributes": {"OS": "ios"}}, "body.attributes.OS:"),
        ({"device": {"imei": IMEI}, "attributes": {"tags": ["a"]}}, "body.attributes.tags:"),
        ({"device": {"imei": IMEI}, "attributes": {"managed": "yes"}}, "attributes.managed: true"),
        ({"device": {"imei": IMEI}, "attributes": {"os_version": 17}}, "os_version: a string"),
        ({"device": {"imei": IMEI}, "attributes": {"n": 2**60}}, "attributes.n: a number"),
        ({"device": {"imei": IMEI}, "attributes": {"t": "a\x00b"}}, "attributes.t: not storable"),
        ({"device": {"imei": IMEI}, "observed_at": "2026-11-24 12:00"}, "body.observed_at: an RFC"),
        ({"device": {"imei": IMEI}, "observed_at": "2026-11-24T12:00:00"}, "observed_at: an RFC"),
        ({"device": {"imei": IMEI}, "observed_at": "2026-13-24T12:00:00Z"}, "observed_at: not a"),
        ({"device": {"imei": IMEI}, "ttl_s": 0}, "body.ttl_s: 1 s to 90 days"),
        ({"device": {"imei": IMEI}, "ttl_s": True}, "body.ttl_s: a whole number"),
        (
            {"device": {"imei": IMEI}, "ttl_s": 60, "expires_at": "2026-11-25T00:00:00Z"},
            "not both",
        ),
        (
            {"device": {"imei": IMEI}, "expires_at": "2026-11-24T11:00:00Z"},
            "expires after it was observed",
        ),
        ({"reports": {"device": {}}}, "reports: a list"),
        (
            {"reports": [{"device": {"imei": IMEI}}, {"device": {"imei": "1"}}]},
            "reports[1].device.imei:",
        ),
    ],
)
def test_a_bad_generic_report_is_refused_naming_its_field(body: object, message: str) -> None:
    assert message in _refused(parse_generic, body, NOW)


def test_a_batch_keeps_its_order_and_has_a_limit() -> None:
    one = {"device": {"imei": IMEI}}
    two = {"device": {"imei": OTHER_IMEI}}
    refs = [r.ref.imei for r in parse_generic({"reports": [one, two, one]}, NOW)]
    assert refs == [IMEI, OTHER_IMEI, IMEI]
    assert parse_generic({"reports": []}, NOW) == ()
    assert "at most 1000" in _refused(parse_generic, {"reports": [one] * (MAX_REPORTS + 1)}, NOW)


def test_a_parsed_report_is_what_posture_checks_read() -> None:
    body = {"device": {"imei": IMEI}, "attributes": {"managed": True, "os_version": "17.4"}}
    report = _one(parse_generic(body, NOW))
    subject = Subject("org", posture=report.posture)
    check = PostureCheck("modern", 'device.managed and device.os_version >= "17.0"')
    assert check.evaluate(subject, NOW).status is CheckStatus.PASSED
    older = PostureCheck("strict", 'device.os_version >= "17.10"')
    assert older.evaluate(subject, NOW).status is CheckStatus.FAILED
    # Expired facts say nothing: the check fails closed.
    assert check.evaluate(subject, NOW + timedelta(days=1)).status is CheckStatus.STALE


# -- Microsoft Intune ------------------------------------------------------------------------


def _managed_device(**changes: object) -> dict[str, object]:
    device: dict[str, object] = {
        "id": "705c034c-034c-705c-4c03-5c704c035c70",
        "userId": "someone@example.com",
        "deviceName": "Alex's iPhone",
        "managedDeviceOwnerType": "company",
        "lastSyncDateTime": "2026-11-24T03:58:46.7156189-08:00",
        "operatingSystem": "iOS",
        "complianceState": "compliant",
        "jailBroken": "False",
        "managementAgent": "mdm",
        "osVersion": "17.4.1",
        "isEncrypted": True,
        "isSupervised": True,
        "managementState": "managed",
        "imei": IMEI,
        "serialNumber": SERIAL,
        "phoneNumber": "+15555550100",
    }
    return {**device, **changes}


def test_an_intune_managed_device_maps_to_attributes() -> None:
    report = _one(parse_intune(_managed_device(), NOW))
    assert report.ref == DeviceRef(imei=IMEI)
    assert dict(report.posture.attributes) == {
        "managed": True,
        "compliant": True,
        "os": "ios",
        "os_version": "17.4.1",
        "disk_encrypted": True,
        "supervised": True,
        "jailbroken": False,
        "ownership": "company",
    }
    # Seven fractional digits, as Graph sends them, read to the microsecond.
    observed = datetime(2026, 11, 24, 11, 58, 46, 715618, tzinfo=UTC)
    assert report.posture.observed_at == observed
    assert report.posture.expires_at == observed + timedelta(days=1)
    assert report.posture.source == "intune"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"complianceState": "inGracePeriod"}, {"compliant": False}),
        ({"complianceState": "unknown"}, {"compliant": False}),
        ({"managementState": "retirePending"}, {"managed": False}),
        ({"jailBroken": "True"}, {"jailbroken": True}),
        ({"jailBroken": "Unknown"}, {"jailbroken": None}),
        ({"operatingSystem": "Windows"}, {"os": "windows"}),
        ({"operatingSystem": "macOS"}, {"os": "macos"}),
        ({"operatingSystem": "Android"}, {"os": "android"}),
        ({"isEncrypted": None, "osVersion": ""}, {"disk_encrypted": None, "os_version": None}),
    ],
)
def test_intune_states_map_as_documented(
    changes: dict[str, object], expected: dict[str, object]
) -> None:
    attributes = _one(parse_intune(_managed_device(**changes), NOW)).posture.attributes
    assert {name: attributes.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("imei", "serial", "ref"),
    [
        ("", SERIAL, DeviceRef(serial_number=SERIAL)),  # no modem
        (None, SERIAL, DeviceRef(serial_number=SERIAL)),
        ("35 209900 176148 1", SERIAL, DeviceRef(imei=OTHER_IMEI)),
        ("A0000012345678", SERIAL, DeviceRef(serial_number=SERIAL)),  # an MEID: not an IMEI
    ],
)
def test_intune_names_the_device_by_imei_else_serial(
    imei: str | None, serial: str, ref: DeviceRef
) -> None:
    assert _one(parse_intune(_managed_device(imei=imei, serialNumber=serial), NOW)).ref == ref


def test_intune_without_any_usable_identifier_is_refused() -> None:
    assert "value[1].imei" in _refused(
        parse_intune,
        {"value": [_managed_device(), _managed_device(imei="123", serialNumber="")]},
        NOW,
    )
    assert "neither IMEI nor serial" in _refused(
        parse_intune, _managed_device(imei="", serialNumber=""), NOW
    )


def test_an_intune_list_page_gives_one_report_per_device() -> None:
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices",
        "value": [_managed_device(), _managed_device(imei=OTHER_IMEI, complianceState="error")],
    }
    reports = parse(Source.INTUNE, page, NOW)
    assert [(r.ref.imei, r.posture.attributes["compliant"]) for r in reports] == [
        (IMEI, True),
        (OTHER_IMEI, False),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"isEncrypted": "true"}, "body.isEncrypted: true or false"),
        ({"complianceState": 1}, "body.complianceState: a string"),
        ({"lastSyncDateTime": "yesterday"}, "body.lastSyncDateTime: an RFC 3339"),
        ({"imei": 490154203237518}, "body.imei: a string"),
        ({"imei": None, "serialNumber": ["x"]}, "body.serialNumber: a string"),
    ],
)
def test_a_bad_intune_field_is_named(changes: dict[str, object], field: str) -> None:
    assert field in _refused(parse_intune, _managed_device(**changes), NOW)


# -- Jamf Pro ----------------------------------------------------------------------------------


def _jamf_detail(**changes: object) -> dict[str, object]:
    detail: dict[str, object] = {
        "id": "42",
        "name": "Alex's iPad",
        "serialNumber": SERIAL,
        "udid": "0dad565fb40b010a9e490440188063a378721069",
        "osVersion": "17.3",
        "managed": True,
        "type": "ios",
        "lastInventoryUpdateTimestamp": "2026-11-24T10:00:00.000Z",
        "location": {"username": "alex", "emailAddress": "alex@example.com"},
        "ios": {
            "supervised": True,
            "security": {
                "dataProtected": True,
                "passcodePresent": True,
                "passcodeCompliant": False,
                "jailBreakDetected": False,
            },
            "network": {"imei": "35 209900 176148 1", "phoneNumber": "+15555550100"},
        },
    }
    return {**detail, **changes}


def test_a_jamf_detail_maps_to_attributes() -> None:
    report = _one(parse_jamf(_jamf_detail(), NOW))
    assert report.ref == DeviceRef(imei=OTHER_IMEI)
    assert dict(report.posture.attributes) == {
        "managed": True,
        "supervised": True,
        "os": "ios",
        "os_version": "17.3",
        "disk_encrypted": True,
        "jailbroken": False,
        "passcode_present": True,
        "passcode_compliant": False,
    }
    assert report.posture.observed_at == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert report.posture.source == "jamf"


def test_jamf_versions_place_the_imei_and_security_flags_differently() -> None:
    older = _jamf_detail(
        ios=None,
        imei=IMEI,
        security={"isDataProtected": False, "isJailBreakDetected": True},
        type="unknown",
    )
    report = _one(parse_jamf(older, NOW))
    assert report.ref == DeviceRef(imei=IMEI)
    assert dict(report.posture.attributes) == {
        "managed": True,
        "os_version": "17.3",
        "disk_encrypted": False,
        "jailbroken": True,
    }
    top_network = _jamf_detail(ios=None, network={"imei": IMEI})
    assert _one(parse_jamf(top_network, NOW)).ref == DeviceRef(imei=IMEI)
    wifi_only = _jamf_detail(ios={"supervised": False})
    assert _one(parse_jamf(wifi_only, NOW)).ref == DeviceRef(serial_number=SERIAL)


def test_a_jamf_results_page_and_bad_fields() -> None:
    page = {"totalCount": 2, "results": [_jamf_detail(), _jamf_detail(serialNumber="B", ios={})]}
    assert [r.ref for r in parse(Source.JAMF, page, NOW)] == [
        DeviceRef(imei=OTHER_IMEI),
        DeviceRef(serial_number="B"),
    ]
    bad = _jamf_detail(ios={"security": {"dataProtected": "yes"}})
    assert "body.dataProtected: true or false" in _refused(parse_jamf, bad, NOW)
    assert "body.ios: a JSON object" in _refused(parse_jamf, _jamf_detail(ios=[1]), NOW)
    assert "body.managed: true or false" in _refused(parse_jamf, _jamf_detail(managed=1), NOW)


# -- fuzz: nothing but InvalidInput ----------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "device", "attributes", "observed_at", "expires_at", "ttl_s", "reports", "value",
    "results", "imei", "serialNumber", "serial_number", "device_id", "managed", "ios",
    "security", "network", "lastSyncDateTime", "lastInventoryUpdateTimestamp", "jailBroken",
    "isEncrypted", "complianceState", "managementState", "operatingSystem", "osVersion", "type",
]  # fmt: skip
_plausible = st.recursive(
    _scalars | st.sampled_from([IMEI, SERIAL, "2026-11-24T12:00:00Z", "True", "managed"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Source)), _json | _plausible)
def test_random_json_never_raises_anything_but_invalid_input(source: Source, body: object) -> None:
    try:
        reports = parse(source, body, NOW)
    except InvalidInput:
        return
    for report in reports:
        assert report.posture.expires_at is not None
        assert report.posture.observed_at <= NOW + timedelta(minutes=5)
