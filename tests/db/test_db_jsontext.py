"""`json_text` writes what `json.dumps` writes, for every JSON value the hot paths store."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.db.jsontext import json_text

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_json_text_is_json_dumps(value: object) -> None:
    assert json_text(value) == json.dumps(value)


@pytest.mark.parametrize("value", [{"when": object()}, {1j: 1}])
def test_what_json_cannot_write_is_refused_as_json_dumps_refuses_it(value: object) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        json_text(value)
