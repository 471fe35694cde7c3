import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.identifiers import Iccid, InvalidIdentifier

from identifiers.identifiers_reference import luhn_valid

# Bodies are written by hand; their validity is confirmed by the independent reference check.
VALID_ICCIDS = [
    "89445001021983048261",  # 20 digits
    "8901260962143890116",  # 19 digits
]


@pytest.mark.parametrize("text", VALID_ICCIDS)
def test_valid_iccids_are_accepted(text: str) -> None:
    assert luhn_valid(text)
    assert Iccid(text).value == text


@pytest.mark.parametrize("text", VALID_ICCIDS)
def test_with_check_digit_reproduces_valid_iccids(text: str) -> None:
    assert Iccid.with_check_digit(text[:-1]) == Iccid(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "^ICCID must be 19 or 20 digits long, got 0$"),
        ("894450010219830482", "^ICCID must be 19 or 20 digits long, got 18$"),
        ("894450010219830482610", "^ICCID must be 19 or 20 digits long, got 21$"),
        ("89445001021983048263", "^ICCID check digit is 3, expected 1$"),
        ("89445001021983048216", "^ICCID check digit is 6, expected 2$"),
        ("98445001021983048261", "^ICCID must start with issuer prefix 89, got 98$"),
        ("8944500102198304826a", "'a' at position 19"),
    ],
)
def test_invalid_iccids_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Iccid(text)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("89445001021983048", "^ICCID body must be 18 or 19 digits long, got 17$"),
        ("89445001021983048261", "^ICCID body must be 18 or 19 digits long, got 20$"),
        ("8944500102198304x26", "'x' at position 16"),
        ("1944500102198304826", "must start with issuer prefix 89"),
    ],
)
def test_with_check_digit_refuses_bad_bodies(body: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Iccid.with_check_digit(body)


def test_with_check_digit_refuses_non_str() -> None:
    with pytest.raises(InvalidIdentifier, match="ICCID body must be a str, got int"):
        Iccid.with_check_digit(894450010219830482)  # type: ignore[arg-type]


iccid_bodies = st.builds(
    lambda rest: "89" + rest,
    st.one_of(
        st.text(alphabet="0123456789", min_size=16, max_size=16),
        st.text(alphabet="0123456789", min_size=17, max_size=17),
    ),
)


@given(iccid_bodies)
def test_with_check_digit_always_yields_a_valid_iccid(body: str) -> None:
    iccid = Iccid.with_check_digit(body)
    assert iccid.value[:-1] == body
    assert luhn_valid(iccid.value)
    assert Iccid(iccid.value) == iccid


@given(iccid_bodies, st.data())
def test_single_digit_change_is_refused(body: str, data: st.DataObject) -> None:
    text = Iccid.with_check_digit(body).value
    position = data.draw(st.integers(0, len(text) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != text[position]]))
    with pytest.raises(InvalidIdentifier):
        Iccid(text[:position] + digit + text[position + 1 :])
