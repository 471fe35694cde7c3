"""3GPP authentication core: Milenage, EPS-AKA and 5G-AKA vectors, SQN and SUCI.

Pure functions and immutable values only: bytes in, values out. Randomness
(RAND, ephemeral keys) is always an argument, never drawn here, and no module
touches a database, a socket or a clock.

Modules: `milenage` (TS 35.206), `conversion` (GSM c2/c3, TS 33.102 6.8.1.2),
`kdf` (TS 33.220 B.2, TS 33.401 A.2, TS 33.501 Annex A, RFC 5448),
`sqn` (TS 33.102 Annex C), `vectors` (EPS and 5G home-environment vectors),
`suci` (TS 23.003 2.2B, TS 24.501 9.11.3.4) with `ecies` (TS 33.501 C.3).
"""

__all__: list[str] = []
