import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.esim import ActivationCode, InvalidActivationCode
from ztsim.esim.activation import ActivationCode as ActivationCodeFromModule

# GSMA SGP.22 §4.1 example Activation Code.
SGP22_EXAMPLE = "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1"
ADDRESS = "SMDP.GSMA.COM"
MATCHING_ID = "04386-AGYFT-A74Y8-3F815"
OID = "1.3.6.1.4.1.31746"


def test_error_type() -> None:
    assert issubclass(InvalidActivationCode, InvalidInput)
    assert issubclass(InvalidActivationCode, ValueError)
    assert ActivationCode is ActivationCodeFromModule


@pytest.mark.parametrize("prefix", ["", "LPA:"])
def test_sgp22_example(prefix: str) -> None:
    code = ActivationCode.parse(prefix + SGP22_EXAMPLE)
    assert code.smdp_address == ADDRESS
    assert code.matching_id == MATCHING_ID
    assert code.oid == OID
    assert code.confirmation_code_required is True
    assert str(code) == SGP22_EXAMPLE
    assert code.to_qr_text() == "LPA:" + SGP22_EXAMPLE
    assert code == ActivationCode(ADDRESS, MATCHING_ID, OID, confirmation_code_required=True)


@pytest.mark.parametrize(
    ("text", "oid", "required"),
    [
        (f"1${ADDRESS}${MATCHING_ID}", None, False),
        (f"1${ADDRESS}${MATCHING_ID}${OID}", OID, False),
        (f"1${ADDRESS}${MATCHING_ID}$$1", None, True),
        (f"1${ADDRESS}${MATCHING_ID}${OID}$1", OID, True),
    ],
)
@pytest.mark.parametrize("prefix", ["", "LPA:"])
def test_optional_field_forms(text: str, oid: str | None, required: bool, prefix: str) -> None:
    code = ActivationCode.parse(prefix + text)
    assert code == ActivationCode(ADDRESS, MATCHING_ID, oid, required)
    assert code.oid == oid
    assert code.confirmation_code_required is required
    assert str(code) == text
    assert code.to_qr_text() == "LPA:" + text


def test_case_of_the_address_is_kept() -> None:
    assert ActivationCode.parse("1$Smdp.Example.com$A").smdp_address == "Smdp.Example.com"


@pytest.mark.parametrize(
    "text",
    [
        "1$a.b$A",
        "1$" + ".".join(["a" * 63] * 3) + ".com$A",  # 63-char labels
        "1$" + ".".join(["a" * 63] * 3) + "." + "b" * 61 + "$A",  # 253 characters in all
        "1$xn--bcher-kva.example$A",  # IDNs appear in their ASCII (punycode) form
        "1$1.2.3.com$A",  # numeric labels are fine below the TLD
        "1$smdp-plus.example.com$A",
        "1$a.com$" + "A" * 255,
        "1$a.com$-",
        "1$a.com$A$0.39",
        "1$a.com$A$2.999",
        "1$a.com$A$2.100.0.0",
        "1$a.com$A$1.0$1",
    ],
)
def test_edge_values_are_accepted(text: str) -> None:
    assert str(ActivationCode.parse(text)) == text


