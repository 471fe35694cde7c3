"""Device posture reports as MDM connectors send them: ztsim's own shape, Microsoft
Intune's `managedDevice` and Jamf Pro's mobile device detail, each read into
`PostureReport`s (which device, what its MDM saw and when).

Pure: the parsers take decoded JSON and the current instant, and raise `InvalidInput`
naming the offending field (`reports[2].device.imei`) for anything else. Fields we do not
map are ignored, so a connector can forward the MDM's record whole; none of them (device
names, users, phone numbers) is kept. A report expires (24 h unless it says otherwise):
after that it says nothing and every posture check that reads it fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ztsim.errors import InvalidInput
from ztsim.identifiers import Imei, InvalidIdentifier
from ztsim.policy.facts import Posture, Scalar, check_attribute

MAX_REPORTS = 1000  # per request: a page of an MDM's device list
MAX_FUTURE = timedelta(minutes=5)  # clock skew we forgive a report's observed_at
DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=90)
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DEVICE_ID = re.compile(r"[0-9a-f]{32}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_SAFE_INT = 2**53  # beyond it JSON readers disagree on the value
_BOOLEANS = frozenset({"managed", "compliant", "disk_encrypted", "jailbroken", "supervised"})
_TEXTS = frozenset({"os", "os_version"})

Json = Mapping[str, object]


class Source(StrEnum):
    GENERIC = "generic"
    INTUNE = "intune"
    JAMF = "jamf"


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """How a report names its device: exactly one of ztsim's device id, the IMEI, or the
    serial number registered with the device. Resolved within the reporter's org only."""

    device_id: str | None = None
    imei: str | None = None
    serial_number: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.device_id, self.imei, self.serial_number) if v is not None]
        if len(given) != 1:
            raise InvalidInput("name the device by exactly one of device_id, imei, serial_number")
        if self.device_id is not None and not _DEVICE_ID.fullmatch(self.device_id):
            raise InvalidInput("device_id: 32 lower-case hex digits")
        if self.imei is not None:
            try:
                Imei(self.imei)
            except InvalidIdentifier as exc:
                raise InvalidInput(f"imei: {exc}") from None
        if self.serial_number is not None and not _SERIAL.fullmatch(self.serial_number):
            raise InvalidInput("serial_number: 1-64 of letters, digits, '.', '_' and '-'")


@dataclass(frozen=True, slots=True)
class PostureReport:
    ref: DeviceRef
    posture: Posture


# -- field readers: each names the field it refuses ------------------------------------------


def _object(value: object, where: str) -> Json:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{where}: a JSON object")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: a string")
    # The database takes neither NUL nor lone surrogates, on any backend.
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidInput(f"{where}: not storable text")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}: true or false")
    return value


def _instant(value: object, where: str) -> datetime:
    text = _text(value, where)
    if not _RFC3339.fullmatch(text):
        raise InvalidInput(f"{where}: an RFC 3339 date-time with its offset")
    # Python reads up to six fractional digits; Graph sends seven.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.upper().replace(" ", "T")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{where}: not a valid date-time") from None


def _maybe_instant(body: Json, key: str, where: str) -> datetime | None:
    value = body.get(key)
    return None if value is None else _instant(value, f"{where}.{key}")


def _scalar(name: str, value: object, where: str) -> Scalar:
    if isinstance(value, str):
        _text(value, where)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _SAFE_INT:
        raise InvalidInput(f"{where}: a number within ±2^53")
    if name in _BOOLEANS and not isinstance(value, bool):
        raise InvalidInput(f"{where}: true or false")
    if name in _TEXTS and not isinstance(value, str):
        raise InvalidInput(f"{where}: a string")
    try:
        return check_attribute(name, value)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _posture(
    attributes: Mapping[str, Scalar],
    observed_at: datetime | None,
    expires_at: datetime | None,
    ttl: timedelta | None,
    source: Source,
    now: datetime,
    where: str,
) -> Posture:
    observed = observed_at or now
    if observed > now + MAX_FUTURE:
        raise InvalidInput(f"{where}: observed more than 5 minutes in the future")
    if expires_at is None:
        expires_at = observed + (ttl or DEFAULT_TTL)
    try:
        return Posture(dict(attributes), observed, expires_at, source.value)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _batch(body: object, page: str, where: str) -> list[tuple[Json, str]]:
    """A body's reports: one object, or a list of them under `reports` (or the MDM's own
    `page` key), each with its path."""
    top = _object(body, where)
    keys = [k for k in dict.fromkeys(("reports", page)) if k in top]
    if not keys:
        return [(top, where)]
    if len(keys) > 1:
        raise InvalidInput(f"{where}: give reports or {page}, not both")
    items = top[keys[0]]
    if not isinstance(items, list):
        raise InvalidInput(f"{keys[0]}: a list")
    if len(items) > MAX_REPORTS:
        raise InvalidInput(f"{keys[0]}: at most {MAX_REPORTS} reports per request")
    return [(_object(item, f"{keys[0]}[{i}]"), f"{keys[0]}[{i}]") for i, item in enumerate(items)]


