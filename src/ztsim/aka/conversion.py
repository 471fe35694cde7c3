"""GSM conversion functions c2 and c3 (TS 33.102 6.8.1.2).

They turn a UMTS quintet into the SRES and Kc of a GSM triplet, which EAP-SIM
and 2G-only equipment still ask for.
"""

from ztsim.aka._check import fixed, ranged

__all__ = ["c2", "c3"]


def c2(res: bytes) -> bytes:
    """SRES = XOR of the four 32-bit words of RES zero-padded to 128 bits."""
    ranged("RES", res, 4, 16)
    padded = res.ljust(16, b"\x00")
    value = 0
    for start in range(0, 16, 4):
        value ^= int.from_bytes(padded[start : start + 4], "big")
    return value.to_bytes(4, "big")


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc = CK1 xor CK2 xor IK1 xor IK2, the 64-bit halves of CK and IK."""
    fixed("CK", ck, 16)
    fixed("IK", ik, 16)
    value = 0
    for half in (ck[:8], ck[8:], ik[:8], ik[8:]):
        value ^= int.from_bytes(half, "big")
    return value.to_bytes(8, "big")