_FIELD_COUNT = "needs at least 3 '\\$'-separated fields"
_FORMAT = "format indicator must be 1$"
_FLAG = "Confirmation Code Required Flag must be 1 when present"
_MID_CHARS = "Matching ID has a character other than 0-9, A-Z or '-' at position"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", _FIELD_COUNT),
        ("LPA:", _FIELD_COUNT),
        ("1", _FIELD_COUNT),
        ("1$SMDP.GSMA.COM", _FIELD_COUNT),
        ("LPA:1$SMDP.GSMA.COM", _FIELD_COUNT),
        ("1$a.com$A$1.2$1$", "has 6 '\\$'-separated fields, at most 5 allowed"),
        ("1$a.com$A$1.2$1$1", "has 6 '\\$'-separated fields"),
        ("1$a.com$A$$1$$", "has 7 '\\$'-separated fields"),
        ("2$a.com$A", _FORMAT),
        ("0$a.com$A", _FORMAT),
        ("01$a.com$A", _FORMAT),
        ("$a.com$A", _FORMAT),
        (" 1$a.com$A", _FORMAT),
        ("lpa:1$a.com$A", _FORMAT),
        ("LPA: 1$a.com$A", _FORMAT),
        ("LPA:LPA:1$a.com$A", _FORMAT),
        ("LPA1$a.com$A", _FORMAT),
        ("1$$A", "SM-DP\\+ address is empty"),
        ("1$smdp$A", "SM-DP\\+ address must be an FQDN with at least two labels"),
        ("1$.smdp.com$A", "SM-DP\\+ address label 1 is empty"),
        ("1$smdp..com$A", "SM-DP\\+ address label 2 is empty"),
        ("1$smdp.com.$A", "SM-DP\\+ address label 3 is empty"),
        ("1$.$A", "SM-DP\\+ address label 1 is empty"),
        ("1$-smdp.com$A", "SM-DP\\+ address label 1 must not start or end with '-'"),
        ("1$smdp-.com$A", "SM-DP\\+ address label 1 must not start or end with '-'"),
        ("1$smdp.-$A", "SM-DP\\+ address label 2 must not start or end with '-'"),
        ("1$" + "a" * 64 + ".com$A", "SM-DP\\+ address label 1 is 64 characters long, at most 63"),
        (
            "1$" + ".".join(["a" * 63] * 3) + "." + "b" * 62 + "$A",
            "SM-DP\\+ address is 254 characters long, at most 253 allowed",
        ),
        ("1$192.168.1.1$A", "not an IP address"),
        ("1$10.0.0.1$A", "not an IP address"),
        ("1$[::1]$A", "contains '\\[' at position 0"),
        ("1$::1$A", "contains ':' at position 0"),
        ("1$smdp.example.com:443$A", "contains ':' at position 16"),
        ("1$https://smdp.example.com$A", "contains ':' at position 5"),
        ("1$smdp_1.example.com$A", "contains '_' at position 4"),
        ("1$smdp.exämple.com$A", "contains 'ä' at position 7"),
        ("1$smdp.example.com $A", "contains ' ' at position 16"),
        ("1$smdp.example.com/x$A", "contains '/' at position 16"),
        ("1$a.com$", "Matching ID is empty"),
        ("1$a.com$$1.2", "Matching ID is empty"),
        ("1$a.com$abc", _MID_CHARS + " 0$"),
        ("1$a.com$ABC DEF", _MID_CHARS + " 3$"),
        ("1$a.com$ABC_DEF", _MID_CHARS + " 3$"),
        ("1$a.com$ABC\n", _MID_CHARS + " 3$"),
        ("1$a.com$ABÇ", _MID_CHARS + " 2$"),
        ("1$a.com$" + "A" * 256, "Matching ID is 256 characters long, at most 255 allowed"),
        ("1$a.com$A$", "SM-DP\\+ OID is empty"),
        ("1$a.com$A$1", "SM-DP\\+ OID must have at least two arcs"),
        ("1$a.com$A$1.", "SM-DP\\+ OID arc 2 must be a decimal integer without leading zeros"),
        ("1$a.com$A$.1.3", "SM-DP\\+ OID arc 1 must be a decimal integer"),
        ("1$a.com$A$1..3", "SM-DP\\+ OID arc 2 must be a decimal integer"),
        ("1$a.com$A$1.3.06", "SM-DP\\+ OID arc 3 must be a decimal integer without leading zeros"),
        ("1$a.com$A$01.3", "SM-DP\\+ OID arc 1 must be a decimal integer"),
        ("1$a.com$A$1.3.-6", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$1.3.+6", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$1.3.a", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$1.3.6 ", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$1.3.٣", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$1.3.6\n", "SM-DP\\+ OID arc 3 must be a decimal integer"),
        ("1$a.com$A$3.1", "SM-DP\\+ OID first arc must be 0, 1 or 2, got 3"),
        ("1$a.com$A$10.1", "SM-DP\\+ OID first arc must be 0, 1 or 2, got 10"),
        ("1$a.com$A$1.40", "SM-DP\\+ OID second arc must be at most 39 under root 1, got 40"),
        ("1$a.com$A$0.40.1", "SM-DP\\+ OID second arc must be at most 39 under root 0, got 40"),
        ("1$a.com$A$1.3$0", _FLAG),
        ("1$a.com$A$1.3$", _FLAG),
        ("1$a.com$A$$", _FLAG),
        ("1$a.com$A$$0", _FLAG),
        ("1$a.com$A$$true", _FLAG),
        ("1$a.com$A$$ 1", _FLAG),
        ("1$a.com$A$$1\n", _FLAG),
        ("1$a.com$A$$11", _FLAG),
    ],
)
def test_malformed_codes_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidActivationCode, match=fragment):
        ActivationCode.parse(text)


