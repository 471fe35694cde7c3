import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.identifiers import InvalidIdentifier, luhn_check_digit
from ztsim.identifiers.luhn import luhn_check_digit as luhn_from_module

from identifiers.identifiers_reference import luhn_valid

digits = st.text(alphabet="0123456789", min_size=1, max_size=40)


@pytest.mark.parametrize(
    "number",
    [
        "79927398713",  # the classic example in the Luhn algorithm literature (Wikipedia)
        "490154203237518",  # IMEI example from the Wikipedia IMEI article
        "352099001761481",  # IMEI structure example from the Wikipedia IMEI article
    ],
)
def test_published_luhn_numbers(number: str) -> None:
    assert luhn_check_digit(number[:-1]) == int(number[-1])


def test_reexport_is_the_module_function() -> None:
    assert luhn_check_digit is luhn_from_module


@given(digits)
def test_check_digit_completes_a_valid_number(body: str) -> None:
    check = luhn_check_digit(body)
    assert 0 <= check <= 9
    assert luhn_valid(body + str(check))


@given(digits, st.data())
def test_any_single_digit_change_breaks_the_check(body: str, data: st.DataObject) -> None:
    number = body + str(luhn_check_digit(body))
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    changed = number[:position] + replacement + number[position + 1 :]
    assert luhn_check_digit(changed[:-1]) != int(changed[-1])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "must not be empty"),
        ("12a4", "'a' at position 2"),
        (" 123", "' ' at position 0"),
        ("12\n", "'\\\\n' at position 2"),
        ("1٣", "'٣' at position 1"),
        ("-12", "'-' at position 0"),
    ],
)
def test_bad_bodies_are_refused(body: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        luhn_check_digit(body)


def test_non_str_body_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="must be a str, got int"):
        luhn_check_digit(12345)  # type: ignore[arg-type]
