"""Milenage, the 3GPP example algorithm set f1, f1*, f2, f3, f4, f5, f5* (TS 35.206).

One AES-128 ECB encryptor is made per subscriber key K in `Milenage.__init__` and
reused for every block, because creating a cipher context costs more than the
block itself. Blocks are handled as 128-bit integers so that XORs and rotations
are single operations. OP is only an input of `derive_opc`; a `Milenage` holds
the OPc and the encryptor, never OP, and its repr shows neither key.

An instance is not safe to share between threads: the encryptor is stateful in
OpenSSL. Make one per thread, or per request: the cost is one key schedule.
"""

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ztsim.aka._check import fixed

__all__ = ["Milenage", "derive_opc"]

_MASK = (1 << 128) - 1

# TS 35.206 4.1: rotation amounts r1..r5, in bits towards the most significant end.
_R1 = 64
_R3 = 32
_R4 = 64
_R5 = 96
# TS 35.206 4.1: constants c1..c5 (c1 is zero; c2..c5 have one bit set at the low end).
_C1 = 0
_C2 = 1
_C3 = 2
_C4 = 4
_C5 = 8


def _encryptor(k: bytes) -> Callable[[bytes], bytes]:
    # ECB on exactly one block returns that block at once: nothing is buffered.
    return Cipher(algorithms.AES128(k), modes.ECB()).encryptor().update  # noqa: S305


def derive_opc(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP) (TS 35.206 4.1), for operators that provision OP."""
    fixed("K", k, 16)
    fixed("OP", op, 16)
    encrypted = _encryptor(k)(op)
    value = int.from_bytes(encrypted, "big") ^ int.from_bytes(op, "big")
    return value.to_bytes(16, "big")


class Milenage:
    """The Milenage functions for one subscriber key K and operator variant OPc."""

    __slots__ = ("_encrypt", "_opc")

    def __init__(self, k: bytes, opc: bytes) -> None:
        fixed("K", k, 16)
        fixed("OPc", opc, 16)
        self._encrypt = _encryptor(k)
        self._opc = int.from_bytes(opc, "big")

    def __repr__(self) -> str:
        return "Milenage(K=<hidden>, OPc=<hidden>)"

    def _block(self, value: int) -> int:
        return int.from_bytes(self._encrypt(value.to_bytes(16, "big")), "big")

    def _temp(self, rand: bytes) -> int:
        # TS 35.206 4.1: TEMP = E_K(RAND xor OPc), shared by every function.
        fixed("RAND", rand, 16)
        return self._block(int.from_bytes(rand, "big") ^ self._opc)

    def _out1(self, temp: int, sqn: bytes, amf: bytes) -> bytes:
        fixed("SQN", sqn, 6)
        fixed("AMF", amf, 2)
        half = sqn + amf
        x = int.from_bytes(half + half, "big") ^ self._opc
        rotated = ((x << _R1) | (x >> (128 - _R1))) & _MASK
        return (self._block(temp ^ rotated ^ _C1) ^ self._opc).to_bytes(16, "big")

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A, the network authentication code carried in AUTN (8 bytes)."""
        return self._out1(self._temp(rand), sqn, amf)[:8]

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, the resynchronisation authentication code carried in AUTS (8 bytes)."""
        return self._out1(self._temp(rand), sqn, amf)[8:]

    def _f2345(self, temp: int) -> tuple[bytes, bytes, bytes, bytes]:
        opc = self._opc
        x = temp ^ opc
        out2 = (self._block(x ^ _C2) ^ opc).to_bytes(16, "big")  # r2 = 0
        ck = self._block((((x << _R3) | (x >> (128 - _R3))) & _MASK) ^ _C3) ^ opc
        ik = self._block((((x << _R4) | (x >> (128 - _R4))) & _MASK) ^ _C4) ^ opc
        return out2[8:], ck.to_bytes(16, "big"), ik.to_bytes(16, "big"), out2[:6]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK): f2 (8 bytes), f3 (16), f4 (16) and f5 (6)."""
        return self._f2345(self._temp(rand))

    def f5star(self, rand: bytes) -> bytes:
        """AK*, the key that conceals SQN_MS in AUTS (6 bytes)."""
        x = self._temp(rand) ^ self._opc
        rotated = ((x << _R5) | (x >> (128 - _R5))) & _MASK
        return (self._block(rotated ^ _C5) ^ self._opc).to_bytes(16, "big")[:6]

    def f1_f2345(
        self, rand: bytes, sqn: bytes, amf: bytes
    ) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """(MAC-A, RES, CK, IK, AK) with TEMP computed once: what a vector needs."""
        temp = self._temp(rand)
        mac_a = self._out1(temp, sqn, amf)[:8]
        res, ck, ik, ak = self._f2345(temp)
        return mac_a, res, ck, ik, ak
