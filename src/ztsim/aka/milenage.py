"""Milenage, the 3GPP example algorithm set f1, f1*, f2, f3, f4, f5, f5* (TS 35.206).

One AES-128 ECB encryptor is made per subscriber key K in `Milenage.__init__` and
reused for every block, because creating a cipher context costs more than the
block itself. Blocks are handled as 128-bit integers so that XORs and rotations
are single operations. OP is only an input of `derive_opc`; a `Milenage` holds
the OPc and the encryptor, never OP, and its repr shows neither key.

An instance is not safe to share between threads: the encryptor is stateful in
OpenSSL. Make one per thread, or per request: the cost is one key schedule.

`_milenage.c` computes OUT1..OUT5 in one call on the processor's AES instructions,
where the install could build it, the processor has them and ZTSIM_PURE_PYTHON is not
set (read once, at import): an instance and the functions a vector needs then cost
about 1.7 us instead of 8.1 here (the encryptor's making was half of it), and with
`fiveg_he_parts` a whole 5G HE vector (the KDFs too: OpenSSL's one-shot HMAC alone cost
1.7 us a call; the module's SHA-256 runs on the SHA extensions where the processor has
them, ZTSIM_SOFT_SHA256 set at import asks for its portable compression) about 3.5 us
instead of 17. An instance then holds K and OPc as bytes
(as the encryptor held K's schedule) and no encryptor; the functions here and in `kdf`
are the reference (`outputs_py`; the tests hold the two equal).
"""

import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ztsim.aka._check import fixed

__all__ = ["Milenage", "derive_opc", "outputs_py"]

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


def _speedup() -> Any:
    """The C module if it was built, the processor has AES-NI and ZTSIM_PURE_PYTHON is
    not set."""
    if os.environ.get("ZTSIM_PURE_PYTHON"):
        return None
    try:
        from ztsim.aka import _milenage as module
    except ImportError:
        return None
    return module if module.supported() else None


_fast = _speedup()


def derive_opc(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP) (TS 35.206 4.1), for operators that provision OP."""
    fixed("K", k, 16)
    fixed("OP", op, 16)
    encrypted = _encryptor(k)(op)
    value = int.from_bytes(encrypted, "big") ^ int.from_bytes(op, "big")
    return value.to_bytes(16, "big")


def outputs_py(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
    """OUT1..OUT5 (TS 35.206 4.1), 16 octets each: the reference of `_milenage.outputs`."""
    m = Milenage(k, opc, reference=True)
    temp = m._temp(rand)
    x = temp ^ m._opc
    out2 = (m._block(x ^ _C2) ^ m._opc).to_bytes(16, "big")  # r2 = 0
    _, ck, ik, _ = m._f2345(temp)
    rotated = ((x << _R5) | (x >> (128 - _R5))) & _MASK
    out5 = (m._block(rotated ^ _C5) ^ m._opc).to_bytes(16, "big")
    return m._out1(temp, sqn, amf) + out2 + ck + ik + out5


_NO_SQN, _NO_AMF = bytes(6), bytes(2)  # for the functions that do not read them


class Milenage:
    """The Milenage functions for one subscriber key K and operator variant OPc; with
    `reference`, always by the Python functions here (else by `_milenage.c` where it
    runs)."""

    __slots__ = ("_c_keys", "_encrypt", "_opc")

    def __init__(self, k: bytes, opc: bytes, *, reference: bool = False) -> None:
        fixed("K", k, 16)
        fixed("OPc", opc, 16)
        self._opc = int.from_bytes(opc, "big")
        self._c_keys: tuple[bytes, bytes] | None = None
        self._encrypt: Callable[[bytes], bytes] | None = None
        if _fast is None or reference:
            self._encrypt = _encryptor(k)
        else:
            self._c_keys = (k, opc)

    def __repr__(self) -> str:
        return "Milenage(K=<hidden>, OPc=<hidden>)"

    def _c_inputs(self, rand: bytes, sqn: bytes, amf: bytes) -> tuple[bytes, bytes] | None:
        # (K, OPc) for the C module once the other inputs are checked; None: Python path.
        if self._c_keys is None:
            return None
        fixed("RAND", rand, 16)
        fixed("SQN", sqn, 6)
        fixed("AMF", amf, 2)
        return self._c_keys

    def _outputs(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes | None:
        # OUT1..OUT5 from the C module, if this instance uses it.
        keys = self._c_inputs(rand, sqn, amf)
        if keys is None:
            return None
        out: bytes = _fast.outputs(*keys, rand, sqn, amf)
        return out

    def fiveg_he_parts(
        self, rand: bytes, sqn: bytes, amf: bytes, snn: bytes
    ) -> tuple[bytes, bytes, bytes, bytes] | None:
        """(AUTN, XRES*, KAUSF, HXRES*) of a 5G HE vector (TS 33.501 6.1.3.2) in one call
        of the C module, for the serving network name's encoding `snn`; None where this
        instance does not use it (`vectors.fiveg_he_vector` then derives them in Python)."""
        keys = self._c_inputs(rand, sqn, amf)
        if keys is None:
            return None
        he: bytes = _fast.fiveg_he(*keys, rand, sqn, amf, snn)
        return he[:16], he[16:32], he[32:64], he[64:]

    def _block(self, value: int) -> int:
        assert self._encrypt is not None  # the Python path's instances have one
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
        out = self._outputs(rand, sqn, amf)
        if out is not None:
            return out[:8]
        return self._out1(self._temp(rand), sqn, amf)[:8]

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, the resynchronisation authentication code carried in AUTS (8 bytes)."""
        out = self._outputs(rand, sqn, amf)
        if out is not None:
            return out[8:16]
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
        out = self._outputs(rand, _NO_SQN, _NO_AMF)
        if out is not None:
            return out[24:32], out[32:48], out[48:64], out[16:22]
        return self._f2345(self._temp(rand))

    def f5star(self, rand: bytes) -> bytes:
        """AK*, the key that conceals SQN_MS in AUTS (6 bytes)."""
        out = self._outputs(rand, _NO_SQN, _NO_AMF)
        if out is not None:
            return out[64:70]
        x = self._temp(rand) ^ self._opc
        rotated = ((x << _R5) | (x >> (128 - _R5))) & _MASK
        return (self._block(rotated ^ _C5) ^ self._opc).to_bytes(16, "big")[:6]

    def f1_f2345(
        self, rand: bytes, sqn: bytes, amf: bytes
    ) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """(MAC-A, RES, CK, IK, AK) with TEMP computed once: what a vector needs."""
        out = self._outputs(rand, sqn, amf)
        if out is not None:
            return out[:8], out[24:32], out[32:48], out[48:64], out[16:22]
        temp = self._temp(rand)
        mac_a = self._out1(temp, sqn, amf)[:8]
        res, ck, ik, ak = self._f2345(temp)
        return mac_a, res, ck, ik, ak
