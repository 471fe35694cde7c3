import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.identifiers import Imsi, InvalidIdentifier


@pytest.mark.parametrize(
    ("text", "mnc_digits", "plmn"),
    [
        ("262011234567890", 2, ("262", "01")),  # Germany, 2-digit MNC
        ("310410123456789", 3, ("310", "410")),  # USA, 3-digit MNC
        ("00101123456789", 2, ("001", "01")),  # 3GPP test PLMN 001-01, 14 digits
    ],
)
def test_mcc_and_plmn(text: str, mnc_digits: int, plmn: tuple[str, str]) -> None:
    imsi = Imsi(text)
    assert imsi.value == text
    assert imsi.mcc == plmn[0]
    assert imsi.plmn(mnc_digits) == plmn


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "^IMSI must be 14 or 15 digits long, got 0$"),
        ("2620112345678", "^IMSI must be 14 or 15 digits long, got 13$"),
        ("2620112345678901", "^IMSI must be 14 or 15 digits long, got 16$"),
        ("26201123456789O", "'O' at position 14"),
    ],
)
def test_invalid_imsis_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=fragment):
        Imsi(text)


@pytest.mark.parametrize("mnc_digits", [0, 1, 4, -2, True, 2.0, "2", None])
def test_plmn_refuses_impossible_mnc_lengths(mnc_digits: object) -> None:
    with pytest.raises(InvalidIdentifier, match=r"^IMSI MNC length must be 2 or 3 digits"):
        Imsi("262011234567890").plmn(mnc_digits)  # type: ignore[arg-type]


@given(st.text(alphabet="0123456789", min_size=14, max_size=15), st.sampled_from([2, 3]))
def test_plmn_is_a_prefix_split(text: str, mnc_digits: int) -> None:
    mcc, mnc = Imsi(text).plmn(mnc_digits)
    assert len(mcc) == 3
    assert len(mnc) == mnc_digits
    assert text.startswith(mcc + mnc)
