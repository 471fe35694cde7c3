"""Vendor-Specific (26) attributes: vendor id and sub-attributes (RFC 2865 §5.26)."""

from __future__ import annotations

from dataclasses import dataclass

from ztsim.radius.attrtypes import VENDOR_3GPP, VENDOR_MICROSOFT, AttributeType
from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError
from ztsim.radius.packet import MAX_ATTRIBUTE_VALUE_LENGTH, Attribute

# RFC 2865 §5.26: the Vendor-Id takes four octets, the high-order one zero.
VENDOR_ID_LENGTH = 4
# Vendors whose String follows RFC 2865 §5.26's suggested type/length/value layout
# (3GPP per TS 29.061 §16.4.7.1; Microsoft per RFC 2548 §2).
TLV_VENDORS = frozenset({VENDOR_3GPP, VENDOR_MICROSOFT})


@dataclass(frozen=True, slots=True)
class VendorAttribute:
    """One sub-attribute inside a Vendor-Specific attribute."""

    vendor: int
    type: int
    value: bytes


def split_vendor_specific(value: bytes) -> tuple[int, bytes]:
    """Split a Vendor-Specific value into (vendor id, vendor string)."""
    if len(value) < VENDOR_ID_LENGTH + 1:
        raise RadiusDecodeError(f"Vendor-Specific value is {len(value)} octets, shorter than 5")
    return int.from_bytes(value[:VENDOR_ID_LENGTH], "big"), value[VENDOR_ID_LENGTH:]


def decode_sub_attributes(vendor: int, data: bytes) -> tuple[VendorAttribute, ...]:
    """Decode the type/length/value sub-attributes of a TLV vendor's string."""
    found: list[VendorAttribute] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise RadiusDecodeError(f"vendor {vendor} sub-attribute is cut off after its type")
        sub_type, sub_length = data[offset], data[offset + 1]
        if sub_length < 2 or offset + sub_length > len(data):
            raise RadiusDecodeError(
                f"vendor {vendor} sub-attribute {sub_type} has bad length {sub_length}"
            )
        found.append(VendorAttribute(vendor, sub_type, data[offset + 2 : offset + sub_length]))
        offset += sub_length
    return tuple(found)


def encode_vendor_attribute(vendor: int, sub_type: int, value: bytes) -> Attribute:
    """A Vendor-Specific attribute holding exactly one sub-attribute."""
    if not 0 <= vendor < 1 << 24:
        raise RadiusEncodeError("vendor id must fit in 24 bits")
    if not 0 <= sub_type <= 255:
        raise RadiusEncodeError("vendor attribute type must be 0..255")
    limit = MAX_ATTRIBUTE_VALUE_LENGTH - VENDOR_ID_LENGTH - 2
    if len(value) > limit:
        raise RadiusEncodeError(f"vendor attribute value longer than {limit} octets")
    data = vendor.to_bytes(VENDOR_ID_LENGTH, "big") + bytes((sub_type, len(value) + 2)) + value
    return Attribute(AttributeType.VENDOR_SPECIFIC, data)
