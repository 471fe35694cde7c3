import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ztsim.identifiers import Eid, InvalidIdentifier

from identifiers.identifiers_reference import mod97_valid

# GSMA SGP.29 v1.0 §2 example EID.
SGP29_EXAMPLE = "89049032123451234512345678901235"

eid_bodies = st.builds(
    lambda rest: "89" + rest, st.text(alphabet="0123456789", min_size=28, max_size=28)
)


def test_sgp29_example_is_accepted() -> None:
    assert mod97_valid(SGP29_EXAMPLE)
    assert Eid(SGP29_EXAMPLE).value == SGP29_EXAMPLE
    assert Eid.with_check_digits(SGP29_EXAMPLE[:30]) == Eid(SGP29_EXAMPLE)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (SGP29_EXAMPLE[:-1], "^EID must be 32 digits long, got 31$"),
        (SGP29_EXAMPLE + "0", "^EID must be 32 digits long, got 33$"),
        (SGP29_EXAMPLE[:-2] + "36", "^EID check digits are 36, expected 35$"),
        (SGP29_EXAMPLE[:-2] + "00", "^EID check digits are 00, expected 35$"),
        ("98" + SGP29_EXAMPLE[2:], "^EID must start with 89, got 98$"),
        (SGP29_EXAMPLE[:10] + "O" + SGP29_EXAMPLE[11:], "'O' at position 10"),
    ],
)
def test_invalid_eids_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Eid(text)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (SGP29_EXAMPLE[:29], "^EID body must be 30 digits long, got 29$"),
        (SGP29_EXAMPLE[:31], "^EID body must be 30 digits long, got 31$"),
        (SGP29_EXAMPLE[:29] + "x", "'x' at position 29"),
        ("12" + SGP29_EXAMPLE[2:30], "^EID must start with 89"),
    ],
)
def test_with_check_digits_refuses_bad_bodies(body: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Eid.with_check_digits(body)


def test_with_check_digits_refuses_non_str() -> None:
    with pytest.raises(InvalidIdentifier, match="EID body must be a str, got int"):
        Eid.with_check_digits(890490321234512345123456789012)  # type: ignore[arg-type]


@given(eid_bodies)
def test_with_check_digits_always_yields_a_valid_eid(body: str) -> None:
    eid = Eid.with_check_digits(body)
    assert eid.value[:30] == body
    assert mod97_valid(eid.value)


@given(eid_bodies, st.data())
def test_every_single_digit_error_is_caught(body: str, data: st.DataObject) -> None:
    text = Eid.with_check_digits(body).value
    # Positions 0-1 would trip the prefix rule first; the checksum must catch the rest alone.
    position = data.draw(st.integers(2, 31))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != text[position]]))
    with pytest.raises(InvalidIdentifier, match=r"^EID check digits are"):
        Eid(text[:position] + digit + text[position + 1 :])


@given(eid_bodies, st.data())
def test_every_adjacent_transposition_is_caught(body: str, data: st.DataObject) -> None:
    text = Eid.with_check_digits(body).value
    position = data.draw(st.integers(2, 30))
    assume(text[position] != text[position + 1])
    swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    with pytest.raises(InvalidIdentifier, match=r"^EID check digits are"):
        Eid(swapped)
