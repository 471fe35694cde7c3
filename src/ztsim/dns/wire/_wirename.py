"""Domain names on the wire (RFC 1035 §3.1, §4.1.4) and in presentation text (§5.1).

Names in message values are `str` in presentation form: labels joined by dots,
no trailing dot, the root as "". Label bytes that are not printable ASCII, and
the dot and backslash, are written as `\\DDD` / `\\.` / `\\\\`, so any label a
peer can send round-trips. Case is kept: DNS compares names case-insensitively
but clients using 0x20 mixing expect their case echoed back.
"""

from ztsim.dns.wire.constants import MAX_LABEL, MAX_NAME_WIRE
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError

Labels = tuple[bytes, ...]

_POINTER = 0xC0  # RFC 1035 §4.1.4: the two top bits set mark a compression pointer
_MAX_POINTER_TARGET = 0x3FFF  # 14 bits of offset
_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def decode_name(wire: bytes, offset: int) -> tuple[Labels, int]:
    """Read the name at `offset`; return its labels and the offset just after it.

    Every pointer must point strictly before the pointer itself, so loops are
    impossible and the walk ends; the whole name must fit in 255 octets.
    """
    labels: list[bytes] = []
    total = 1  # the root label's length octet
    end = -1
    pos = offset
    limit = len(wire)
    while True:
        if pos >= limit:
            raise DnsDecodeError("name runs past the end of the message")
        length = wire[pos]
        if length == 0:
            if end < 0:
                end = pos + 1
            return tuple(labels), end
        kind = length & _POINTER
        if kind == _POINTER:
            if pos + 1 >= limit:
                raise DnsDecodeError("compression pointer cut short")
            target = ((length & 0x3F) << 8) | wire[pos + 1]
            if target >= pos:
                raise DnsDecodeError("compression pointer does not point backwards")
            if end < 0:
                end = pos + 2
            pos = target
            continue
        if kind:
            raise DnsDecodeError(f"unsupported label type 0x{kind:02x}")
        total += length + 1
        if total > MAX_NAME_WIRE:
            raise DnsDecodeError("name longer than 255 octets")
        start = pos + 1
        pos = start + length
        if pos > limit:
            raise DnsDecodeError("label runs past the end of the message")
        labels.append(wire[start:pos])


def check_labels(labels: Labels) -> None:
    """Raise `DnsEncodeError` unless `labels` form a name that fits the wire limits."""
    total = 1
    for label in labels:
        if not 0 < len(label) <= MAX_LABEL:
            raise DnsEncodeError(f"label of {len(label)} octets (1..{MAX_LABEL} allowed)")
        total += len(label) + 1
    if total > MAX_NAME_WIRE:
        raise DnsEncodeError(f"name of {total} octets (at most {MAX_NAME_WIRE})")


def encode_name(labels: Labels, out: bytearray, table: dict[Labels, int] | None) -> None:
    """Append `labels` to `out`, pointing at an earlier copy of a suffix when `table` has one.

    Suffixes are matched byte for byte, so a compressed name keeps its case.
    """
    for index in range(len(labels)):
        suffix = labels[index:]
        if table is not None:
            earlier = table.get(suffix)
            if earlier is not None:
                out += (0xC000 | earlier).to_bytes(2, "big")
                return
            if len(out) <= _MAX_POINTER_TARGET:
                table[suffix] = len(out)
        label = labels[index]
        out.append(len(label))
        out += label
    out.append(0)


def labels_to_text(labels: Labels) -> str:
    """The presentation form of `labels`, escaped so that `text_to_labels` inverts it."""
    parts = []
    for label in labels:
        if all(byte in _PLAIN for byte in label):
            parts.append(label.decode("ascii"))
            continue
        chars = []
        for byte in label:
            if byte in _PLAIN:
                chars.append(chr(byte))
            elif byte in (0x2E, 0x5C):
                chars.append("\\" + chr(byte))
            else:
                chars.append(f"\\{byte:03d}")
        parts.append("".join(chars))
    return ".".join(parts)


def text_to_labels(text: str) -> Labels:
    """Parse presentation text (one trailing dot allowed) into checked labels."""
    if not isinstance(text, str):
        raise DnsEncodeError(f"name must be a str, got {type(text).__name__}")
    if text in ("", "."):
        return ()
    labels: list[bytes] = []
    current = bytearray()
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == ".":
            if not current:
                raise DnsEncodeError("empty label in name")
            labels.append(bytes(current))
            current = bytearray()
            index += 1
            if index == length:
                break
            continue
        if char == "\\":
            index = _read_escape(text, index, current)
            continue
        code = ord(char)
        if code > 0x7E or code < 0x21:
            raise DnsEncodeError("name text must be printable ASCII; escape other octets")
        current.append(code)
        index += 1
    if current:
        labels.append(bytes(current))
    elif not text.endswith("."):
        raise DnsEncodeError("empty label in name")
    result = tuple(labels)
    check_labels(result)
    return result


def _read_escape(text: str, index: int, current: bytearray) -> int:
    digits = text[index + 1 : index + 4]
    if len(digits) == 3 and digits.isascii() and digits.isdigit():
        value = int(digits)
        if value > 255:
            raise DnsEncodeError("\\DDD escape above 255")
        current.append(value)
        return index + 4
    if index + 1 >= len(text) or not text[index + 1].isascii():
        raise DnsEncodeError("dangling or non-ASCII escape in name")
    current.append(ord(text[index + 1]))
    return index + 2
