import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.identifiers import Imei, Imeisv, InvalidIdentifier

from identifiers.identifiers_reference import luhn_valid

# Both examples are given in the Wikipedia IMEI article; 3GPP TS 23.003 Annex B has the algorithm.
PUBLISHED_IMEIS = ["490154203237518", "352099001761481"]

imei_bodies = st.text(alphabet="0123456789", min_size=14, max_size=14)


@pytest.mark.parametrize("text", PUBLISHED_IMEIS)
def test_published_imeis_are_accepted(text: str) -> None:
    imei = Imei(text)
    assert imei.value == text
    assert imei.tac == text[:8]
    assert Imei.with_check_digit(text[:14]) == imei


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("49015420323751", "^IMEI must be 15 digits long, got 14$"),
        ("4901542032375180", "^IMEI must be 15 digits long, got 16$"),
        ("490154203237519", "^IMEI check digit is 9, expected 8$"),
        ("490154203237581", "^IMEI check digit is 1, expected 3$"),
        ("49015420323751X", "'X' at position 14"),
        ("49-015420-323751-8", "'-' at position 2"),
    ],
)
def test_invalid_imeis_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Imei(text)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("4901542032375", "^IMEI body must be 14 digits long, got 13$"),
        ("490154203237518", "^IMEI body must be 14 digits long, got 15$"),
        ("4901542032375a", "'a' at position 13"),
    ],
)
def test_with_check_digit_refuses_bad_bodies(body: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Imei.with_check_digit(body)


def test_with_check_digit_refuses_non_str() -> None:
    with pytest.raises(InvalidIdentifier, match="IMEI body must be a str, got NoneType"):
        Imei.with_check_digit(None)  # type: ignore[arg-type]


@given(imei_bodies)
def test_with_check_digit_always_yields_a_valid_imei(body: str) -> None:
    imei = Imei.with_check_digit(body)
    assert imei.value[:14] == body
    assert luhn_valid(imei.value)


@given(imei_bodies, st.data())
def test_single_digit_change_is_refused(body: str, data: st.DataObject) -> None:
    text = Imei.with_check_digit(body).value
    position = data.draw(st.integers(0, 14))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != text[position]]))
    with pytest.raises(InvalidIdentifier, match=r"^IMEI check digit is"):
        Imei(text[:position] + digit + text[position + 1 :])


def test_imeisv_parts() -> None:
    imeisv = Imeisv("4901542032375101")
    assert imeisv.tac == "49015420"
    assert imeisv.svn == "01"
    assert imeisv.imei == Imei("490154203237518")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("490154203237518", "^IMEISV must be 16 digits long, got 15$"),
        ("49015420323751011", "^IMEISV must be 16 digits long, got 17$"),
        ("490154203237510a", "'a' at position 15"),
    ],
)
def test_invalid_imeisvs_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Imeisv(text)


@given(imei_bodies, st.text(alphabet="0123456789", min_size=2, max_size=2))
def test_imeisv_imei_shares_tac_and_snr(body: str, svn: str) -> None:
    imeisv = Imeisv(body + svn)
    assert imeisv.imei.value[:14] == body
    assert luhn_valid(imeisv.imei.value)
    assert imeisv.tac == imeisv.imei.tac == body[:8]
    assert imeisv.svn == svn
