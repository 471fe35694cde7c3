"""Request and response bodies. Responses never carry K, OPc, PIN, PUK or a token's
hash; the one response that carries a token is its creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError


def _storable(text: str) -> str:
    # Text the database can hold on every backend: no NUL, no lone surrogates.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
Reason = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_storable)]
RequiredReason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    AfterValidator(_storable),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
    AfterValidator(_storable),
]
ObjectId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

T = TypeVar("T")


def _is_bool_field(annotation: Any) -> bool:
    return annotation is bool or annotation == bool | None


class Request(BaseModel):
    """Every request body: unknown fields refused, and booleans only as JSON booleans
    (pydantic's lax mode would take `0`, `"false"`, `"off"`), in this model and in
    every model built on it."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _strict_booleans(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                key = info.alias or name
                if key in data and _is_bool_field(info.annotation):
                    value = data[key]
                    if not isinstance(value, bool) and not (
                        value is None and info.annotation is not bool
                    ):
                        raise PydanticCustomError(
                            "bool_type", "{field} must be true or false", {"field": key}
                        )
        return data


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


# -- identity -----------------------------------------------------------------------------


class OrgOut(BaseModel):
    id: str
    name: str
    slug: str
    tofu_binding: bool
    created_at: datetime


class OrgPatch(Request):
    tofu_binding: bool | None = None


class MeOut(BaseModel):
    org_id: str
    role: str
    token_id: str
    identity_id: str | None


class IdentityIn(Request):
    kind: Literal["user", "service"]
    name: Name
    email: Email | None = None
    external_id: Name | None = None


class IdentityPatch(Request):
    name: Name | None = None
    enabled: bool | None = None


class IdentityOut(BaseModel):
    id: str
    kind: str
    name: str
    email: str | None
    external_id: str | None
    enabled: bool
    created_at: datetime


class CollectionIn(Request):
    name: Name


class CollectionOut(BaseModel):
    id: str
    name: str
    member_ids: list[str]
    created_at: datetime


class TokenIn(Request):
    name: Name
    role: Literal["admin", "operator", "analyst", "auditor", "self", "network", "smdp", "posture"]
    identity_id: ObjectId | None = None
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    identity_id: str | None
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself. Shown once; store it now.")


# -- inventory ----------------------------------------------------------------------------


class SimOut(BaseModel):
    iccid: str
    imsi: str
    msisdn: str | None
    kind: str
    state: str
    identity_id: str | None
    device_id: str | None
    bound_at: datetime | None
    import_id: str | None
    created_at: datetime
    updated_at: datetime


class AssignIn(Request):
    identity_id: ObjectId
    reason: Reason = ""


class ReasonIn(Request):
    reason: Reason = ""


class RequiredReasonIn(Request):
    reason: RequiredReason


class BindingIn(Request):
    device_id: ObjectId | None
    reason: RequiredReason


SerialNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
DeviceName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_storable)]


class DeviceIn(Request):
    imei: Annotated[str, StringConstraints(pattern=r"^[0-9]{15,16}$")]
    eid: Annotated[str, StringConstraints(pattern=r"^[0-9]{32}$")] | None = None
    owner_id: ObjectId | None = None
    name: DeviceName = ""
    serial_number: SerialNumber | None = Field(
        default=None, description="What MDMs name the device by in posture reports."
    )


class DeviceUpdate(Request):
    """The fields given change; `serial_number: null` removes the serial number."""

    name: DeviceName | None = None
    serial_number: SerialNumber | None = None


class DeviceOut(BaseModel):
    id: str
    imei: str
    eid: str | None
    owner_id: str | None
    name: str
    serial_number: str | None
    created_at: datetime


class StockImportOut(BaseModel):
    id: str
    filename: str
    status: str
    rows: int
    imported: int
    errors: list[dict[str, Any]]  # the first 100
    error_count: int  # every error, listed or not
    actor: str
    created_at: datetime


# -- events -------------------------------------------------------------------------------


class EventOut(BaseModel):
    id: int
    time: datetime
    kind: str
    actor: str
    subject: str
    outcome: str
    reason: str
    payload: dict[str, Any]
