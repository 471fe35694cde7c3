"""A USIM as the tests need it: checks AUTN (MAC-A and SQN freshness, TS 33.102 6.3.3)
and answers RES* or a resynchronisation AUTS. Independent of the platform's side
except for the pure Milenage/KDF functions, which are vector-tested on their own."""

from __future__ import annotations

from dataclasses import dataclass, field

from ztsim.aka import kdf
from ztsim.aka.milenage import Milenage
from ztsim.aka.sqn import SqnVerdict, UsimSqnWindow, make_auts, sqn_from_bytes
from ztsim.aka.vectors import Autn


@dataclass
class Answer:
    kind: str  # "res" | "sync" | "mac"
    value: bytes = b""


@dataclass
class Usim:
    k: bytes
    opc: bytes
    window: UsimSqnWindow = field(default_factory=UsimSqnWindow)

    def authenticate(self, rand: bytes, autn: bytes, snn: str) -> Answer:
        m = Milenage(self.k, self.opc)
        parts = Autn.parse(autn)
        res, ck, ik, ak = m.f2345(rand)
        sqn = bytes(a ^ b for a, b in zip(parts.sqn_xor_ak, ak, strict=True))
        if m.f1(rand, sqn, parts.amf) != parts.mac_a:
            return Answer("mac")
        value = sqn_from_bytes(sqn)
        if self.window.check(value) is not SqnVerdict.FRESH:
            return Answer("sync", make_auts(m, rand, self.window.highest_sqn))
        self.window = self.window.accept(value)
        return Answer("res", kdf.xres_star(ck, ik, snn, rand, res))
