"""The C hot path (`ztsim.radius._fast`) against its Python reference (`fastpath`) and
against independent implementations: hashlib's MD5 and the hmac module (OpenSSL)."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.radius import (
    Attribute,
    Code,
    Packet,
    RadiusDecodeError,
    SharedSecret,
    fastpath,
    sign_request,
)
from ztsim.radius.datatypes import decode_value
from ztsim.radius.dictionary import decode_attributes, make_attribute
from ztsim.radius.errors import RadiusEncodeError
from ztsim.radius.fastpath import (
    RawAccounting,
    RawRequest,
    _fast,
    encode_access_reply,
    ma_ok_py,
    message_authenticator_ok,
    scan_accounting,
    scan_accounting_py,
    scan_request,
    scan_request_py,
)

from support.mutations import overwritten

needs_c = pytest.mark.skipif(_fast is None, reason="pure Python run (ZTSIM_PURE_PYTHON)")
# Both implementations of the checks and the signing: "python" runs the reference.
IMPLEMENTATIONS = ["python"] if _fast is None else ["c", "python"]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(fastpath, "_fast", None)
    return str(request.param)


SECRET = b"fast-secret-0123456789"


def test_the_c_module_is_built_unless_pure_python_is_asked_for() -> None:
    # (Not skipped in a pure run: there it checks that nothing was loaded.)
    # `make` builds it; a missing compiler would silently cost the hot path its speed.
    assert (_fast is None) == bool(os.environ.get("ZTSIM_PURE_PYTHON"))
    assert (scan_request is scan_request_py) == (_fast is None)
    assert (scan_accounting is scan_accounting_py) == (_fast is None)


@needs_c
# RFC 1321 §A.5 and RFC 2202 §2 (test cases 1, 2 and 6).
@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
        (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
    ],
)
def test_md5_rfc1321_vectors(data: bytes, digest: str) -> None:
    assert _fast.md5(data).hex() == digest


@needs_c
@pytest.mark.parametrize(
    ("key", "data", "digest"),
    [
        (b"\x0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
        (b"Jefe", b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
        (
            b"\xaa" * 80,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
        ),
    ],
)
def test_hmac_md5_rfc2202_vectors(key: bytes, data: bytes, digest: str) -> None:
    assert _fast.hmac_md5(key, data).hex() == digest


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=100))
def test_md5_and_hmac_equal_hashlib(data: bytes, key: bytes) -> None:
    assert _fast.md5(data) == hashlib.md5(data, usedforsecurity=False).digest()
    assert _fast.hmac_md5(key, data) == hmac.digest(key, data, "md5")


def _request(identifier: int, extra: tuple[object, ...] = ()) -> bytes:
    attributes = [
        make_attribute("User-Name", "001010000000001"),
        make_attribute("3GPP-IMSI", "001010000000001"),
        make_attribute("3GPP-IMEISV", "3534900698733201"),
        make_attribute("Called-Station-Id", "corp"),
        make_attribute("Proxy-State", b"\x01\x02"),
    ]
    packet = Packet(Code.ACCESS_REQUEST, identifier, os.urandom(16), tuple(attributes))
    return sign_request(packet, SharedSecret(SECRET), add_message_authenticator=True).encode()


def _mutations() -> st.SearchStrategy[bytes]:
    bases = st.integers(0, 255).map(_request)
    truncated = bases.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    return st.one_of(st.binary(max_size=300), overwritten(bases, reach=200), truncated)


def _scan(scan: object, datagram: bytes) -> RawRequest | str:
    try:
        return scan(datagram)  # type: ignore[operator, no-any-return]
    except RadiusDecodeError as exc:
        return f"error: {exc}"


@needs_c
@settings(max_examples=1000, deadline=None)
@given(_mutations())
def test_scan_equals_the_python_reference(datagram: bytes) -> None:
    c, py = _scan(scan_request, datagram), _scan(scan_request_py, datagram)
    assert c == py
    if isinstance(c, tuple):
        # The same types too: the core reads fields by name.
        assert type(c) is RawRequest
        assert type(c.access) is type(py.access)  # type: ignore[union-attr]


# The fixture only picks the implementation: the same for every example.
@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_mutations(), st.binary(min_size=1, max_size=80), st.booleans())
def test_message_authenticator_check_equals_the_standard_library(
    implementation: str, datagram: bytes, secret: bytes, required: bool
) -> None:
    try:
        raw = scan_request_py(datagram)
    except RadiusDecodeError:
        return
    for key in (SECRET, secret):
        expected = _python_ma_ok(datagram, raw, key, required=required)
        assert message_authenticator_ok(datagram, raw, key, required=required) is expected


def _python_ma_ok(datagram: bytes, raw: RawRequest, secret: bytes, *, required: bool) -> bool:
    # RFC 3579 §3.2 with the standard library, independently of both implementations.
    if raw.ma_offset == -2:
        return False
    if raw.ma_offset == -1:
        return not required
    at = raw.ma_offset
    zeroed = datagram[: at + 2] + bytes(16) + datagram[at + 18 : raw.length]
    return hmac.compare_digest(hmac.digest(secret, zeroed, "md5"), datagram[at + 2 : at + 18])


def test_a_signed_request_verifies_and_a_changed_one_does_not(implementation: str) -> None:
    datagram = _request(7)
    raw = scan_request(datagram)
    assert message_authenticator_ok(datagram, raw, SECRET, required=True)
    assert not message_authenticator_ok(datagram, raw, SECRET + b"x", required=True)
    changed = datagram[:30] + bytes([datagram[30] ^ 1]) + datagram[31:]
    assert not message_authenticator_ok(changed, scan_request(changed), SECRET, required=True)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from([Code.ACCESS_ACCEPT, Code.ACCESS_REJECT]),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.binary(min_size=1, max_size=80),
)
def test_replies_equal_the_standard_library_construction(
    implementation: str, code: Code, identifier: int, attributes: bytes, secret: bytes
) -> None:
    raw = scan_request(_request(identifier))
    reply = encode_access_reply(int(code), raw, attributes, secret)
    tail = attributes + b"".join(raw.access.proxy_states)
    length = 20 + 18 + len(tail)
    head = struct.pack("!BBH", int(code), identifier, length)
    ma = hmac.digest(secret, head + raw.authenticator + b"\x50\x12" + bytes(16) + tail, "md5")
    body = b"\x50\x12" + ma + tail
    response = hashlib.md5(head + raw.authenticator + body + secret, usedforsecurity=False)
    assert reply == head + response.digest() + body


@needs_c
def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="out of"):
        _fast.ma_ok(b"\x00" * 20, 30, 20, SECRET)
    with pytest.raises(ValueError, match="out of range"):
        _fast.sign(2, 300, bytes(16), b"", SECRET)
    with pytest.raises(TypeError):
        _fast.scan("not octets")
    with pytest.raises(TypeError):
        _fast.scan_accounting("not octets")
    # Tables of the wrong shape are refused, and the ones in use stay.
    request = _accounting_request([0, 2, 5], 3)
    before = scan_accounting(request)
    for standard in (
        (None,) * 255,
        (("name", 1, None),) + (None,) * 255,
        ((1, 1, None, 0, 0),) * 256,
    ):
        with pytest.raises(TypeError):
            _fast.init_accounting(RawAccounting, standard, {}, decode_value)
    with pytest.raises(TypeError):
        _fast.init_accounting(RawAccounting, (None,) * 256, {10415: ()}, decode_value)
    assert scan_accounting(request) == before


# -- the edges: offsets near the integer limits, replies at RFC 2865's 4096 octets -------

_HUGE_OFFSETS = [2**63 - 1, 2**63 - 18, 2**63 - 19, 2**62, -(2**63), -1]


@needs_c
def test_a_huge_offset_is_refused_without_crashing() -> None:
    # In a child: before the fix, offset + 18 wrapped negative and the HMAC read far out
    # of the buffer (a segfault); a crash must fail this test, not end the suite.
    script = (
        "from ztsim.radius.fastpath import _fast\n"
        f"for offset in {_HUGE_OFFSETS!r}:\n"
        "    try:\n"
        "        _fast.ma_ok(bytes(64), offset, 64, b'secret')\n"
        "    except ValueError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(f'offset {offset} accepted')\n"
        "print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "refused"), done.stderr


def _ma_ok_outcome(check: object, datagram: bytes, offset: int, length: int) -> bool | str:
    try:
        return check(datagram, offset, length, SECRET)  # type: ignore[operator, no-any-return]
    except ValueError as exc:
        return f"error: {exc}"


_EDGE = st.one_of(
    st.integers(-40, 120),
    st.sampled_from(_HUGE_OFFSETS),
    st.integers(-(2**63), 2**63 - 1),
)


@needs_c
@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=100), _EDGE, _EDGE)
def test_the_offset_bounds_agree_with_the_python_reference(
    datagram: bytes, offset: int, length: int
) -> None:
    c = _ma_ok_outcome(_fast.ma_ok, datagram, offset, length)
    assert c == _ma_ok_outcome(ma_ok_py, datagram, offset, length)


def test_the_python_reference_refuses_what_the_c_module_refuses() -> None:
    # Runs in a pure-Python build too: the bounds do not depend on the C module.
    for offset, length in [(19, 64), (47, 64), (2**63 - 1, 64), (20, 37), (20, 65)]:
        with pytest.raises(ValueError, match="out of the packet"):
            ma_ok_py(bytes(64), offset, length, SECRET)
    assert ma_ok_py(bytes(64), 46, 64, SECRET) is False  # the last in-bounds offset


def _sign_outcome(sign: object, size: int) -> bytes | str:
    try:
        return sign(2, 9, bytes(16), bytes(size), SECRET)  # type: ignore[operator, no-any-return]
    except (ValueError, RadiusEncodeError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("size", [4096 - 38 - 1, 4096 - 38, 4096 - 38 + 1, 65535, 70000])
def test_replies_are_capped_at_4096_octets(implementation: str, size: int) -> None:
    raw = scan_request(_request(3))  # its Proxy-State adds 4 octets to the reply
    fits = size + 4 <= 4096 - 38
    if fits:
        reply = encode_access_reply(2, raw, bytes(size), SECRET)
        assert len(reply) == 38 + size + 4 <= 4096
        assert struct.unpack_from("!H", reply, 2)[0] == len(reply)
    else:
        with pytest.raises(RadiusEncodeError, match="more than 4096"):
            encode_access_reply(2, raw, bytes(size), SECRET)


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.integers(4096 - 38 - 40, 4096 - 38 + 40))
def test_c_sign_refuses_exactly_what_is_over_4096(size: int) -> None:
    outcome = _sign_outcome(_fast.sign, size)
    if size <= 4096 - 38:
        assert isinstance(outcome, bytes)
        assert len(outcome) == 38 + size
    else:
        assert outcome == "ValueError"


# -- Accounting-Request: the values scan against the codec ---------------------------------


def _vsa(vendor: int, sub_type: int, value: bytes) -> Attribute:
    return Attribute(26, vendor.to_bytes(4, "big") + bytes((sub_type, len(value) + 2)) + value)


# TS 29.061 §16.4.7.2 / TS 29.274 §8.21.5: ULI type 130 (TAI and ECGI), MCC 001 MNC 01.
_ULI = bytes((130,)) + bytes.fromhex("00f110") + b"\x00\x01" + bytes.fromhex("00f110") + bytes(4)
_ACCOUNTING_ATTRIBUTES = [
    make_attribute("Acct-Status-Type", 1),
    make_attribute("Acct-Status-Type", 2),
    make_attribute("Acct-Session-Id", "s-1"),
    make_attribute("User-Name", "001010000000001"),
    make_attribute("User-Name", "bob"),
    make_attribute("3GPP-IMSI", "001010000000001"),
    make_attribute("3GPP-IMEISV", "3534900698733201"),
    make_attribute("Called-Station-Id", "corp"),
    make_attribute("Framed-IP-Address", "10.64.0.9"),
    make_attribute("3GPP-RAT-Type", 6),
    make_attribute("3GPP-Session-Stop-Indicator", 255),
    make_attribute("Acct-Input-Octets", 1234),
    make_attribute("Proxy-State", b"\x01\x02"),
    make_attribute("Proxy-State", b"\x03"),
    _vsa(10415, 22, _ULI),
    _vsa(311, 1, b"ms"),  # Microsoft (RFC 2548), a TLV vendor too
    _vsa(9, 1, b"cisco"),  # not a TLV vendor: kept whole
    _vsa(10415, 250, b"unknown sub-attribute"),
    Attribute(250, b"unknown attribute"),
    Attribute(80, bytes(16)),  # a Message-Authenticator: the general path's
]


def _accounting_request(picks: list[int], identifier: int) -> bytes:
    attributes = tuple(_ACCOUNTING_ATTRIBUTES[i] for i in picks)
    packet = Packet(Code.ACCOUNTING_REQUEST, identifier, bytes(16), attributes)
    return sign_request(packet, SharedSecret(SECRET)).encode()


def _accounting_mutations() -> st.SearchStrategy[bytes]:
    picks = st.lists(st.integers(0, len(_ACCOUNTING_ATTRIBUTES) - 1), max_size=12)
    bases = st.builds(_accounting_request, picks, st.integers(0, 255))
    truncated = bases.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    return st.one_of(
        bases,
        overwritten(bases, reach=200, min_spots=1),
        truncated,
        st.binary(max_size=200).map(lambda b: b"\x04" + b),
        st.binary(max_size=300),
    )


def _by_codec(datagram: bytes) -> tuple[Packet, dict[str, object]] | str:
    try:
        packet = Packet.decode(datagram)
        values: dict[str, object] = {}
        for attribute in decode_attributes(packet):
            values.setdefault(attribute.name, attribute.value)
    except RadiusDecodeError:
        return "error"
    return packet, values


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_accounting_mutations())
def test_the_accounting_scan_reads_what_the_codec_decodes(datagram: bytes) -> None:
    try:
        scanned = scan_accounting(datagram)
    except RadiusDecodeError:
        scanned = None
        assert _by_codec(datagram) == "error"
    codec = _by_codec(datagram)
    if isinstance(codec, str):
        # The codec refuses it: the scan refused it too, or left it to the general path.
        assert scanned is None
        return
    packet, values = codec
    general = packet.code is not Code.ACCOUNTING_REQUEST or packet.get(80) is not None
    assert (scanned is None) == general
    if scanned is None:
        return
    assert scanned.identifier == packet.identifier
    assert scanned.authenticator == packet.authenticator
    assert scanned.length == packet.length
    # Every known attribute, by name; unknown ones the codec labels are never read.
    known = {k: v for k, v in values.items() if not k.startswith(("Attr-", "Vendor-"))}
    assert scanned.values == known
    for name, value in known.items():
        assert type(scanned.values[name]) is type(value)
    states = b"".join(a.encode() for a in packet.attributes if a.type == 33)
    assert scanned.proxy_states == states


def _scan_values(scan: object, datagram: bytes) -> object:
    try:
        scanned = scan(datagram)  # type: ignore[operator]
    except RadiusDecodeError as exc:
        return f"error: {exc}"
    if scanned is None:
        return None
    # The same values of the same types: the core reads enum members and addresses.
    return scanned, [(name, type(value)) for name, value in scanned.values.items()]


@needs_c
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_accounting_mutations())
def test_the_c_accounting_scan_equals_the_python_reference(datagram: bytes) -> None:
    assert _scan_values(scan_accounting, datagram) == _scan_values(scan_accounting_py, datagram)


def test_the_accounting_scan_reads_a_request_as_sent() -> None:
    datagram = _accounting_request([0, 2, 5, 3, 8, 9, 12, 13, 14, 16], 7)
    scanned = scan_accounting(datagram + b"padding past Length")
    assert scanned is not None
    assert scanned.identifier == 7
    assert scanned.length == len(datagram)
    assert scanned.values["Acct-Status-Type"] == 1
    assert scanned.values["3GPP-IMSI"] == "001010000000001"
    assert str(scanned.values["Framed-IP-Address"]) == "10.64.0.9"
    assert "3GPP-User-Location-Info" in scanned.values
    assert scanned.proxy_states == b"\x21\x04\x01\x02\x21\x03\x03"
    assert scan_accounting(_accounting_request([0, 19], 7)) is None
    assert scan_accounting(_request(7)) is None  # an Access-Request
    with pytest.raises(RadiusDecodeError):
        scan_accounting(datagram[:-1])
    # A Vendor-Specific of its Vendor-Id alone (RFC 2865 §5.26 wants a String after it),
    # and a 3GPP sub-attribute cut off: refused, as the codec refuses them.
    for vsa in (b"\x00\x00\x28\xaf", b"\x00\x00\x28\xaf\x01"):
        bad = Packet(Code.ACCOUNTING_REQUEST, 1, bytes(16), (Attribute(26, vsa),)).encode()
        with pytest.raises(RadiusDecodeError):
            decode_attributes(Packet.decode(bad))
        with pytest.raises(RadiusDecodeError):
            scan_accounting(bad)
