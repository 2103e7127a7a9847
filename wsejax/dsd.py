"""DSD address arithmetic (spec 7.1, 7.2, 7.6), in plain integers and numpy.

A memory DSD visits elements of its base array's flat (row-major) storage:

- `mem1d_dsd`: element i is at `offset + stride * i`, for `0 <= i < extent`;
- `mem4d_dsd`: up to four counters `(i_0, ..., i_{m-1})`, the last varying fastest; the element
  with those counters is at `offset + sum(c[d] * i_d)`.

`tensor_access` (`|i, j|{L0, L1} -> A[e0, e1]`) is an affine map from the counters to the
indices of `A`; `linearize` turns it into the offset and coefficients above. A hand-written
mem4d gives `stride` innermost-first and `extent` outermost-first, with strides that are deltas
applied when a dimension advances; `coeffs_from_strides` converts them to coefficients.

Everything here is comptime arithmetic; the engine turns the results into index vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Affine", "coeffs_from_strides", "induction_vars", "linearize", "mem1d_addresses",
    "mem4d_addresses", "reads_low_halves", "strides_from_coeffs", "walk_strides",
]


@dataclass(frozen=True)
class Affine:
    """`const + sum(coeffs[k] * i_k)` over induction variables `i_0, i_1, ...`."""

    const: int = 0
    coeffs: tuple[int, ...] = ()

    def _coeffs(self, n: int) -> tuple[int, ...]:
        return self.coeffs + (0,) * (n - len(self.coeffs))

    def __add__(self, other):
        other = _affine(other)
        if other is NotImplemented:
            return other
        n = max(len(self.coeffs), len(other.coeffs))
        return Affine(self.const + other.const,
                      tuple(a + b for a, b in zip(self._coeffs(n), other._coeffs(n))))

    __radd__ = __add__

    def __neg__(self):
        return Affine(-self.const, tuple(-c for c in self.coeffs))

    def __sub__(self, other):
        other = _affine(other)
        return NotImplemented if other is NotImplemented else self + (-other)

    def __rsub__(self, other):
        other = _affine(other)
        return NotImplemented if other is NotImplemented else other + (-self)

    def __mul__(self, k):
        if isinstance(k, Affine):
            if k.is_const:
                k = k.const
            elif self.is_const:
                return k * self.const
            else:
                raise TypeError("tensor_access index is not affine: product of two induction "
                                "variables")
        if not isinstance(k, (int, np.integer)):
            return NotImplemented
        k = int(k)
        return Affine(self.const * k, tuple(c * k for c in self.coeffs))

    __rmul__ = __mul__

    @property
    def is_const(self) -> bool:
        return not any(self.coeffs)


def _affine(v):
    if isinstance(v, Affine):
        return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return Affine(int(v))
    return NotImplemented


def induction_vars(n: int) -> tuple[Affine, ...]:
    """The `n` induction variables of a tensor_access, as affine maps."""
    return tuple(Affine(0, tuple(1 if k == d else 0 for k in range(n))) for d in range(n))


def linearize(shape: tuple[int, ...], indices: tuple, n_vars: int) -> tuple[int, tuple[int, ...]]:
    """Row-major linear index of `A[indices]` for `A` of `shape`, as `(offset, coeffs)`.

    Each index is an int or an `Affine` over `n_vars` induction variables.
    Raises ValueError when the number of indices does not match the rank of `shape`.
    """
    shape = tuple(shape) or (1,)
    if len(indices) != len(shape):
        raise ValueError(f"tensor_access indexes a rank-{len(shape)} array with "
                         f"{len(indices)} indices")
    total = Affine(0, (0,) * n_vars)
    for dim, idx in zip(shape, indices):
        total = total * dim + _affine(idx)
    return total.const, total._coeffs(n_vars)


def mem1d_addresses(offset: int, stride: int, length: int) -> np.ndarray:
    """Element addresses visited by a mem1d DSD, in order. `[length] int64`"""
    return offset + stride * np.arange(length, dtype=np.int64)


def mem4d_addresses(offset: int, coeffs: tuple[int, ...], extents: tuple[int, ...]) -> np.ndarray:
    """Element addresses visited by a mem4d DSD in affine form, in order. `[prod(extents)] int64`"""
    addr = np.full((), offset, dtype=np.int64)
    for c, e in zip(coeffs, extents):
        addr = addr[..., None] + c * np.arange(e, dtype=np.int64)
    return addr.reshape(-1)


def coeffs_from_strides(strides: tuple[int, ...], extents: tuple[int, ...]) -> tuple[int, ...]:
    """Affine coefficients (outermost first) of a hand-written mem4d.

    `strides` are written innermost-first and `extents` outermost-first (spec 7.2): stride k is
    the delta added when written dimension `m-1-k` advances after all faster dimensions wrap.
    """
    m = len(extents)
    if len(strides) != m:
        raise ValueError(f"mem4d_dsd has {m} extents but {len(strides)} strides")
    coeffs = [0] * m
    for k in range(m):
        d = m - 1 - k
        coeffs[d] = strides[k] + sum(coeffs[e] * (extents[e] - 1) for e in range(d + 1, m))
    return tuple(coeffs)


def strides_from_coeffs(coeffs: tuple[int, ...], extents: tuple[int, ...]) -> tuple[int, ...]:
    """Inverse of `coeffs_from_strides`: the innermost-first stride tuple of an affine mem4d."""
    m = len(extents)
    return tuple(coeffs[m - 1 - k] - sum(coeffs[e] * (extents[e] - 1) for e in range(m - k, m))
                 for k in range(m))


def walk_strides(offset: int, strides: tuple[int, ...], extents: tuple[int, ...]) -> np.ndarray:
    """Addresses of a hand-written mem4d by the hardware's step rule (spec 7.2).

    Start at `offset`; to step, find the innermost dimension that does not wrap, reset the
    faster counters, advance it and add its stride.
    """
    m = len(extents)
    counters = [0] * m
    addr = offset
    out = []
    total = int(np.prod(extents)) if extents else 0
    for n in range(total):
        out.append(addr)
        if n == total - 1:
            break
        d = m - 1
        while counters[d] == extents[d] - 1:
            counters[d] = 0
            d -= 1
        counters[d] += 1
        addr += strides[m - 1 - d]
    return np.asarray(out, dtype=np.int64)


def reads_low_halves(have, want) -> bool:
    """Whether a `want`-typed op reading a memory DSD over a `have` array (`wsejax.types`
    DTypes) reads each element's low 16 bits: a 16-bit op over a 32-bit array reads the
    16-bit word at each element's address ([I]: the SDK's color swap tutorial sends a u32
    with `@mov16`; only the first element's reading is attested)."""
    return have is not None and have.bits == 32 and want.bits == 16 and not have.is_wide
