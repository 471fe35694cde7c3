"""Sequence numbers for AKA: the TS 33.102 Annex C scheme with an IND index.

SQN is 48 bits (TS 33.102 6.3.2) and is split as SEQ || IND, IND being the low
`ind_bitlen` bits (Annex C.1.1). IND names an array slot; a home environment
(HE) gives each serving node its own slot, so vectors handed to several serving
nodes can be used out of order without being refused as replays.

Decisions, each following the Annex unless said otherwise:

* HE side (`SqnState`, `next_sqn`, Annex C.1.2): one counter SEQ_HE per
  subscriber, incremented by one for every vector, whatever its IND. SEQ_HE
  never wraps: when SEQ would not fit in 48 - ind_bitlen bits, `next_sqn`
  raises `SqnError` (the subscriber needs new keys; Annex C.1 forbids reuse).
* Resynchronisation (`resync`, Annex C.3 and 6.3.5 step 5): once AUTS verifies,
  the HE sets SEQ_HE := SEQ_MS unconditionally, even when that moves it back.
  The next SEQ is then SEQ_MS + 1, which the USIM accepts in every slot since
  SEQ_MS is its highest accepted SEQ. The 6.3.5 step 2 shortcut (keep SEQ_HE if
  the USIM would accept it anyway) is not taken: a resync is rare and the
  unconditional reset is what the published expectations follow.
* USIM side (`UsimSqnWindow`, Annex C.2): an array SEQ_MS(i), all 0 at first.
  SQN is fresh when SEQ > SEQ_MS(IND) (C.2.1), SEQ - SEQ_MS <= delta, the
  wrap-around guard against a far-ahead SQN (C.2.2, delta = 2^28 recommended),
  and SEQ_MS - SEQ <= L, the optional age limit on vectors of another slot
  (Annex C.2, L = 2^28 by default here; None turns it off). SEQ_MS without
  index is the highest accepted SEQ anywhere, and SQN_MS sent in AUTS is the
  whole SQN (SEQ || IND) that carried it (C.2.1 b).
* AUTS (`make_auts`, `verify_auts`, 6.3.3): AUTS = (SQN_MS xor AK*) || MAC-S
  with AK* = f5*(RAND) and MAC-S = f1*(SQN_MS, RAND, AMF = 0000).
"""

import enum
import hmac
from dataclasses import dataclass, field, replace

from ztsim.aka.errors import ResyncError, SqnError
from ztsim.aka.milenage import Milenage

__all__ = [
    "ResyncError",
    "SqnError",
    "SqnState",
    "SqnVerdict",
    "UsimSqnWindow",
    "check_sqn",
    "make_auts",
    "next_sqn",
    "resync",
    "split_sqn",
    "sqn_from_bytes",
    "sqn_to_bytes",
    "verify_auts",
]

# TS 33.102 6.3.2: SQN is 48 bits.
SQN_BITS = 48
SQN_MAX = (1 << SQN_BITS) - 1
# TS 33.102 Annex C.1.1 example; IND of 5 bits gives 32 serving-node slots.
DEFAULT_IND_BITLEN = 5
# Our ceiling: 2^16 slots already exceeds any USIM's array (TS 31.102 EF SQN).
MAX_IND_BITLEN = 16
# TS 33.102 Annex C.2.2: recommended wrap-around limit delta.
DEFAULT_DELTA = 1 << 28
# TS 33.102 Annex C.2: age limit L (operator choice; 2^28 is this project's default).
DEFAULT_AGE_LIMIT = 1 << 28
# TS 33.102 6.3.3: AMF assumed to be all zeros when computing MAC-S.
RESYNC_AMF = b"\x00\x00"
# TS 33.102 6.3.3: AUTS = Conc(SQN_MS) (6 octets) || MAC-S (8 octets).
AUTS_LENGTH = 14


def _check_ind_bitlen(ind_bitlen: object) -> int:
    if type(ind_bitlen) is not int or not 0 <= ind_bitlen <= MAX_IND_BITLEN:
        raise SqnError(f"ind_bitlen must be an int from 0 to {MAX_IND_BITLEN}")
    return ind_bitlen


def check_sqn(sqn: object) -> int:
    """Return `sqn` if it is an int in [0, 2^48 - 1]; raise `SqnError` otherwise."""
    if type(sqn) is not int or not 0 <= sqn <= SQN_MAX:
        raise SqnError("SQN must be an int from 0 to 2^48 - 1")
    return sqn


