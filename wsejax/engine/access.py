"""Reading and writing the `[H, W, n]` memory of a symbol at the addresses of an access pattern.

Contract. Each function takes a symbol's memory flattened per PE (`flat`, `[H, W, size]`) and
addresses that are static (numpy) or traced (`[H, W, ...]` int32), and uses the cheapest JAX
operation the pattern allows: slices for an arithmetic progression, reshapes of one window for
a 2-D pattern, one dynamic slice when a traced offset is equal on every PE, per-PE gathers and
scatters otherwise. Callers check addresses against the symbol's size first (and fault); these
functions clamp or drop what is out of range.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["gather", "progression", "read_matrix", "read_offset", "read_static", "scatter",
           "window"]


def progression(a: np.ndarray):
    """(start, step) if `a` is an arithmetic progression, else None."""
    if a.size == 0:
        return None
    if a.size == 1:
        return int(a[0]), 1
    d = np.diff(a)
    if np.all(d == d[0]):
        return int(a[0]), int(d[0])
    return None


def read_static(flat, idx: np.ndarray):
    """`flat[:, :, idx]` for a static index array `idx` (any shape)."""
    prog = progression(idx.reshape(-1))
    if prog is not None:
        start, step = prog
        cnt = idx.size
        if step > 0:
            out = flat[:, :, start:start + step * (cnt - 1) + 1:step]
        elif step < 0:
            stop = start + step * (cnt - 1) - 1
            out = flat[:, :, start:(stop if stop >= 0 else None):step]
        else:
            out = jnp.broadcast_to(flat[:, :, start:start + 1], flat.shape[:2] + (cnt,))
        return out.reshape(flat.shape[:2] + idx.shape)
    if idx.ndim == 2:
        out = read_matrix(flat, idx)
        if out is not None:
            return out
    return jnp.take(flat, jnp.asarray(idx.astype(np.int32)), axis=2)


def read_matrix(flat, idx: np.ndarray):
    """A 2-D static pattern `idx[k, j] = base + k*a + j*b` as reshapes of one window."""
    base = int(idx[0, 0])
    a = int(idx[1, 0] - idx[0, 0]) if idx.shape[0] > 1 else 0
    b = int(idx[0, 1] - idx[0, 0]) if idx.shape[1] > 1 else 0
    if not np.array_equal(idx, base + a * np.arange(idx.shape[0])[:, None]
                          + b * np.arange(idx.shape[1])[None, :]):
        return None
    n, m = idx.shape
    s = flat.shape[2]
    if a == 1 and b >= n:        # column j is a contiguous run: rows of a [m, b] reshape
        size = m * b
        win = window(flat, base, size, s)
        return jnp.swapaxes(win.reshape(flat.shape[:2] + (m, b))[:, :, :, :n], 2, 3)
    if b == 1 and a >= m:        # row k is a contiguous run
        size = n * a
        win = window(flat, base, size, s)
        return win.reshape(flat.shape[:2] + (n, a))[:, :, :, :m]
    return None


def window(flat, start: int, size: int, s: int):
    """`flat[:, :, start:start+size]`, zero-padded past the end (pad is never used)."""
    end = min(start + size, s)
    win = flat[:, :, start:end]
    if end - start < size:
        pad = jnp.zeros(flat.shape[:2] + (size - (end - start),), flat.dtype)
        win = jnp.concatenate([win, pad], axis=2)
    return win


def gather(flat, idx):
    """Per-PE gather: `out[h, w, ...] = flat[h, w, idx[h, w, ...]]`. idx clamped by caller."""
    h, w = flat.shape[:2]
    idx = jnp.broadcast_to(idx, (h, w) + idx.shape[2:]) if idx.ndim >= 2 else \
        jnp.broadcast_to(idx, (h, w) + idx.shape)
    tail = idx.shape[2:]
    out = jnp.take_along_axis(flat, idx.reshape(h, w, -1), axis=2)
    return out.reshape((h, w) + tail)


def scatter(flat, target, vals):
    """Per-PE scatter: `flat[h, w, target[h, w, j]] = vals[h, w, j]` (`target` and `vals`
    `[H, W]` or `[H, W, n]`), dropping targets out of range. Batched over the PEs, so that
    on a mesh each device scatters into its own PEs (a scatter indexed by PE coordinates
    would gather every index and value to every device)."""
    vals = jnp.broadcast_to(vals, target.shape)
    return jax.vmap(jax.vmap(lambda f, t, v: f.at[t].set(v, mode="drop")))(flat, target, vals)


def read_offset(flat, off, pattern: np.ndarray, consume=lambda v: v):
    """`consume(flat[h, w, off[h, w] + pattern])`, with a dynamic slice when `off` is uniform.

    `off` is an int32 `[H, W]` array (already checked in range by the caller); `pattern` a
    static index array. Both ways are branches of one `lax.cond`; `consume` runs inside the
    branches so that a large read (a matrix) never leaves them whole: a conditional's result
    is copied out.
    """
    lo, hi = int(pattern.min()), int(pattern.max())
    span = hi - lo + 1
    s = flat.shape[2]
    rel = pattern - lo

    def uniform(first):
        start = jnp.clip(first + lo, 0, max(s - span, 0))
        if span > s:
            padded = jnp.concatenate(
                [flat, jnp.zeros(flat.shape[:2] + (span - s,), flat.dtype)], axis=2)
            win = lax.dynamic_slice_in_dim(padded, start, span, axis=2)
        else:
            win = lax.dynamic_slice_in_dim(flat, start, span, axis=2)
        return consume(read_static(win, rel))

    def general(_):
        idx = jnp.clip(off.reshape(off.shape + (1,) * pattern.ndim) + jnp.asarray(
            pattern.astype(np.int32)), 0, s - 1)
        return consume(gather(flat, idx))

    if off.ndim != 2:
        return general(None)
    if span == s and lo == 0:
        # the pattern covers the whole array: in range means off == 0 on every PE
        return consume(read_static(flat, rel))
    # the largest and (negated) smallest offset in one reduction: on a mesh, one collective
    top, neg_low = jnp.max(jnp.stack([off, -off]), axis=(1, 2))
    return lax.cond(top == -neg_low, uniform, general, top)
