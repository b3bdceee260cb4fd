"""A small HyperLogLog over vectorised 64-bit hashes of Arrow arrays (numpy, no row loops).

Used by :mod:`gridcat_pipelines.raw_sink.stats` once a column has too many distinct values
to count exactly. Precision ``p = 14`` means 16,384 one-byte registers (16 KiB per column)
and a standard error of about ``1.04 / sqrt(2**14)`` = 0.8 %.

Hashes are only compared within one process (the registers are never persisted), so they
need to be well mixed, not stable across versions. Values hash bitwise, like Arrow's
``unique``: ``-0.0`` and ``0.0`` are different values, and so are NaNs with different bits.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_PRECISION = 14

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POLY = 0x100000001B3  # odd, so invertible modulo 2**64
_POLY_INV = pow(_POLY, -1, 1 << 64)
_SLICE = 1 << 16  # values hashed per numpy pass over a binary array


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _powers(base: int, count: int) -> np.ndarray:
    """``base**0 .. base**(count-1)`` modulo 2**64."""
    out = np.full(count, base, dtype=np.uint64)
    if count:
        out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _hash_binary(arr: pa.Array) -> np.ndarray:
    """Hash each value of a null-free binary/string array, a slice of values at a time.

    Slicing bounds the temporary uint64-per-byte arrays to ``_SLICE`` values' worth of bytes.
    """
    arr = arr.cast(pa.large_binary())
    if len(arr) <= _SLICE:
        return _hash_binary_slice(arr)
    return np.concatenate([_hash_binary_slice(arr.slice(i, _SLICE)) for i in range(0, len(arr), _SLICE)])


def _hash_binary_slice(arr: pa.Array) -> np.ndarray:
    """Hash each value of a null-free ``large_binary`` array by a polynomial over its bytes.

    The sum of ``(byte + 1) * P**global_position`` over a value's bytes comes from one prefix
    sum over the whole data buffer; multiplying by ``P**-start`` makes it independent of where
    the value sits in the buffer. The length is mixed in, then the result is finalised.
    """
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[start:end] if bufs[2] is not None else np.zeros(0, np.uint8)
    rel = offsets - start
    total = end - start
    pw = _powers(_POLY, total)
    prefix = np.zeros(total + 1, dtype=np.uint64)
    np.cumsum((data.astype(np.uint64) + np.uint64(1)) * pw, out=prefix[1:])
    segment = prefix[rel[1:]] - prefix[rel[:-1]]
    starts = rel[:-1]
    # P**-start for each value start: gather from a table only as long as the last start.
    inv = _powers(_POLY_INV, int(starts[-1]) + 1 if len(starts) else 0)
    value = segment * inv[starts] if len(starts) else segment
    lengths = np.diff(rel).astype(np.uint64)
    return _mix(value ^ _mix(lengths ^ np.uint64(0x9E3779B97F4A7C15)))


def hash_array(arr: pa.Array) -> np.ndarray | None:
    """64-bit hashes (uint64) of the non-null values of ``arr``; None for unsupported types.

    Supported: integers, floats, booleans, dates, times, timestamps, durations, decimals
    (via their string form), strings and binaries (any width), and dictionaries of those.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if arr.null_count:
        arr = pc.drop_null(arr)
    with np.errstate(over="ignore"):
        if pa.types.is_boolean(t):
            return _mix(arr.cast(pa.uint64()).to_numpy(zero_copy_only=False).astype(np.uint64))
        if pa.types.is_integer(t):
            ints = arr.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False)
            return _mix(ints.view(np.uint64))
        if pa.types.is_floating(t):
            floats = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
            return _mix(np.ascontiguousarray(floats).view(np.uint64) ^ np.uint64(0x5555))
        if pa.types.is_date32(t) or pa.types.is_time32(t):
            return _mix(arr.view(pa.int32()).cast(pa.int64()).to_numpy().view(np.uint64))
        if pa.types.is_date64(t) or pa.types.is_time64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t):
            return _mix(arr.view(pa.int64()).to_numpy().view(np.uint64))
        if pa.types.is_decimal(t):
            return _hash_binary(arr.cast(pa.string()))
        if (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t)
            or pa.types.is_string_view(t)
            or pa.types.is_binary_view(t)
        ):
            return _hash_binary(arr)
    return None


class HyperLogLog:
    """A HyperLogLog sketch: ``add`` 64-bit hashes, ``merge`` sketches, read ``estimate``."""

    def __init__(self, precision: int = DEFAULT_PRECISION):
        if not 4 <= precision <= 18:
            raise ValueError("HyperLogLog precision must be between 4 and 18")
        self.precision = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        """Fold an array of uint64 hashes into the registers."""
        if hashes.size == 0:
            return
        p = self.precision
        width = 64 - p
        index = (hashes >> np.uint64(width)).astype(np.intp)
        rest = hashes & np.uint64((1 << width) - 1)
        # bit length of ``rest`` = popcount of ``rest`` with every bit below its top bit set
        for shift in (1, 2, 4, 8, 16, 32):
            rest = rest | (rest >> np.uint64(shift))
        rank = (width + 1 - np.bitwise_count(rest)).astype(np.uint8)
        np.maximum.at(self.registers, index, rank)

    def merge(self, other: HyperLogLog) -> None:
        """Fold another sketch of the same precision into this one."""
        if other.precision != self.precision:
            raise ValueError("cannot merge HyperLogLog sketches of different precision")
        np.maximum(self.registers, other.registers, out=self.registers)

    def estimate(self) -> int:
        """The estimated number of distinct values added (linear counting when small)."""
        m = self.registers.size
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int32))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return int(round(m * math.log(m / zeros)))
        return int(round(raw))
