"""`cerebras.sdk.sdk_utils` as wsejax provides it (spec 13.3): host helpers for 16-bit data.

Host arrays exchanged with the device hold 32 bits per element (spec 12.2). With 16-bit device
data each element's low half carries the value, so these helpers move between 16-bit arrays and
32-bit host words. Byte order is little-endian, as on the SDK's hosts: the low half of a word is
its first two bytes.

    y32 = np.zeros(n, np.uint32)
    runner.memcpy_d2h(y32, y_id, 0, 0, w, h, l, data_type=MemcpyDataType.MEMCPY_16BIT, ...)
    y = memcpy_view(y32, np.dtype(np.float16))       # [n] f16, a view into y32
"""

from __future__ import annotations

import numpy as np

from wsejax.errors import MemcpyError

__all__ = ["calculate_cycles", "input_array_to_u32", "memcpy_view"]


def memcpy_view(arr: np.ndarray, dtype) -> np.ndarray:
    """A view of the low 8, 16 or all 32 bits of each 32-bit word of `arr`, as `dtype`.

    Args:
      arr: [..., n] a numpy array of 4-byte elements (uint32, int32, float32).
      dtype: the element type to see, of 1, 2 or 4 bytes (e.g. `np.dtype(np.float16)`).

    Returns:
      [..., n] a view sharing memory with `arr`: writing it writes the low bits of `arr`.

    Raises:
      MemcpyError: `arr` is not 32-bit, or `dtype` is not 8, 16 or 32 bits wide.

    >>> memcpy_view(np.array([0x00013c00], np.uint32), np.float16)
    array([1.], dtype=float16)
    """
    dtype = np.dtype(dtype)
    if not isinstance(arr, np.ndarray) or arr.dtype.itemsize != 4:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise MemcpyError(f"memcpy_view: arr must be a numpy array of 32-bit elements, got {got}")
    if dtype.itemsize == 4:
        return arr.view(dtype)
    if dtype.itemsize == 2:
        return arr.view(np.uint16)[..., ::2].view(dtype)
    if dtype.itemsize == 1:
        return arr.view(np.uint8)[..., ::4].view(dtype)
    raise MemcpyError(f"memcpy_view: dtype must be 8, 16 or 32 bits wide, got {dtype}")


def input_array_to_u32(arr: np.ndarray, sentinel: int | None, fast_dim_sz: int) -> np.ndarray:
    """16-bit data as 32-bit host words, for memcpy and streaming (spec 12.2).

    Each value's 16 bits go to the low half of a uint32. The high half is zero when `sentinel`
    is None; otherwise it holds the element's index along the innermost dimension, `n %
    fast_dim_sz` for flat (C-order) index n, which a streaming receiver can use to tell where a
    wavelet belongs. Only whether `sentinel` is None matters: that the upper half is exactly this
    index is inferred from the SDK's examples [I].

    Args:
      arr: [...] a numpy array of 16-bit elements (float16, int16, uint16).
      sentinel: None for zero extension, else any integer (the index is written).
      fast_dim_sz: the innermost dimension's size, 1 to 65536 (used only with a sentinel).

    Returns:
      [...] uint32, the shape of `arr`.

    >>> input_array_to_u32(np.array([1, 2, 3], np.uint16), 0, 2)
    array([    1, 65538,     3], dtype=uint32)
    """
    if not isinstance(arr, np.ndarray) or arr.dtype.itemsize != 2:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise MemcpyError(f"input_array_to_u32: arr must be a numpy array of 16-bit elements, "
                          f"got {got}")
    low = np.ascontiguousarray(arr).view(np.uint16).astype(np.uint32)
    if sentinel is None:
        return low
    if (not isinstance(fast_dim_sz, (int, np.integer)) or isinstance(fast_dim_sz, bool)
            or not 1 <= fast_dim_sz <= 1 << 16):
        raise MemcpyError(f"input_array_to_u32: fast_dim_sz must be an integer from 1 to 65536 "
                          f"(the index goes into 16 bits), got {fast_dim_sz!r}")
    index = (np.arange(low.size, dtype=np.uint32) % np.uint32(fast_dim_sz)).reshape(low.shape)
    return low | (index << np.uint32(16))


def calculate_cycles(timestamp_buf: np.ndarray) -> np.int64:
    """The cycles between two 48-bit timestamps packed into three 32-bit words.

    The packing is the convention of the SDK's examples (inferred [I]): the six 16-bit words
    of `start` and `end` (least significant first) are laid out in order, two per 32-bit word,
    low half first:

        word0 = start[0] | start[1] << 16
        word1 = start[2] | end[0]   << 16
        word2 = end[1]   | end[2]   << 16

    and a timestamp is `t[0] + t[1] * 2**16 + t[2] * 2**32`.

    Args:
      timestamp_buf: [3] 32-bit words of any 4-byte dtype (float32 holding raw bits is usual).

    Returns:
      `end - start` as np.int64.

    >>> int(calculate_cycles(np.array([0x00020001, 0x00050000, 0x00000002], np.uint32)))
    4
    """
    buf = timestamp_buf if isinstance(timestamp_buf, np.ndarray) else np.asarray(
        timestamp_buf, np.uint32)
    if buf.dtype.itemsize != 4 or buf.size != 3:
        raise MemcpyError(f"calculate_cycles: timestamp_buf must hold 3 32-bit words, got "
                          f"{buf.size} of {buf.dtype}")
    half = np.ascontiguousarray(buf).reshape(3).view("<u2").astype(np.int64)   # [6]
    start = half[0] + (half[1] << 16) + (half[2] << 32)
    end = half[3] + (half[4] << 16) + (half[5] << 32)
    return np.int64(end - start)
