"""SQN scheme of TS 33.102 Annex C and AUTS handling (6.3.3, 6.3.5)."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.aka import sqn as sqnmod
from ztsim.aka.errors import ResyncError, SqnError
from ztsim.aka.milenage import Milenage
from ztsim.aka.sqn import SqnState, SqnVerdict, UsimSqnWindow
from ztsim.errors import InvalidInput

from support.vectors import aka_vectors

VECTORS: dict[str, Any] = aka_vectors()
RESYNC = VECTORS["milenage_resync"]
h = bytes.fromhex
MILENAGE = Milenage(h(RESYNC["K"]), h(RESYNC["OPc"]))
RAND = h(RESYNC["RAND"])
SQN_MS = int(RESYNC["SQN_MS"], 16)


def test_resync_amf_is_the_published_one() -> None:
    assert h(RESYNC["AMF_resync"]) == sqnmod.RESYNC_AMF


def test_auts_parts_match_osmocom() -> None:
    parts = RESYNC["AUTS_parts"]
    auts = h(RESYNC["AUTS"])
    assert MILENAGE.f5star(RAND) == h(parts["f5star_AK"])
    assert auts[:6] == h(parts["Conc_SQN_MS"])
    assert auts[6:] == h(parts["MAC_S"])
    assert MILENAGE.f1star(RAND, h(RESYNC["SQN_MS"]), h(RESYNC["AMF_resync"])) == h(parts["MAC_S"])


def test_verify_auts_recovers_sqn_ms() -> None:
    assert sqnmod.verify_auts(MILENAGE, RAND, h(RESYNC["AUTS"])) == SQN_MS


def test_make_auts_reproduces_osmocom() -> None:
    assert sqnmod.make_auts(MILENAGE, RAND, SQN_MS) == h(RESYNC["AUTS"])


@pytest.mark.parametrize(
    "expectation",
    RESYNC["sqn_after_resync_expectations"],
    ids=lambda e: (
        f"bitlen{e['ind_bitlen']}-ind{e['ind']}-{e.get('next_sqn', e.get('then_next_vector_sqn'))}"
    ),
)
def test_sqn_after_resync(expectation: dict[str, int]) -> None:
    # The HE had issued SQN 0x22 (the osmocom vector), then got the AUTS.
    bits = expectation["ind_bitlen"]
    state = SqnState.from_last_sqn(int(RESYNC["vector_at_SQN_0x22"]["SQN"], 16), bits)
    state = sqnmod.resync(state, sqnmod.verify_auts(MILENAGE, RAND, h(RESYNC["AUTS"])))
    issued = []
    for _ in range(3):
        sqn, state = sqnmod.next_sqn(state, expectation["ind"])
        issued.append(sqn)
    if "next_sqn" in expectation:
        assert issued[0] == expectation["next_sqn"]
    else:
        # The "then_next" entries continue the list of the same (bitlen, ind).
        assert expectation["then_next_vector_sqn"] in issued[1:]


def test_then_next_expectations_are_consecutive() -> None:
    rows = [r for r in RESYNC["sqn_after_resync_expectations"] if r["ind_bitlen"] == 5]
    state = sqnmod.resync(SqnState(0x22 >> 5), SQN_MS)
    got = []
    for _ in rows:
        sqn, state = sqnmod.next_sqn(state, 10)
        got.append(sqn)
    assert got == [r.get("next_sqn", r.get("then_next_vector_sqn")) for r in rows]


def test_tampered_auts_is_refused() -> None:
    auts = bytearray(h(RESYNC["AUTS"]))
    auts[-1] ^= 1
    with pytest.raises(ResyncError, match="MAC-S"):
        sqnmod.verify_auts(MILENAGE, RAND, bytes(auts))
    auts = bytearray(h(RESYNC["AUTS"]))
    auts[0] ^= 0x80  # changes the recovered SQN_MS, so MAC-S no longer fits
    with pytest.raises(ResyncError):
        sqnmod.verify_auts(MILENAGE, RAND, bytes(auts))


@given(st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(), st.none()))
def test_fuzzed_auts_only_raise_resync_error(auts: object) -> None:
    try:
        sqn_ms = sqnmod.verify_auts(MILENAGE, RAND, auts)  # type: ignore[arg-type]
    except ResyncError:
        return
    # Only a genuine AUTS can verify; the fuzzer will not forge a MAC-S.
    assert auts == sqnmod.make_auts(MILENAGE, RAND, sqn_ms)


@given(st.integers(0, sqnmod.SQN_MAX))
def test_auts_round_trip(sqn_ms: int) -> None:
    auts = sqnmod.make_auts(MILENAGE, RAND, sqn_ms)
    assert sqnmod.verify_auts(MILENAGE, RAND, auts) == sqn_ms


def test_next_sqn_layout_and_counter() -> None:
    state = SqnState(0)
    first, state = sqnmod.next_sqn(state, 3)
    second, state = sqnmod.next_sqn(state, 7)
    assert (first, second) == ((1 << 5) | 3, (2 << 5) | 7)
    assert sqnmod.split_sqn(second) == (2, 7)
    assert state.seq_he == 2


def test_next_sqn_refuses_to_wrap() -> None:
    last = SqnState((1 << 43) - 1)
    with pytest.raises(SqnError, match="exhausted"):
        sqnmod.next_sqn(last, 0)
    with pytest.raises(SqnError):
        SqnState(1 << 43)


@pytest.mark.parametrize("ind", [-1, 32, 1.0])
def test_bad_ind_is_refused(ind: object) -> None:
    with pytest.raises(SqnError):
        sqnmod.next_sqn(SqnState(0), ind)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [-1, 17, "5"])
def test_bad_ind_bitlen_is_refused(bits: object) -> None:
    with pytest.raises(SqnError):
        SqnState(0, bits)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        UsimSqnWindow(ind_bitlen=bits)  # type: ignore[arg-type]


def test_sqn_bytes_round_trip_and_range() -> None:
    assert sqnmod.sqn_from_bytes(sqnmod.sqn_to_bytes(0x123456789ABC)) == 0x123456789ABC
    with pytest.raises(SqnError):
        sqnmod.sqn_to_bytes(1 << 48)
    with pytest.raises(SqnError):
        sqnmod.sqn_from_bytes(bytes(5))


def _sqn(seq: int, ind: int, bits: int = 5) -> int:
    return seq << bits | ind


def test_usim_accepts_out_of_order_slots_but_not_replays() -> None:
    window = UsimSqnWindow()
    window = window.accept(_sqn(5, 1))
    assert window.check(_sqn(3, 2)) is SqnVerdict.FRESH  # another slot, older SEQ
    window = window.accept(_sqn(3, 2))
    assert window.highest_sqn == _sqn(5, 1)
    assert window.check(_sqn(5, 1)) is SqnVerdict.REPLAYED
    assert window.check(_sqn(4, 1)) is SqnVerdict.REPLAYED
    assert window.check(_sqn(3, 2)) is SqnVerdict.REPLAYED
    with pytest.raises(SqnError, match="replayed"):
        window.accept(_sqn(3, 2))


def test_usim_wrap_around_guard_and_age_limit() -> None:
    window = UsimSqnWindow(delta=100, age_limit=10).accept(_sqn(50, 0))
    assert window.check(_sqn(150, 1)) is SqnVerdict.FRESH
    assert window.check(_sqn(151, 1)) is SqnVerdict.TOO_FAR_AHEAD
    assert window.check(_sqn(40, 1)) is SqnVerdict.FRESH
    assert window.check(_sqn(39, 1)) is SqnVerdict.TOO_OLD
    no_age = UsimSqnWindow(age_limit=None).accept(_sqn(1 << 20, 0))
    assert no_age.check(_sqn(1, 1)) is SqnVerdict.FRESH


def test_default_limits_are_2_to_28() -> None:
    window = UsimSqnWindow(ind_bitlen=0)
    assert window.check(1 << 28) is SqnVerdict.FRESH
    assert window.check((1 << 28) + 1) is SqnVerdict.TOO_FAR_AHEAD


def test_window_checks_itself() -> None:
    with pytest.raises(SqnError):
        UsimSqnWindow(ind_bitlen=1, seq_ms=(0,))
    with pytest.raises(SqnError):
        UsimSqnWindow(ind_bitlen=1, seq_ms=(3, 0), highest_sqn=0)
    with pytest.raises(SqnError):
        UsimSqnWindow(delta=0)


@given(st.lists(st.integers(0, 31), min_size=1, max_size=60))
def test_every_he_sqn_is_fresh_for_the_usim_in_issue_order(inds: list[int]) -> None:
    state, window = SqnState(0), UsimSqnWindow()
    for ind in inds:
        sqn, state = sqnmod.next_sqn(state, ind)
        window = window.accept(sqn)
    assert window.highest_seq == len(inds)


@given(st.integers(1, (1 << 43) - 2), st.integers(0, 31))
def test_after_resync_the_next_sqn_is_accepted(seq_ms: int, ind: int) -> None:
    slots = tuple(seq_ms if i == ind else 0 for i in range(32))
    window = UsimSqnWindow(seq_ms=slots, highest_sqn=_sqn(seq_ms, ind))
    stale = SqnState(0)
    state = sqnmod.resync(stale, window.highest_sqn)
    sqn, _ = sqnmod.next_sqn(state, (ind + 1) % 32)
    assert window.check(sqn) is SqnVerdict.FRESH


@given(st.integers(0, 8), st.integers(0, (1 << 40) - 1), st.data())
def test_next_sqn_matches_the_osmocom_formula(
    bits: int, last_sqn: int, data: st.DataObject
) -> None:
    assert "2^ind_bitlen" in RESYNC["next_sqn_formula"]
    ind = data.draw(st.integers(0, (1 << bits) - 1))
    # next = ((sqn + 2^ind_bitlen) & ~(2^ind_bitlen - 1)) + ind, from aka.json.
    expected = ((last_sqn + (1 << bits)) & ~((1 << bits) - 1)) + ind
    sqn, _ = sqnmod.next_sqn(SqnState.from_last_sqn(last_sqn, bits), ind)
    assert sqn == expected


def test_error_types_are_invalid_input() -> None:
    from ztsim.aka.suci import SuciError as ReexportedSuciError

    assert issubclass(sqnmod.ResyncError, InvalidInput)
    assert issubclass(ReexportedSuciError, InvalidInput)
    assert issubclass(SqnError, InvalidInput)


@given(
    bits=st.integers(0, sqnmod.MAX_IND_BITLEN),
    data=st.data(),
)
def test_sqn_for_is_next_sqn_of_the_state_before(bits: int, data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, (1 << (sqnmod.SQN_BITS - bits)) - 1))
    ind = data.draw(st.integers(0, (1 << bits) - 1))
    sqn, after = sqnmod.next_sqn(SqnState(seq - 1, bits), ind)
    assert sqnmod.sqn_for(seq, ind, bits) == sqn
    assert after == SqnState(seq, bits)
    assert sqnmod.split_sqn(sqn, bits) == (seq, ind)


@pytest.mark.parametrize(
    ("seq", "ind", "bits", "message"),
    [
        (0, 0, 5, "SEQ must be an int from 1"),
        (1, 32, 5, "IND must be an int from 0 to 31"),
        (1, -1, 5, "IND must be an int from 0 to 31"),
        (1 << 43, 0, 5, "SEQ_HE is exhausted"),
        (1, 0, 17, "ind_bitlen must be an int from 0 to 16"),
        (True, 0, 5, "SEQ must be an int from 1"),
    ],
)
def test_sqn_for_refuses_what_no_state_could_issue(
    seq: int, ind: int, bits: int, message: str
) -> None:
    with pytest.raises(SqnError, match=message):
        sqnmod.sqn_for(seq, ind, bits)
