"""encode_json: the C encoder's fast path refuses exactly what the full check refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beat.stores import SerializationError
from beat.stores._base import _check_json, encode_json
from beat.testing import _as_stored

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included: refused
    st.text(),  # NUL included: refused
    st.text(alphabet="{}\\u0", max_size=8),  # texts that look like the fast path's triggers
)
keys = st.one_of(st.text(max_size=5), st.integers(-3, 3), st.booleans(), st.none())
values = st.recursive(
    scalars | st.frozensets(st.integers(), max_size=2) | st.just(object()),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=12,
)


def _walk_refuses(value: Any) -> bool:
    try:
        _check_json(value, "v", [])
    except SerializationError:
        return True
    return False


@settings(max_examples=400, deadline=None)
@given(values)
def test_encode_json_agrees_with_the_full_check(value: Any) -> None:
    try:
        text = encode_json(value, "v")
    except SerializationError:
        assert _walk_refuses(value)
        return
    assert not _walk_refuses(value)
    assert json.loads(text) == _as_stored(value)  # no NaN got this far: == holds


def test_a_cycle_is_refused_with_its_path() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"args\[1\]: circular reference"):
        encode_json(loop, "args")
