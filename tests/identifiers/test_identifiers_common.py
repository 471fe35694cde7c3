"""Behaviour every identifier type shares: immutability, str(), type and alphabet checks."""

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput, ZtsimError
from ztsim.identifiers import Eid, Iccid, Imei, Imeisv, Imsi, InvalidIdentifier, Msisdn

VALID: list[tuple[Callable[[str], object], str, str]] = [
    (Iccid, "89445001021983048261", "ICCID"),
    (Imsi, "262011234567890", "IMSI"),
    (Msisdn, "4917012345678", "MSISDN"),
    (Imei, "490154203237518", "IMEI"),
    (Imeisv, "4901542032375101", "IMEISV"),
    (Eid, "89049032123451234512345678901235", "EID"),
]
TYPES = [cls for cls, _, _ in VALID]
IDS = [name for _, _, name in VALID]


def test_error_is_an_invalid_input_and_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, InvalidInput)
    assert issubclass(InvalidIdentifier, ZtsimError)
    assert issubclass(InvalidIdentifier, ValueError)


@pytest.mark.parametrize(("cls", "text", "name"), VALID, ids=IDS)
def test_str_returns_the_value(cls: Callable[[str], object], text: str, name: str) -> None:
    assert str(cls(text)) == text


@pytest.mark.parametrize(("cls", "text", "name"), VALID, ids=IDS)
def test_values_are_frozen_slotted_and_hashable(
    cls: Callable[[str], object], text: str, name: str
) -> None:
    ident = cls(text)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.value = text  # type: ignore[attr-defined]
    assert not hasattr(ident, "__dict__")
    assert [f.name for f in dataclasses.fields(ident)] == ["value"]  # type: ignore[arg-type]
    assert ident == cls(text)
    assert hash(ident) == hash(cls(text))
    assert {ident, cls(text)} == {ident}


@pytest.mark.parametrize(("cls", "text", "name"), VALID, ids=IDS)
@pytest.mark.parametrize("bad", [None, 12345, 4.5, b"123", ["1"]])
def test_non_str_values_are_refused(
    cls: Callable[[object], object], text: str, name: str, bad: object
) -> None:
    with pytest.raises(
        InvalidIdentifier, match=rf"^{name} must be a str, got {type(bad).__name__}$"
    ):
        cls(bad)


def _spoil(text: str, position: int, char: str) -> str:
    return text[:position] + char + text[position + 1 :]


@pytest.mark.parametrize(("cls", "text", "name"), VALID, ids=IDS)
@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: " " + t[1:], id="leading-space"),
        pytest.param(lambda t: t[:-1] + " ", id="trailing-space"),
        pytest.param(lambda t: t[:-1] + "\n", id="trailing-newline"),
        pytest.param(lambda t: _spoil(t, 4, "٣"), id="arabic-indic-digit"),
        pytest.param(lambda t: _spoil(t, 4, "\uff13"), id="fullwidth-digit"),
        pytest.param(lambda t: _spoil(t, 4, "²"), id="superscript-two"),
        pytest.param(lambda t: _spoil(t, 4, "-"), id="hyphen"),
        pytest.param(lambda t: _spoil(t, 4, "A"), id="letter"),
        pytest.param(lambda t: "-" + t[1:], id="minus-sign"),
    ],
)
def test_non_ascii_digits_are_refused(
    cls: Callable[[str], object], text: str, name: str, mutate: Callable[[str], str]
) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"^{name} must contain only ASCII digits"):
        cls(mutate(text))


@pytest.mark.parametrize("cls", [c for c in TYPES if c is not Msisdn], ids=IDS[:2] + IDS[3:])
def test_plus_sign_is_only_accepted_for_msisdn(cls: Callable[[str], object]) -> None:
    text = next(t for c, t, _ in VALID if c is cls)
    with pytest.raises(InvalidIdentifier, match="only ASCII digits"):
        cls("+" + text[1:])


@pytest.mark.parametrize("cls", TYPES, ids=IDS)
@given(value=st.one_of(st.text(), st.text(alphabet="+0123456789", max_size=40)))
def test_arbitrary_text_gives_a_value_or_invalid_identifier(
    cls: Callable[[str], object], value: str
) -> None:
    try:
        ident = cls(value)
    except InvalidIdentifier:
        return
    assert str(ident) == value.removeprefix("+")
