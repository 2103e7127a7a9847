"""`.simd_mode` fabric operands in the engine: a 16-bit op's elements two a wavelet, element
2k in the low half and 2k+1 in the high half (the policy of `wsejax.frontend.simd`).

An op's slot counts elements (`pos`), so a packed operand's queue is `pos // 2` wavelets
further on: where `pos` is odd the wavelet at the front of a fabin's queue has its low half
read and stays until its high half is, and a fabout keeps the low half it has made in the
slot field `pend` until its pair is done. With the op's last element the half-read wavelet is
popped and the half-made one sent (its high half 0).
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax.engine.rings import pick


def packed(d) -> bool:
    """Is runtime DSD `d` a fabric DSD with `.simd_mode`?"""
    return getattr(d, "simd", None) is not None


def elements_of(wavelets, pos):
    """The elements a packed operand at element `pos` can move through `wavelets` (`[H, W]`
    wavelets of data, or of room): the halves of those wavelets, less a low half already
    done."""
    return 2 * wavelets - pos % 2


def wavelets_of(pos, n, length):
    """The wavelets that `n` elements from element `pos` complete (popped or sent); with the
    op's last element, also the half-done one."""
    new = pos + n
    done = jnp.where(new >= length, (new + 1) // 2, new // 2)
    return jnp.where(n > 0, done - pos // 2, 0)


def unpack(w, pos, j):
    """Elements `pos + j` as 16-bit payloads (low halves) from the wavelets `w` (`[H, W, n]`)
    at the front of a fabin's queue."""
    e = (pos % 2)[..., None] + j
    word = pick(w, jnp.clip(e // 2, 0, w.shape[-1] - 1))
    return (word >> (16 * (e % 2)).astype(jnp.uint32)) & 0xFFFF


def pack(low16, pos, j, n, pend):
    """The wavelets a packed fabout sends for elements `pos + j` (`j < n`), their 16-bit
    payloads `low16` (`[H, W, window]` uint32): wavelet q holds elements `2q - pos % 2` and
    the next; before the first of them, `pend`. Returns the wavelets and the new `pend`."""
    window = low16.shape[-1]
    lo = 2 * j - (pos % 2)[..., None]
    hi = lo + 1
    low = jnp.where(lo < 0, pend[..., None], pick(low16, jnp.clip(lo, 0, window - 1)))
    high = jnp.where(hi < n[..., None], pick(low16, jnp.clip(hi, 0, window - 1)), 0)
    words = low.astype(jnp.uint32) | (high.astype(jnp.uint32) << 16)
    last = pick(low16, jnp.clip(n - 1, 0, window - 1)[..., None])[..., 0]
    new_pend = jnp.where((n > 0) & ((pos + n) % 2 == 1), last, pend)
    return words, new_pend.astype(pend.dtype)
