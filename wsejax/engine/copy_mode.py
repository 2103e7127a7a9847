"""Copy-mode memcpy: a symbol's memory as a view of 16- or 32-bit words, and the jitted block
copies between that view and the host.

Contract. `to_words` / `from_words` convert a slot array (`[H, W, *shape]`) to and from its
word view (`[H, W, n_words]`); `put_block(bits)` and `get_block(bits, shape)` return jitted
functions shared by every program (jit compiles once per array and block shape), which write
or read one block of PEs and words of the view.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["from_words", "get_block", "put_block", "to_words"]

_PUT: dict = {}     # bits -> the jitted put
_GET: dict = {}     # (bits, block shape) -> the jitted get


def to_words(arr, bits: int):
    """View `arr` (`[H, W, *shape]`) as `[H, W, n_words]` unsigned words of `bits` bits."""
    h, w = arr.shape[:2]
    have = arr.dtype.itemsize * 8
    flat = arr.reshape(h, w, -1)
    u = {16: jnp.uint16, 32: jnp.uint32}
    if have == bits:
        return lax.bitcast_convert_type(flat, u[bits])
    if have == 32:  # 16-bit words of 32-bit elements, low half first
        return lax.bitcast_convert_type(flat, jnp.uint16).reshape(h, w, -1)
    # 32-bit words of 16-bit elements: pairs (low address = low half)
    if flat.shape[2] % 2:
        flat = jnp.concatenate([flat, jnp.zeros((h, w, 1), flat.dtype)], axis=2)
    return lax.bitcast_convert_type(flat.reshape(h, w, -1, 2), jnp.uint32)


def from_words(words, like):
    """Inverse of `to_words`: words back into an array shaped and typed like `like`."""
    h, w = like.shape[:2]
    have = like.dtype.itemsize * 8
    bits = words.dtype.itemsize * 8
    n = int(np.prod(like.shape[2:], dtype=np.int64))
    if have == bits:
        out = lax.bitcast_convert_type(words, like.dtype)
    elif have == 32:
        out = lax.bitcast_convert_type(words.reshape(h, w, -1, 2), like.dtype)
    else:
        out = lax.bitcast_convert_type(words, like.dtype).reshape(h, w, -1)[:, :, :n]
    return out.reshape(like.shape)


def put_block(bits: int):
    """The jitted copy-mode H2D: one dynamic update of a block of the word view. Shared by
    every slot and program; jit compiles once per array and block shape."""
    fn = _PUT.get(bits)
    if fn is None:
        def put(arr, block, mask, y, x, k):
            wv = to_words(arr, bits)
            old = lax.dynamic_slice(wv, (y, x, k), block.shape)
            new = jnp.where(mask[:, :, None], block, old)
            return from_words(lax.dynamic_update_slice(wv, new, (y, x, k)), arr)
        # the slot array is donated: a copy updates it in place
        fn = _PUT[bits] = jax.jit(put, donate_argnums=0)
    return fn


def get_block(bits: int, shape: tuple):
    """The jitted copy-mode D2H of a block of `shape` from the word view."""
    key = (bits, shape)
    fn = _GET.get(key)
    if fn is None:
        def get(arr, y, x, k):
            return lax.dynamic_slice(to_words(arr, bits), (y, x, k), shape)
        fn = _GET[key] = jax.jit(get)
    return fn
