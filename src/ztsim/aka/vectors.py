"""Authentication vectors built in the home environment (HSS/AuC, UDM/ARPF).

`eps_vector` gives the EPS-AKA vector of TS 33.401 6.1.2 (RAND, XRES, AUTN,
KASME); `fiveg_he_vector` gives the 5G HE AV of TS 33.501 6.1.3.2 (RAND, AUTN,
XRES*, KAUSF) plus HXRES*, which the AUSF derives from it (A.5). RAND and SQN
are arguments: drawing randomness and advancing SQN belong to the caller.
AUTN = (SQN xor AK) || AMF || MAC-A (TS 33.102 6.3.2); `Autn.parse` splits it
for a USIM model.
"""

from dataclasses import dataclass

from ztsim.aka import kdf
from ztsim.aka._check import fixed, text
from ztsim.aka.milenage import Milenage

__all__ = ["Autn", "EpsVector", "FiveGHeVector", "eps_vector", "fiveg_he_vector"]

# TS 33.102 6.3.2: AUTN = SQN^AK (6) || AMF (2) || MAC (8).
AUTN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Autn:
    """The parts of an AUTN as a USIM reads them."""

    sqn_xor_ak: bytes
    amf: bytes
    mac_a: bytes

    def __post_init__(self) -> None:
        fixed("SQN^AK", self.sqn_xor_ak, 6)
        fixed("AMF", self.amf, 2)
        fixed("MAC-A", self.mac_a, 8)

    @classmethod
    def parse(cls, data: bytes) -> "Autn":
        """Split a 16-byte AUTN; `AkaInputError` on any other length or type."""
        fixed("AUTN", data, AUTN_LENGTH)
        return cls(data[:6], data[6:8], data[8:])

    def to_bytes(self) -> bytes:
        return self.sqn_xor_ak + self.amf + self.mac_a


@dataclass(frozen=True, slots=True)
class EpsVector:
    """An EPS authentication vector (TS 33.401 6.1.2)."""

    rand: bytes
    xres: bytes
    autn: bytes
    kasme: bytes

    def __repr__(self) -> str:
        return f"EpsVector(rand={self.rand.hex()}, autn={self.autn.hex()}, <secrets hidden>)"


@dataclass(frozen=True, slots=True)
class FiveGHeVector:
    """A 5G home-environment authentication vector (TS 33.501 6.1.3.2)."""

    rand: bytes
    autn: bytes
    xres_star: bytes
    kausf: bytes
    hxres_star: bytes

    def __repr__(self) -> str:
        return f"FiveGHeVector(rand={self.rand.hex()}, autn={self.autn.hex()}, <secrets hidden>)"


def _autn(
    milenage: Milenage, rand: bytes, sqn: bytes, amf: bytes
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    mac_a, res, ck, ik, ak = milenage.f1_f2345(rand, sqn, amf)
    sqn_xor_ak = (int.from_bytes(sqn, "big") ^ int.from_bytes(ak, "big")).to_bytes(6, "big")
    return sqn_xor_ak + amf + mac_a, sqn_xor_ak, res, ck, ik


def eps_vector(
    milenage: Milenage, rand: bytes, sqn: bytes, amf: bytes, plmn_id: bytes
) -> EpsVector:
    """EPS-AKA vector for the serving network `plmn_id` (see `kdf.encode_plmn_id`)."""
    fixed("PLMN id", plmn_id, 3)
    autn, sqn_xor_ak, res, ck, ik = _autn(milenage, rand, sqn, amf)
    return EpsVector(rand, res, autn, kdf.kasme(ck, ik, plmn_id, sqn_xor_ak))


def fiveg_he_vector(
    milenage: Milenage, rand: bytes, sqn: bytes, amf: bytes, snn: str
) -> FiveGHeVector:
    """5G HE AV for serving network name `snn` (see `kdf.serving_network_name`).

    TS 33.501 6.1.3.2 requires the AMF separation bit (bit 0 of AMF) to be 1 for
    5G; that is a policy of the caller's AMF value and is not forced here, so
    that published vectors with other AMFs can be reproduced.
    """
    parts = milenage.fiveg_he_parts(rand, sqn, amf, text("serving network name", snn))
    if parts is not None:
        autn, xres_star, kausf, hxres_star = parts
        return FiveGHeVector(rand, autn, xres_star, kausf, hxres_star)
    autn, sqn_xor_ak, res, ck, ik = _autn(milenage, rand, sqn, amf)
    xres_star = kdf.xres_star(ck, ik, snn, rand, res)
    return FiveGHeVector(
        rand=rand,
        autn=autn,
        xres_star=xres_star,
        kausf=kdf.kausf(ck, ik, snn, sqn_xor_ak),
        hxres_star=kdf.hxres_star(rand, xres_star),
    )
