"""Idempotency key numbers (metering.engine.keys) against obvious references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from metering import ingest
from metering.engine import keys

small = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(small)
def test_first_of_each_and_first_in_order_keep_the_first_of_every_identity(pairs):
    k1 = np.array([a for a, _ in pairs], dtype=np.uint64)
    k2 = np.array([b for _, b in pairs], dtype=np.uint64)
    seen, want = set(), []
    for pair in pairs:
        want.append(pair not in seen)
        seen.add(pair)
    assert keys.first_of_each(k1, k2).tolist() == want
    assert keys.first_in_order(k1, k2, np.lexsort((k2, k1))).tolist() == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**50, 2**50), st.text(max_size=20)), min_size=1, max_size=30))
def test_content_keys_read_back_exactly_and_texts_round_trip(rows):
    ts = np.array([t for t, _ in rows], dtype=np.int64)
    digest = keys.content_digest(pa.array([c for _, c in rows], type=pa.string()))
    text = keys.content_key_text(ts, digest)
    assert all(np.array_equal(a, b) for a, b in zip(keys.key_ids(text), keys.content_ids(ts, digest)))
    k1, k2 = keys.content_ids(ts, digest)
    assert keys.key_text(pa.nulls(len(rows), pa.string()), k1, k2).to_pylist() == text.to_pylist()
    # the text is the one contract §1 has always had: h: + offset timestamp + SipHash, in hex
    first = ingest.content_key("e", "c", int(ts[0]), "{}")
    assert first.startswith("h:") and len(first) == 34


def test_chosen_keys_hash_apart_and_repeat_the_same():
    a = keys.key_ids(pa.array(["order-1", "order-2", "order-1"]))
    assert a[0][0] == a[0][2] and a[1][0] == a[1][2]
    assert (a[0][0], a[1][0]) != (a[0][1], a[1][1])
    sorted_keys = keys.SortedKeys.build(*a)
    found = sorted_keys.contains(*keys.key_ids(pa.array(["order-2", "order-3"])))
    assert found.tolist() == [True, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=30))
def test_hashes_of_utf8_bytes_equal_pandas_hashes_of_the_texts(texts):
    """The content digest and client-key numbers hash Arrow's UTF-8 bytes directly; they must
    stay the SipHash of each text that every stored key was made with."""
    import pandas as pd

    arr = pa.array(texts, type=pa.string())
    objects = np.array(texts, dtype=object)
    assert keys.content_digest(arr).tolist() == pd.util.hash_array(
        objects, categorize=False, hash_key="0123456789123456").tolist()
    plain = [t for t in texts if not t.startswith("h:")]
    k1, k2 = keys.key_ids(pa.array(plain, type=pa.string()))
    assert k1.tolist() == pd.util.hash_array(np.array(plain, dtype=object), categorize=False,
                                             hash_key="metering-key-a.1").tolist()
    assert k2.tolist() == pd.util.hash_array(np.array(plain, dtype=object), categorize=False,
                                             hash_key="metering-key-b.2").tolist()


def test_content_keys_are_the_ones_they_have_always_been():
    # pinned (made before the hashing read UTF-8 bytes): a changed hash would make a
    # re-import add every stored event again
    assert ingest.content_key("llm.tokens", "cus_0817", 1_790_812_800_111_000,
                              '{"model":"claude-sonnet","region":"us-east","tokens":174}') == "h:40065cbc18cf519802fd916ef055464c"
    assert ingest.content_key("é", "cüs", 0, '{"a":"😀"}') == "h:4000000000000000e0d91f2bd16525ad"
