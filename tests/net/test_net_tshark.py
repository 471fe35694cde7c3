"""An independent reading of our datagrams: Wireshark's Geneve dissector, through tshark,
on a pcap file written here (Ethernet, IPv4, UDP to port 6081, our Geneve datagram)."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.geneve import PORT, GeneveHeader, GeneveOption
from ztsim.net.identity_option import (
    OPTION_CLASS,
    TYPE_IDENTITY,
    TYPE_POLICY_CLASS,
    ClassTag,
    Subject,
)
from ztsim.net.tunnel_routes import TunnelRoutes

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="needs tshark (Wireshark's dissectors)")

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(source: str, destination: str, protocol: int, payload: bytes) -> bytes:
    fields = [0x45, 0, 20 + len(payload), 1, 0, 64, protocol, 0]
    addresses = ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address(destination).packed
    header = struct.pack("!BBHHHBBH", *fields) + addresses
    fields[7] = _checksum(header)
    return struct.pack("!BBHHHBBH", *fields) + addresses + payload


def _frame(source: str, destination: str, geneve: bytes) -> bytes:
    udp = (
        struct.pack("!HHHH", 50000, PORT, 8 + len(geneve), 0) + geneve
    )  # checksum 0: none (RFC 768)
    ethernet = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    return ethernet + _ipv4(source, destination, 17, udp)


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    records = b"".join(
        struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f for i, f in enumerate(frames)
    )
    path.write_bytes(_PCAP_HEADER + records)


def _fields(path: Path, *names: str) -> list[list[str]]:
    assert TSHARK is not None
    argv = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for name in names:
        argv += ["-e", name]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("|") for line in done.stdout.splitlines()]


def test_tshark_reads_the_vni_and_our_options(tmp_path: Path) -> None:
    subject = Subject(ClassTag(7, 42), "0123456789abcdef0123456789abcdef")
    routes = TunnelRoutes([("10.20.0.0/16", "hq")])
    gateway = Endpoint([Site("hq", 0x00BEEF, "192.0.2.2")], routes, lambda raw: subject)
    inner = _ipv4("10.45.0.7", "10.20.0.5", 17, struct.pack("!HHHH", 4000, 53, 8, 0))
    [(_, datagram)] = gateway.outbound(inner, 0.0)
    path = tmp_path / "geneve.pcap"
    _write_pcap(path, [_frame("192.0.2.1", "192.0.2.2", datagram)])

    [row] = _fields(
        path,
        "geneve.vni",
        "geneve.proto_type",
        "geneve.flags.critical",
        "geneve.option.class",
        "geneve.option.type",
        "geneve.option.type.critical",
        "geneve.option.length",
        "geneve.option.unknown.data",
        "ip.src",
        "ip.dst",
    )
    vni, proto, critical, classes, types, crit_types, lengths, data, sources, destinations = row
    assert int(vni, 0) == 0x00BEEF
    assert int(proto, 0) == 0x0800
    assert critical in ("1", "True")
    assert [int(c, 0) for c in classes.split(",")] == [OPTION_CLASS, OPTION_CLASS]
    assert [int(t, 0) for t in types.split(",")] == [TYPE_POLICY_CLASS, TYPE_IDENTITY]
    assert [c in ("1", "True") for c in crit_types.split(",")] == [True, False]
    # Wireshark shows lengths in octets under one field name: the header's Opt Len
    # first (8 words), then each option's, its own header included.
    assert [int(n, 0) for n in lengths.split(",")] == [32, 12, 20]
    assert data.split(",") == ["000000070000002a", "0123456789abcdef0123456789abcdef"]
    # The inner packet is dissected too: outer addresses first, then the inner ones.
    assert sources.split(",") == ["192.0.2.1", "10.45.0.7"]
    assert destinations.split(",") == ["192.0.2.2", "10.20.0.5"]


def test_tshark_reads_a_header_without_options_and_a_foreign_option(tmp_path: Path) -> None:
    plain = GeneveHeader(1).to_wire()
    foreign = GeneveHeader(
        0xFFFFFF, options=(GeneveOption(0x0102, 0x33, b"abcd"),), oam=True
    ).to_wire()
    inner = _ipv4("10.20.0.5", "10.45.0.7", 17, struct.pack("!HHHH", 53, 4000, 8, 0))
    path = tmp_path / "more.pcap"
    _write_pcap(
        path,
        [
            _frame("192.0.2.2", "192.0.2.1", plain + inner),
            _frame("192.0.2.2", "192.0.2.1", foreign + inner),
        ],
    )

    rows = _fields(
        path, "geneve.vni", "geneve.flags.oam", "geneve.option.class", "geneve.option.type"
    )
    assert [int(r[0], 0) for r in rows] == [1, 0xFFFFFF]
    assert [r[1] in ("1", "True") for r in rows] == [False, True]
    assert rows[0][2:] == ["", ""]
    assert (int(rows[1][2], 0), int(rows[1][3], 0)) == (0x0102, 0x33)
