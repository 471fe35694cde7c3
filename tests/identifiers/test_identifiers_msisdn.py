import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.identifiers import InvalidIdentifier, Msisdn


@pytest.mark.parametrize("text", ["+4917012345678", "4917012345678"])
def test_plus_is_optional_and_dropped(text: str) -> None:
    msisdn = Msisdn(text)
    assert msisdn.value == "4917012345678"
    assert str(msisdn) == "4917012345678"
    assert msisdn.e164 == "+4917012345678"


def test_both_forms_are_equal() -> None:
    assert Msisdn("+4917012345678") == Msisdn("4917012345678")
    assert hash(Msisdn("+4917012345678")) == hash(Msisdn("4917012345678"))


@pytest.mark.parametrize("text", ["1", "+1", "999999999999999", "+123456789012345"])
def test_length_bounds_are_accepted(text: str) -> None:
    assert Msisdn(text).e164 == "+" + text.removeprefix("+")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "^MSISDN must have at least 1 digit, got 0$"),
        ("+", "^MSISDN must have at least 1 digit, got 0$"),
        ("1234567890123456", "^MSISDN must have at most 15 digits, got 16$"),
        ("+1234567890123456", "^MSISDN must have at most 15 digits, got 16$"),
        ("04917012345678", "^MSISDN must not start with 0"),
        ("+04917012345678", "^MSISDN must not start with 0"),
        ("++4917012345678", "'\\+' at position 0"),
        ("49+17012345678", "'\\+' at position 2"),
        ("+49 170 12345678", "' ' at position 2"),
        ("+49-170-12345678", "'-' at position 2"),
        (" +4917012345678", "' ' at position 0"),
        ("00491701234567", "^MSISDN must not start with 0"),
    ],
)
def test_invalid_msisdns_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Msisdn(text)


@given(
    st.booleans(),
    st.text(alphabet="123456789", min_size=1, max_size=1),
    st.text(alphabet="0123456789", max_size=14),
)
def test_e164_round_trips(plus: bool, first: str, rest: str) -> None:
    digits = first + rest
    msisdn = Msisdn(("+" if plus else "") + digits)
    assert msisdn.value == digits
    assert Msisdn(msisdn.e164) == msisdn