def test_parse_refuses_non_str() -> None:
    with pytest.raises(InvalidActivationCode, match="must be a str, got bytes"):
        ActivationCode.parse(b"1$a.com$A")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"smdp_address": "a$b.com"}, "SM-DP\\+ address must not contain '\\$'"),
        ({"matching_id": "A$B"}, "Matching ID must not contain '\\$'"),
        ({"oid": "1.3$1"}, "SM-DP\\+ OID must not contain '\\$'"),
        ({"oid": ""}, "SM-DP\\+ OID is empty"),
        ({"smdp_address": None}, "SM-DP\\+ address must be a str, got NoneType"),
        ({"matching_id": 42}, "Matching ID must be a str, got int"),
        ({"oid": 1.3}, "SM-DP\\+ OID must be a str, got float"),
        ({"confirmation_code_required": 1}, "confirmation_code_required must be a bool, got int"),
        ({"confirmation_code_required": "1"}, "must be a bool, got str"),
        ({"confirmation_code_required": None}, "must be a bool, got NoneType"),
        ({"smdp_address": "192.0.2.1"}, "not an IP address"),
        ({"matching_id": "lower"}, _MID_CHARS),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], fragment: str) -> None:
    fields: dict[str, object] = {"smdp_address": "a.com", "matching_id": "A"} | kwargs
    with pytest.raises(InvalidActivationCode, match=fragment):
        ActivationCode(**fields)  # type: ignore[arg-type]


def test_matching_id_stays_out_of_repr_and_errors() -> None:
    code = ActivationCode.parse(SGP22_EXAMPLE)
    assert MATCHING_ID not in repr(code)
    with pytest.raises(InvalidActivationCode) as caught:
        ActivationCode.parse("1$a.com$SECRET-token")
    assert "SECRET-token" not in str(caught.value)


def test_codes_are_immutable_and_hashable() -> None:
    code = ActivationCode.parse(SGP22_EXAMPLE)
    with pytest.raises(AttributeError):
        code.matching_id = "OTHER"  # type: ignore[misc]
    assert hash(code) == hash(ActivationCode.parse("LPA:" + SGP22_EXAMPLE))


_LETTERS_DIGITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)
top_level = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}[A-Za-z0-9]", fullmatch=True)
addresses = st.builds(
    lambda head, tld: ".".join([*head, tld]), st.lists(labels, min_size=1, max_size=4), top_level
).filter(lambda address: len(address) <= 253)
matching_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=255)
arcs = st.integers(min_value=0, max_value=2**70)


@st.composite
def oids(draw: st.DrawFn) -> str:
    root = draw(st.integers(0, 2))
    second = draw(st.integers(0, 39) if root < 2 else arcs)
    rest = draw(st.lists(arcs, max_size=8))
    return ".".join(str(arc) for arc in [root, second, *rest])


codes = st.builds(
    ActivationCode,
    smdp_address=addresses,
    matching_id=matching_ids,
    oid=st.none() | oids(),
    confirmation_code_required=st.booleans(),
)


@given(codes)
def test_every_valid_code_round_trips(code: ActivationCode) -> None:
    qr = code.to_qr_text()
    assert qr == "LPA:" + str(code)
    assert ActivationCode.parse(qr) == code
    assert ActivationCode.parse(str(code)) == code
    assert str(code).split("$")[:3] == ["1", code.smdp_address, code.matching_id]


def _mutate(text: str, position: int, char: str, mode: int) -> str:
    position %= len(text) + 1
    if mode == 0:
        return text[:position] + char + text[position:]
    if mode == 1:
        return text[:position] + text[position + 1 :]
    return text[:position] + char + text[position + 1 :]


fuzz_texts = st.one_of(
    st.text(),
    st.lists(st.text(max_size=12), max_size=7).map("$".join),
    st.builds(
        lambda prefix, parts: prefix + "$".join(parts),
        st.sampled_from(["", "LPA:", "1$", "LPA:1$"]),
        st.lists(st.text(alphabet="$.-1aA0 \n٣", max_size=12), max_size=6),
    ),
    st.builds(
        lambda code, position, char, mode: _mutate(code.to_qr_text(), position, char, mode),
        codes,
        st.integers(min_value=0),
        st.characters(),
        st.integers(0, 2),
    ),
)


@given(fuzz_texts)
def test_arbitrary_text_parses_canonically_or_raises_invalid_activation_code(text: str) -> None:
    try:
        code = ActivationCode.parse(text)
    except InvalidActivationCode:
        return
    assert str(code) == text.removeprefix("LPA:")
