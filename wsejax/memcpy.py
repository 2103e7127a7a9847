"""Host <-> device index maps of memcpy (spec 12.2), in numpy.

The host buffer of a memcpy over the region of interest (ROI) of `w` columns and `h` rows, with
`l` elements per PE, is a 1-D array. Each function here returns, for every device position
`(j, i, k)` (ROI row j, ROI column i, element k), the host index `n` it exchanges with, as an
`[h, w, l]` int64 array:

- ROW_MAJOR: `n = (j*w + i)*l + k` (numpy C order of `[h][w][l]`);
- COL_MAJOR: `n = j + h*(i + w*k)` (numpy Fortran order of `[h][w][l]`);
- row broadcast (`memcpy_h2d_rowbcast`, source `[h][l]`): ROW `n = j*l + k`, COL `n = j + h*k`;
- column broadcast (`memcpy_h2d_colbcast`, source `[w][l]`): ROW `n = i*l + k`, COL `n = i + w*k`;
- strided (`memcpy_h2d_stride`): only the PEs at ROI column `a*row_stride`, row `b*col_stride`
  receive, `a < xi = 1 + (w-1)//row_stride`, `b < eta = 1 + (h-1)//col_stride`, and the source
  is laid out as a ROI of `xi` columns and `eta` rows of them (source `[eta][xi][l]` in
  ROW_MAJOR). The SDK's text gives the source as `A[xi][eta][l]`, an order no other call uses
  and that its examples do not confirm, so wsejax takes the ROI layout of the other calls.

The runtime moves data as `[h, w, l]` blocks: `host_to_block` and `block_to_host` apply the same
maps with reshapes (views where numpy allows), without building index arrays.

Data types: host elements are 32-bit. `MEMCPY_32BIT` moves each as one 32-bit device element;
`MEMCPY_16BIT` moves its low 16 bits as one 16-bit device element (upper half zero on D2H).
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["MemcpyDataType", "MemcpyOrder", "block_to_host", "colbcast_map", "host_to_block",
           "roi_map", "rowbcast_map", "stride_grid", "strided_block", "word_bits"]


class MemcpyOrder(enum.IntEnum):
    """Order of the host tensor `[h][w][l]` in the 1-D host buffer."""

    ROW_MAJOR = 0
    COL_MAJOR = 1


class MemcpyDataType(enum.IntEnum):
    """Width of each device element a host element maps to."""

    MEMCPY_32BIT = 0
    MEMCPY_16BIT = 1


def word_bits(data_type: MemcpyDataType) -> int:
    """Bits of one device element moved per host element (32 or 16)."""
    return 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32


def _grid(h: int, w: int, l: int):
    return np.ogrid[0:h, 0:w, 0:l]


def roi_map(order: MemcpyOrder, w: int, h: int, l: int) -> np.ndarray:
    """Host index of each device position of a plain memcpy. `[h, w, l] int64`"""
    j, i, k = _grid(h, w, l)
    if MemcpyOrder(order) is MemcpyOrder.ROW_MAJOR:
        n = (j * w + i) * l + k
    else:
        n = j + h * (i + w * k)
    return np.broadcast_to(n, (h, w, l)).astype(np.int64)


def rowbcast_map(order: MemcpyOrder, w: int, h: int, l: int) -> np.ndarray:
    """Host index of each device position of `memcpy_h2d_rowbcast` (source `[h][l]`)."""
    j, i, k = _grid(h, w, l)
    n = j * l + k if MemcpyOrder(order) is MemcpyOrder.ROW_MAJOR else j + h * k
    return np.broadcast_to(n + 0 * i, (h, w, l)).astype(np.int64)


def colbcast_map(order: MemcpyOrder, w: int, h: int, l: int) -> np.ndarray:
    """Host index of each device position of `memcpy_h2d_colbcast` (source `[w][l]`)."""
    j, i, k = _grid(h, w, l)
    n = i * l + k if MemcpyOrder(order) is MemcpyOrder.ROW_MAJOR else i + w * k
    return np.broadcast_to(n + 0 * j, (h, w, l)).astype(np.int64)


def host_to_block(kind: str, order: MemcpyOrder, src: np.ndarray, w: int, h: int,
                  l: int) -> np.ndarray:
    """The `[h, w, l]` device block a host buffer maps to (a view where possible).

    `kind` is "roi" (`memcpy_h2d`), "rowbcast" or "colbcast"; `src` is the 1-D host buffer.
    """
    f = "C" if MemcpyOrder(order) is MemcpyOrder.ROW_MAJOR else "F"
    if kind == "roi":
        return src.reshape((h, w, l), order=f)
    if kind == "rowbcast":
        return np.broadcast_to(src.reshape((h, l), order=f)[:, None, :], (h, w, l))
    if kind == "colbcast":
        return np.broadcast_to(src.reshape((w, l), order=f)[None, :, :], (h, w, l))
    raise ValueError(f"unknown memcpy kind {kind!r}")


def stride_grid(w: int, h: int, strides: tuple[int, int]) -> tuple[int, int]:
    """`(xi, eta)`: the columns and rows of a `w` x `h` ROI that a strided copy with
    `strides = (row_stride, col_stride)` reaches."""
    row_stride, col_stride = strides
    return 1 + (w - 1) // row_stride, 1 + (h - 1) // col_stride


def strided_block(kind: str, order: MemcpyOrder, src: np.ndarray, w: int, h: int, l: int,
                  strides: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The `[h, w, l]` block a host buffer maps to and the `[h, w]` mask of the PEs that
    receive it (None: all). Without `strides` this is `host_to_block`; with them, the PEs a
    strided copy reaches get a ROI block of their own grid, the others zeros."""
    if strides is None:
        return host_to_block(kind, order, src, w, h, l), None
    xi, eta = stride_grid(w, h, strides)
    row_stride, col_stride = strides
    block = np.zeros((h, w, l), src.dtype)
    block[::col_stride, ::row_stride] = host_to_block(kind, order, src, xi, eta, l)
    who = np.zeros((h, w), bool)
    who[::col_stride, ::row_stride] = True
    return block, who


def block_to_host(order: MemcpyOrder, block: np.ndarray, out: np.ndarray) -> None:
    """Write a `[h, w, l]` device block into the 1-D host buffer `out`, in place."""
    f = "C" if MemcpyOrder(order) is MemcpyOrder.ROW_MAJOR else "F"
    out[:] = block.reshape(-1, order=f)
