"""Idempotency keys as two 64-bit numbers, so duplicates are found with array searches.

A content key (`h:` + the UTC timestamp + a SipHash of the event's content, contract §1) is
those two numbers exactly: `k2` = the offset timestamp, `k1` = the content hash mixed with it
(identical events at different times share a content hash; mixing in `k2`, a bijection for a
given `k2`, keeps `k1` spread out so sorted searches find one candidate). Any other key
is text a client chose; it becomes two SipHash-2-4 values of the text under two different hash
keys (pandas' C implementation), 128 bits in all. Two different texts share an identity only
if both 64-bit hashes collide at once (odds of about n²/2¹²⁹: 10⁻²³ for 100 million keys),
which is how ClickHouse's own insert deduplication compares blocks too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TS_OFFSET = 1 << 62  # keeps pre-1970 timestamps positive in keys
_CONTENT_KEY = r"^h:[0-9a-f]{32}$"
_HASH_A = "metering-key-a.1"  # 16 characters each: SipHash keys of the two halves
_HASH_B = "metering-key-b.2"
_CONTENT_HASH = "0123456789123456"  # pandas' default key: the content hash of contract §1
# byte → its two lower-case hex digits, as the uint16 whose little-endian bytes they are
_HEX_PAIRS = np.array([int.from_bytes(f"{i:02x}".encode(), "little") for i in range(256)], dtype="<u2")
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def content_digest(content: pa.Array) -> np.ndarray:
    """SipHash-2-4 (pandas' default key) of each text: the content part of a content key."""
    import pandas as pd  # hashing is for writes: opening the engine to read skips pandas

    return pd.util.hash_array(_utf8_bytes(content), categorize=False, hash_key=_CONTENT_HASH)


def _utf8_bytes(texts: pa.Array) -> np.ndarray:
    """The texts as `bytes` objects for pandas' SipHash: it hashes a str's UTF-8 encoding, so
    handing it the UTF-8 bytes Arrow holds gives the same hashes without decoding each text
    into a str and encoding it back (2.4 times faster)."""
    return texts.cast(pa.binary()).to_numpy(zero_copy_only=False)


def content_key_text(ts_us: np.ndarray, digest: np.ndarray) -> pa.Array:
    """`h:` + 16 hex digits of the offset timestamp + 16 of the digest (time-ordered text)."""
    n = len(ts_us)
    if n == 0:
        return pa.array([], type=pa.string())
    both = np.empty((n, 2), dtype=">u8")
    both[:, 0] = np.asarray(ts_us, dtype=np.int64) + TS_OFFSET
    both[:, 1] = digest
    # 34 bytes a key, laid out as an Arrow string array's buffers directly (no object per key)
    data = np.empty((n, 34), dtype=np.uint8)
    data[:, 0], data[:, 1] = ord("h"), ord(":")
    data[:, 2:] = _HEX_PAIRS[both.view(np.uint8).reshape(n, 16)].view(np.uint8).reshape(n, 32)
    offsets = np.arange(0, 34 * (n + 1), 34, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads nearby timestamps over all 64 bits."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def content_ids(ts_us: np.ndarray, digest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k2 = (np.asarray(ts_us, dtype=np.int64) + TS_OFFSET).astype(np.uint64)
    return np.asarray(digest, dtype=np.uint64) ^ _mix(k2), k2


def digest_of(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """The content hash of content-key identities (inverse of content_ids' mixing)."""
    return np.asarray(k1, dtype=np.uint64) ^ _mix(np.asarray(k2, dtype=np.uint64))


def key_text(keys: pa.Array, k1: np.ndarray, k2: np.ndarray) -> pa.Array:
    """Idempotency key texts, null ones (content keys) written out from their numbers."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if keys.null_count == 0:
        return keys
    missing = np.flatnonzero(keys.is_null().to_numpy(zero_copy_only=False))
    ts = (np.asarray(k2[missing], dtype=np.uint64) - np.uint64(TS_OFFSET)).astype(np.int64)
    texts = content_key_text(ts, digest_of(k1[missing], k2[missing]))
    if len(missing) == len(keys):
        return texts
    mask = np.zeros(len(keys), dtype=bool)
    mask[missing] = True
    return pc.replace_with_mask(keys, pa.array(mask), texts)


def _hex_u64(block: np.ndarray) -> np.ndarray:
    """(n, 16) ASCII hex digits → n uint64."""
    nibbles = _HEX[block].astype(np.uint64)
    out = np.zeros(len(block), dtype=np.uint64)
    for j in range(16):
        out = (out << np.uint64(4)) | nibbles[:, j]
    return out


def key_ids(keys: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(k1, k2) for idempotency key texts: content keys read back exactly, others hashed."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    n = len(keys)
    k1 = np.empty(n, dtype=np.uint64)
    k2 = np.empty(n, dtype=np.uint64)
    if n == 0:
        return k1, k2
    content = pc.fill_null(pc.match_substring_regex(keys, _CONTENT_KEY), False).to_numpy(zero_copy_only=False)
    if content.any():
        idx = np.flatnonzero(content)
        texts = keys.take(pa.array(idx)) if len(idx) < n else keys
        raw = np.frombuffer("".join(texts.to_pylist()).encode("ascii"), dtype=np.uint8).reshape(len(idx), 34)
        k2[idx] = _hex_u64(raw[:, 2:18])
        k1[idx] = _hex_u64(raw[:, 18:34]) ^ _mix(k2[idx])
    other = np.flatnonzero(~content)
    if len(other):
        import pandas as pd

        texts = _utf8_bytes(keys.take(pa.array(other)) if len(other) < n else keys)
        k1[other] = pd.util.hash_array(texts, categorize=False, hash_key=_HASH_A)
        k2[other] = pd.util.hash_array(texts, categorize=False, hash_key=_HASH_B)
    return k1, k2


def first_of_each(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """Mask of rows that are the first with their identity (later repeats are duplicates).
    One hash pass over k1 (spread out, nearly unique: a third of the time a sort took); only
    rows whose k1 repeats compare k2."""
    n = len(k1)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    import pandas as pd

    repeated = pd.Index(np.asarray(k1, dtype=np.uint64)).duplicated(keep=False)
    if not repeated.any():
        return keep
    rows = np.flatnonzero(repeated)
    frame = pd.DataFrame({"a": k1[rows], "b": k2[rows]}, copy=False)
    keep[rows] = ~frame.duplicated(keep="first").to_numpy()
    return keep


def first_in_order(k1: np.ndarray, k2: np.ndarray, order: np.ndarray) -> np.ndarray:
    """first_of_each, given `order` = np.lexsort((k2, k1)) (stable: equal keys keep their
    input order, so the first of each run in `order` is the first in the input)."""
    keep = np.ones(len(k1), dtype=bool)
    if len(k1) < 2:
        return keep
    s1, s2 = k1[order], k2[order]
    repeat = (s1[1:] == s1[:-1]) & (s2[1:] == s2[:-1])
    keep[order[1:][repeat]] = False
    return keep


class SortedKeys:
    """One segment's identities sorted by k1 (stored that way), searched with numpy."""

    def __init__(self, k1_sorted: np.ndarray, k2_sorted: np.ndarray) -> None:
        self.k1 = k1_sorted
        self.k2 = k2_sorted

    @classmethod
    def build(cls, k1: np.ndarray, k2: np.ndarray) -> SortedKeys:
        order = np.lexsort((k2, k1))
        return cls(k1[order], k2[order])

    def contains(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """Mask of the given identities found here."""
        found = np.zeros(len(k1), dtype=bool)
        if len(self.k1) == 0 or len(k1) == 0:
            return found
        lo = np.searchsorted(self.k1, k1, side="left")
        hi = np.searchsorted(self.k1, k1, side="right")
        width = hi - lo
        one = np.flatnonzero(width == 1)
        found[one] = self.k2[lo[one]] == k2[one]
        for i in np.flatnonzero(width > 1):  # 64-bit collisions of k1 (or one ts): rare, small
            found[i] = bool(np.any(self.k2[lo[i]:hi[i]] == k2[i]))
        return found