def sqn_to_bytes(sqn: int) -> bytes:
    """The 6-octet big-endian form used in AUTN, AUTS and the KDFs."""
    return check_sqn(sqn).to_bytes(6, "big")


def sqn_from_bytes(data: bytes) -> int:
    """Inverse of `sqn_to_bytes`."""
    if type(data) is not bytes or len(data) != 6:
        raise SqnError("SQN must be 6 bytes")
    return int.from_bytes(data, "big")


def split_sqn(sqn: int, ind_bitlen: int = DEFAULT_IND_BITLEN) -> tuple[int, int]:
    """(SEQ, IND) of a 48-bit SQN."""
    bits = _check_ind_bitlen(ind_bitlen)
    value = check_sqn(sqn)
    return value >> bits, value & ((1 << bits) - 1)


@dataclass(frozen=True, slots=True)
class SqnState:
    """The HE's counter SEQ_HE for one subscriber (TS 33.102 Annex C.1.2)."""

    seq_he: int
    ind_bitlen: int = DEFAULT_IND_BITLEN

    def __post_init__(self) -> None:
        bits = _check_ind_bitlen(self.ind_bitlen)
        if type(self.seq_he) is not int or not 0 <= self.seq_he < 1 << (SQN_BITS - bits):
            raise SqnError(f"SEQ_HE must be an int from 0 to 2^{SQN_BITS - bits} - 1")

    @classmethod
    def from_last_sqn(cls, sqn: int, ind_bitlen: int = DEFAULT_IND_BITLEN) -> "SqnState":
        """The state after issuing `sqn` (for stores that keep the last SQN, not SEQ)."""
        seq, _ind = split_sqn(sqn, ind_bitlen)
        return cls(seq, ind_bitlen)


def next_sqn(state: SqnState, ind: int) -> tuple[int, SqnState]:
    """The SQN for a new vector in slot `ind`, and the state that follows it."""
    seq = state.seq_he + 1
    return sqn_for(seq, ind, state.ind_bitlen), SqnState(seq, state.ind_bitlen)


def sqn_for(seq: int, ind: int, ind_bitlen: int = DEFAULT_IND_BITLEN) -> int:
    """The SQN carrying SEQ `seq` (from 1: SEQ_HE starts at 0 and moves on before each
    vector) in slot `ind`: `next_sqn`'s for a state whose SEQ_HE is `seq - 1`, without the
    states (an issuer that keeps SEQ_HE elsewhere)."""
    bits = _check_ind_bitlen(ind_bitlen)
    slots = 1 << bits
    if type(ind) is not int or not 0 <= ind < slots:
        raise SqnError(f"IND must be an int from 0 to {slots - 1}")
    if type(seq) is not int or seq < 1:
        raise SqnError("SEQ must be an int from 1")
    if seq >= 1 << (SQN_BITS - bits):
        raise SqnError("SEQ_HE is exhausted: SQN would wrap around")
    return (seq << bits) | ind


def resync(state: SqnState, sqn_ms: int) -> SqnState:
    """The state after a verified AUTS: SEQ_HE := SEQ_MS (Annex C.3)."""
    seq_ms, _ind = split_sqn(sqn_ms, state.ind_bitlen)
    return replace(state, seq_he=seq_ms)


def make_auts(milenage: Milenage, rand: bytes, sqn_ms: int) -> bytes:
    """AUTS as a USIM sends it (TS 33.102 6.3.3); for USIM models and simulators."""
    conc = (check_sqn(sqn_ms) ^ int.from_bytes(milenage.f5star(rand), "big")).to_bytes(6, "big")
    return conc + milenage.f1star(rand, sqn_to_bytes(sqn_ms), RESYNC_AMF)