def _ref_error(where: str, exc: InvalidInput) -> InvalidInput:
    text = str(exc)
    joint = "." if text.startswith(("device_id:", "imei:", "serial_number:")) else ": "
    return InvalidInput(f"{where}{joint}{text}")


def _hardware_ref(imei: object, serial: object, where: str) -> DeviceRef:
    """An MDM names a device by IMEI when it has a modem, else by serial number."""
    for name, value in (("imei", imei), ("serialNumber", serial)):
        if value is not None:
            _text(value, f"{where}.{name}")
    if isinstance(imei, str) and imei.replace(" ", ""):
        digits = imei.replace(" ", "")
        try:
            return DeviceRef(imei=digits)
        except InvalidInput as exc:
            if not (isinstance(serial, str) and serial):
                raise _ref_error(where, exc) from None
    if isinstance(serial, str) and serial:
        try:
            return DeviceRef(serial_number=serial)
        except InvalidInput as exc:
            raise _ref_error(where, exc) from None
    raise InvalidInput(f"{where}: names its device by neither IMEI nor serial number")


# -- ztsim's own shape -------------------------------------------------------------------


def _generic_ref(value: object, where: str) -> DeviceRef:
    device = _object(value, where)
    keys = [k for k in ("device_id", "imei", "serial_number") if device.get(k) is not None]
    names = {k: _text(device[k], f"{where}.{k}") for k in keys}
    try:
        return DeviceRef(**names)
    except InvalidInput as exc:
        raise _ref_error(where, exc) from None


def _generic_one(body: Json, where: str, now: datetime) -> PostureReport:
    if "device" not in body:
        raise InvalidInput(f"{where}.device: required")
    ref = _generic_ref(body["device"], f"{where}.device")
    raw = _object(body.get("attributes", {}), f"{where}.attributes")
    # null: the MDM does not know; an absent attribute fails every comparison.
    attributes = {
        name: _scalar(name, value, f"{where}.attributes.{name}")
        for name, value in raw.items()
        if value is not None
    }
    observed = _maybe_instant(body, "observed_at", where)
    expires = _maybe_instant(body, "expires_at", where)
    ttl_s = body.get("ttl_s")
    ttl = None
    if ttl_s is not None:
        if expires is not None:
            raise InvalidInput(f"{where}: give expires_at or ttl_s, not both")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int):
            raise InvalidInput(f"{where}.ttl_s: a whole number of seconds")
        if not 1 <= ttl_s <= MAX_TTL.total_seconds():
            raise InvalidInput(f"{where}.ttl_s: 1 s to 90 days")
        ttl = timedelta(seconds=ttl_s)
    posture = _posture(attributes, observed, expires, ttl, Source.GENERIC, now, where)
    return PostureReport(ref, posture)


def parse_generic(body: object, now: datetime) -> tuple[PostureReport, ...]:
    """One report `{"device": {...}, "attributes": {...}, ...}` or `{"reports": [...]}`."""
    return tuple(_generic_one(item, where, now) for item, where in _batch(body, "reports", "body"))


# -- Microsoft Intune: Graph's managedDevice -------------------------------------------------

_OS_NAMES = {"macosx": "macos", "mac": "macos", "ipados": "ios", "windows10": "windows"}


def _flag(body: Json, key: str, where: str) -> bool | None:
    value = body.get(key)
    return None if value is None else _bool(value, f"{where}.{key}")


def _word(body: Json, key: str, where: str) -> str | None:
    value = body.get(key)
    return None if value is None else _text(value, f"{where}.{key}")


def _set(attributes: dict[str, Scalar], name: str, value: Scalar | None, where: str) -> None:
    if value is not None:
        attributes[name] = _scalar(name, value, where)


