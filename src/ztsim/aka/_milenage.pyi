"""The C module `_milenage.c` (see `ztsim.aka.milenage`, whose functions are its reference)."""

def outputs(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes, /) -> bytes:
    """OUT1..OUT5 of TS 35.206 4.1, 16 octets each; only where `supported()`."""

def supported() -> bool:
    """Whether this processor has the AES instructions."""

def fiveg_he(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes, snn: bytes, /) -> bytes:
    """AUTN, XRES*, KAUSF and HXRES* of a 5G HE vector (80 octets); only where `supported()`."""

def hmac_sha256(key: bytes, message: bytes, /) -> bytes:
    """HMAC-SHA-256, for the tests."""
