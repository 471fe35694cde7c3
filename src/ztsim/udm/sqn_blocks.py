"""SEQ values reserved ahead, per SIM, so that most vectors need no write at all.

One committed `UPDATE sims SET sqn_seq = sqn_seq + N ... RETURNING sqn_seq` hands this
process the block (top - N, top]; it then issues those SEQs from memory, in order. The
row always holds the highest SEQ anyone may have issued (a high-water mark), so:

- After a crash the unused rest of a block is skipped, never reused: the next
  reservation starts above `top`. TS 33.102 Annex C only needs SEQ_HE to grow
  (C.1.2), and a USIM accepts a jump as long as SEQ - SEQ_MS <= delta (C.2.2, delta =
  2^28 recommended): a skip of at most MAX_BLOCK - 1 per restart would take 2^23
  restarts between two authentications to matter, and spends 2^43 SEQs (43 = 48 - IND
  bits) no faster than by a few dozen per restart. The age limit L (C.2: a vector
  whose SEQ is more than L below SEQ_MS is refused) is met as long as L exceeds
  MAX_BLOCK times the number of issuing processes: that is how far apart two
  processes' blocks can be (L = 2^28 here; an operator's L must stay above a few
  hundred).
- A block is used only while the row still shows its `top`: any other writer (another
  process reserving, a resynchronisation setting SEQ_HE := SEQ_MS (Annex C.3), the
  one-vector path of `service.generate`) moves the row, and the block is dropped
  before it issues anything more. So a vector asked for after another one was
  answered, by any process, carries a higher SEQ (as with one UPDATE per vector),
  except after a resynchronisation that moved SEQ_HE back, where the same holds
  from SEQ_MS on. The one gap: a resynchronisation elsewhere landing the row exactly
  on this block's top; the USIM then refuses at most the block's rest, with a sync
  failure, and the next resynchronisation moves the row on (Annex C.3 converges).
- Block size adapts: one SEQ for a SIM seen for the first time or after a quiet
  spell (the row then equals the last SEQ issued, as with one UPDATE per vector, and
  nothing is skipped), doubling up to MAX_BLOCK while each block runs out within
  GROWTH_WINDOW of its reservation.

Sans-I/O: the issuer reads the row and reserves; this keeps the bookkeeping, and takes
the time (a monotonic clock reading, seconds) from its caller.
"""

from __future__ import annotations

from dataclasses import dataclass

# The largest block; see the module docstring for why it is harmless to skip.
MAX_BLOCK = 32
# A block used up within this many seconds means demand: the next one is twice as big.
GROWTH_WINDOW = 1.0
# Blocks kept in memory at most; the oldest reservation goes first (its rest skipped).
MAX_SIMS = 100_000


@dataclass(slots=True)
class _Block:
    next_seq: int
    top: int
    size: int
    reserved_at: float


class SqnBlocks:
    """Each SIM's block of SEQs reserved by this process, by IMSI. Not thread-safe: one owner."""

    def __init__(
        self,
        max_block: int = MAX_BLOCK,
        growth_window: float = GROWTH_WINDOW,
        max_sims: int = MAX_SIMS,
    ) -> None:
        if max_block < 1 or max_sims < 1:
            raise ValueError("max_block and max_sims must be at least 1")
        self.max_block = max_block
        self.growth_window = growth_window
        self.max_sims = max_sims
        self._blocks: dict[str, _Block] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def take(self, sim: str, row_seq: int) -> int | None:
        """The next SEQ of the SIM's block, if the row (`row_seq`, read now) still shows
        the block's top and one is left; None when a reservation is needed."""
        block = self._blocks.get(sim)
        if block is None:
            return None
        if row_seq != block.top:
            # Someone else moved SEQ_HE: this block may now be below what was issued.
            del self._blocks[sim]
            return None
        if block.next_seq > block.top:
            return None  # used up; kept for sizing the next one
        seq = block.next_seq
        block.next_seq += 1
        return seq

    def reservation_size(self, sim: str, wanted: int, now: float) -> int:
        """How many SEQs to reserve for `wanted` vectors now, with some ahead if the
        SIM's last block ran out quickly."""
        block = self._blocks.get(sim)
        ahead = 1
        if (
            block is not None
            and block.next_seq > block.top
            and now - block.reserved_at <= self.growth_window
        ):
            ahead = min(self.max_block, block.size * 2)
        return max(wanted, ahead)

    def install(self, sim: str, top: int, size: int, used: int, now: float) -> None:
        """Record a committed reservation of (top - size, top], `used` of it issued."""
        if not 0 <= used <= size:
            raise ValueError("used must be between 0 and size")
        self._blocks.pop(sim, None)  # re-inserted last: the dict is oldest-first
        self._blocks[sim] = _Block(top - size + 1 + used, top, size, now)
        while len(self._blocks) > self.max_sims:
            del self._blocks[next(iter(self._blocks))]

    def drop(self, sim: str) -> None:
        """Forget the SIM's block (its rest is skipped): after this process moved the row."""
        self._blocks.pop(sim, None)