def _intune_one(body: Json, where: str, now: datetime) -> PostureReport:
    ref = _hardware_ref(body.get("imei"), body.get("serialNumber"), where)
    attributes: dict[str, Scalar] = {}
    state = _word(body, "managementState", where)
    _set(attributes, "managed", None if state is None else state == "managed", where)
    compliance = _word(body, "complianceState", where)
    # inGracePeriod is non-compliant with access kept for now: not compliant here.
    _set(attributes, "compliant", None if compliance is None else compliance == "compliant", where)
    system = _word(body, "operatingSystem", where)
    if system:
        plain = system.lower().replace(" ", "")
        _set(attributes, "os", _OS_NAMES.get(plain, plain), f"{where}.operatingSystem")
    _set(attributes, "os_version", _word(body, "osVersion", where) or None, f"{where}.osVersion")
    _set(attributes, "disk_encrypted", _flag(body, "isEncrypted", where), where)
    _set(attributes, "supervised", _flag(body, "isSupervised", where), where)
    jailbroken = _word(body, "jailBroken", where)
    if jailbroken in ("True", "False"):  # "Unknown": the attribute stays absent
        attributes["jailbroken"] = jailbroken == "True"
    owner = _word(body, "managedDeviceOwnerType", where)
    if owner in ("company", "personal"):
        attributes["ownership"] = owner
    observed = _maybe_instant(body, "lastSyncDateTime", where)
    posture = _posture(attributes, observed, None, None, Source.INTUNE, now, where)
    return PostureReport(ref, posture)


def parse_intune(body: object, now: datetime) -> tuple[PostureReport, ...]:
    """A Graph `managedDevice`, or a page of them (`{"value": [...]}`)."""
    return tuple(_intune_one(item, where, now) for item, where in _batch(body, "value", "body"))


# -- Jamf Pro: /api/v2/mobile-devices/{id}/detail --------------------------------------------


def _part(body: Json, key: str, where: str) -> Json:
    value = body.get(key)
    return {} if value is None else _object(value, f"{where}.{key}")


def _first(*candidates: object) -> object:
    return next((c for c in candidates if c is not None), None)


def _jamf_one(body: Json, where: str, now: datetime) -> PostureReport:
    ios = _part(body, "ios", where)
    # Where a section sits depends on the server's version: top level or under "ios".
    network = _part(body, "network", where) or _part(ios, "network", f"{where}.ios")
    security = _part(body, "security", where) or _part(ios, "security", f"{where}.ios")
    imei = _first(body.get("imei"), network.get("imei"))
    ref = _hardware_ref(imei, body.get("serialNumber"), where)
    attributes: dict[str, Scalar] = {}
    _set(attributes, "managed", _flag(body, "managed", where), where)
    supervised = _first(ios.get("supervised"), body.get("supervised"))
    if supervised is not None:
        attributes["supervised"] = _bool(supervised, f"{where}.ios.supervised")
    kind = _word(body, "type", where)
    if kind and kind != "unknown":
        _set(attributes, "os", kind.lower(), f"{where}.type")
    _set(attributes, "os_version", _word(body, "osVersion", where) or None, f"{where}.osVersion")
    # Older servers name the security flags isDataProtected, isJailBreakDetected, ...
    for ours, theirs in (
        ("disk_encrypted", "dataProtected"),
        ("jailbroken", "jailBreakDetected"),
        ("passcode_present", "passcodePresent"),
        ("passcode_compliant", "passcodeCompliant"),
    ):
        value = _first(security.get(theirs), security.get("is" + theirs[0].upper() + theirs[1:]))
        _set(attributes, ours, None if value is None else _bool(value, f"{where}.{theirs}"), where)
    observed = _maybe_instant(body, "lastInventoryUpdateTimestamp", where)
    posture = _posture(attributes, observed, None, None, Source.JAMF, now, where)
    return PostureReport(ref, posture)


def parse_jamf(body: object, now: datetime) -> tuple[PostureReport, ...]:
    """A Jamf Pro mobile device detail, or a list page of them (`{"results": [...]}`)."""
    return tuple(_jamf_one(item, where, now) for item, where in _batch(body, "results", "body"))


PARSERS = {Source.GENERIC: parse_generic, Source.INTUNE: parse_intune, Source.JAMF: parse_jamf}


def parse(source: Source, body: object, now: datetime) -> tuple[PostureReport, ...]:
    """Reports in `source`'s shape; a body of reports of another shape is refused."""
    return PARSERS[source](body, now)