def verify_auts(milenage: Milenage, rand: bytes, auts: bytes) -> int:
    """SQN_MS from an AUTS, once its MAC-S verifies (TS 33.102 6.3.3 and 6.3.5).

    Raises `ResyncError` when AUTS is not 14 bytes or MAC-S does not match. The
    tag comparison is constant-time.
    """
    if type(auts) is not bytes:
        raise ResyncError(f"AUTS must be bytes, got {type(auts).__name__}")
    if len(auts) != AUTS_LENGTH:
        raise ResyncError(f"AUTS must be {AUTS_LENGTH} bytes, got {len(auts)}")
    sqn_ms = int.from_bytes(auts[:6], "big") ^ int.from_bytes(milenage.f5star(rand), "big")
    sqn_ms_bytes = sqn_ms.to_bytes(6, "big")
    expected = milenage.f1star(rand, sqn_ms_bytes, RESYNC_AMF)
    if not hmac.compare_digest(expected, auts[6:]):
        raise ResyncError("AUTS MAC-S does not verify")
    return sqn_ms


class SqnVerdict(enum.Enum):
    """What a USIM concludes about a received SQN (TS 33.102 Annex C.2)."""

    FRESH = "fresh"
    REPLAYED = "replayed"  # SEQ <= SEQ_MS(IND), C.2.1 b
    TOO_FAR_AHEAD = "too far ahead"  # SEQ - SEQ_MS > delta, C.2.2
    TOO_OLD = "too old"  # SEQ_MS - SEQ > L, age limit


def _zeros(ind_bitlen: int) -> tuple[int, ...]:
    return (0,) * (1 << _check_ind_bitlen(ind_bitlen))


@dataclass(frozen=True, slots=True)
class UsimSqnWindow:
    """The USIM's SEQ_MS array (Annex C.2); `accept` returns the next window.

    `highest_sqn` is the whole SQN whose SEQ is the highest accepted so far: the
    SQN_MS a USIM puts in AUTS. Build a fresh USIM with `UsimSqnWindow()`.
    """

    ind_bitlen: int = DEFAULT_IND_BITLEN
    seq_ms: tuple[int, ...] = field(default=())
    highest_sqn: int = 0
    delta: int = DEFAULT_DELTA
    age_limit: int | None = DEFAULT_AGE_LIMIT

    def __post_init__(self) -> None:
        _check_ind_bitlen(self.ind_bitlen)
        if self.seq_ms == ():
            object.__setattr__(self, "seq_ms", _zeros(self.ind_bitlen))
        if not isinstance(self.seq_ms, tuple) or len(self.seq_ms) != 1 << self.ind_bitlen:
            raise SqnError("seq_ms must be a tuple with one SEQ per IND slot")
        limit = 1 << (SQN_BITS - self.ind_bitlen)
        if any(type(s) is not int or not 0 <= s < limit for s in self.seq_ms):
            raise SqnError("every SEQ_MS must be an int that fits beside IND in 48 bits")
        seq, ind = split_sqn(self.highest_sqn, self.ind_bitlen)
        if max(self.seq_ms) != seq or self.seq_ms[ind] != seq:
            raise SqnError("highest_sqn must carry the highest SEQ_MS of the array")
        if type(self.delta) is not int or self.delta < 1:
            raise SqnError("delta must be a positive int")
        if self.age_limit is not None and (type(self.age_limit) is not int or self.age_limit < 0):
            raise SqnError("age_limit must be a non-negative int or None")

    @property
    def highest_seq(self) -> int:
        """SEQ_MS: the highest SEQ accepted in any slot."""
        return self.highest_sqn >> self.ind_bitlen

    def check(self, sqn: int) -> SqnVerdict:
        """Judge `sqn` without changing the window."""
        seq, ind = split_sqn(sqn, self.ind_bitlen)
        highest = self.highest_seq
        if seq <= self.seq_ms[ind]:
            return SqnVerdict.REPLAYED
        if seq - highest > self.delta:
            return SqnVerdict.TOO_FAR_AHEAD
        if self.age_limit is not None and highest - seq > self.age_limit:
            return SqnVerdict.TOO_OLD
        return SqnVerdict.FRESH

    def accept(self, sqn: int) -> "UsimSqnWindow":
        """The window after accepting a fresh `sqn`; `SqnError` if it is not fresh."""
        verdict = self.check(sqn)
        if verdict is not SqnVerdict.FRESH:
            raise SqnError(f"SQN refused: {verdict.value}")
        seq, ind = split_sqn(sqn, self.ind_bitlen)
        slots = list(self.seq_ms)
        slots[ind] = seq
        highest = sqn if seq > self.highest_seq else self.highest_sqn
        return replace(self, seq_ms=tuple(slots), highest_sqn=highest)
