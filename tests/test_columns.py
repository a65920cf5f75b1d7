"""The engine's fast number forms: exact int64 values with a scale, and counting sums.

Both are speed paths with a slow, obviously-correct twin (decimal256 values; pyarrow's hash
aggregate), so each is checked against it; and the fast path must really be taken for
ordinary values (a pyarrow upgrade once made every column fall back to decimal256 silently).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.engine.columnar.counting import exact_sums as _exact_sums
from metering.engine.columns import OK, numbers, scaled

decimals = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False, allow_infinity=False)


def test_ordinary_numbers_take_the_int64_form() -> None:
    number, status = numbers(pa.array(["360", "12", "-7", "1.5", "1e3"]))
    found = scaled(number, status)
    assert found is not None and found.scale == 2  # the smallest scale that loses nothing
    assert found.ints.tolist() == [36000, 1200, -700, 150, 100000]
    tiny = scaled(*numbers(pa.array(["0.000000000000000001", "-3"])))
    assert tiny is not None and tiny.scale == 18 and tiny.ints.tolist() == [1, -3 * 10**18]


def test_numbers_beyond_int64_have_no_int64_form() -> None:
    number, status = numbers(pa.array(["99999999999999999999", "1"]))
    assert scaled(number, status) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(decimals, min_size=1, max_size=40))
def test_the_int64_form_is_exact(values: list[Decimal]) -> None:
    texts = [format(v, "f") for v in values]
    number, status = numbers(pa.array(texts))
    assert (status == OK).all()
    found = scaled(number, status)
    assert found is not None
    assert [Decimal(int(i)).scaleb(-found.scale) for i in found.ints] == [Decimal(t) for t in texts]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.one_of(st.integers(-(2**62), 2**62), st.integers(-1000, 1000))),
                min_size=1, max_size=60))
def test_counting_sums_are_exact(rows: list[tuple[int, int]]) -> None:
    gid = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.int64)
    expected = [sum(v for g, v in rows if g == k) for k in range(6)]
    assert _exact_sums(gid, values, 6) == expected  # three 22-bit parts
    biggest = int(np.abs(values).max())
    assert _exact_sums(gid, values, 6, biggest) == expected  # one count when the sums stay small
