"""Element types of PE memory and their bit-level conversions.

A `DType` names a CSL element type (`f32`, `f16`, `i16`, ...). Each maps to one numpy dtype used
for the emulated memory arrays, and has a width in bits (16 or 32 for the types DSD operations
accept). Bit-level helpers convert between typed values and raw unsigned words, the form in which
memcpy moves data (spec 12.2) and in which wavelets carry it (spec 7.4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from wsejax import cb16 as _cb16

__all__ = ["ArrayType", "DType", "bf16", "bits16_of", "bool_", "cb16", "dtype_of", "f16", "f32",
           "format_value", "from_bits16", "i8", "i16", "i32", "i64", "rounded", "u8", "u16",
           "u32", "u64", "uint_of_width", "widens"]


_NP_CACHE: dict = {}       # DType -> np.dtype, filled on first use (the compilers ask often)


class DType(enum.Enum):
    """A CSL scalar element type."""

    bool_ = "bool"
    i8 = "i8"
    u8 = "u8"
    i16 = "i16"
    u16 = "u16"
    i32 = "i32"
    u32 = "u32"
    i64 = "i64"
    u64 = "u64"
    f16 = "f16"
    bf16 = "bf16"
    cb16 = "cb16"
    f32 = "f32"

    @property
    def np(self) -> np.dtype:
        """The numpy dtype holding values of this type."""
        got = _NP_CACHE.get(self)
        if got is None:
            if self is DType.bf16:
                import ml_dtypes

                got = np.dtype(ml_dtypes.bfloat16)
            else:
                got = np.dtype(_NUMPY[self])
            _NP_CACHE[self] = got
        return got

    @property
    def bits(self) -> int:
        if self is DType.cb16:      # held as f32 (see `rounded`), 16 bits in memory
            return 16
        return 8 if self is DType.bool_ else self.np.itemsize * 8

    @property
    def nbytes(self) -> int:
        return max(self.bits // 8, 1)

    @property
    def is_float(self) -> bool:
        return self in (DType.f16, DType.bf16, DType.cb16, DType.f32)

    @property
    def is_int(self) -> bool:
        return self in (DType.i8, DType.u8, DType.i16, DType.u16, DType.i32, DType.u32,
                        DType.i64, DType.u64)

    @property
    def is_signed(self) -> bool:
        return self in (DType.i8, DType.i16, DType.i32, DType.i64) or self.is_float

    @property
    def is_wide(self) -> bool:
        """A 64-bit integer (`i64`, `u64`): no DSD operation, memcpy or wavelet carries one."""
        return self.bits == 64

    @property
    def is_16bit(self) -> bool:
        return self.bits == 16

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__

    def __getitem__(self, shape) -> ArrayType:
        """`f32[M, N]` is the array type CSL writes `[M, N]f32`."""
        shape = shape if isinstance(shape, tuple) else (shape,)
        return ArrayType(self, tuple(int(n) for n in shape))


@dataclass(frozen=True)
class ArrayType:
    """A multi-dimensional array type `[shape]dtype` (row-major)."""

    dtype: DType
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"[{', '.join(map(str, self.shape))}]{self.dtype}"


_NUMPY = {
    DType.bool_: np.bool_,
    DType.i8: np.int8,
    DType.u8: np.uint8,
    DType.i16: np.int16,
    DType.u16: np.uint16,
    DType.i32: np.int32,
    DType.u32: np.uint32,
    DType.i64: np.int64,
    DType.u64: np.uint64,
    DType.f16: np.float16,
    DType.cb16: np.float32,
    DType.f32: np.float32,
}

bool_ = DType.bool_
i8 = DType.i8
u8 = DType.u8
i16 = DType.i16
u16 = DType.u16
i32 = DType.i32
u32 = DType.u32
i64 = DType.i64
u64 = DType.u64
f16 = DType.f16
bf16 = DType.bf16
cb16 = DType.cb16
f32 = DType.f32


def widens(x: DType, y: DType) -> bool:
    """True if a value of type x converts implicitly to type y (CSL 2.10 coercions): integer
    widening within signedness, unsigned to a strictly wider signed type, fp16 to f32."""
    if x.is_float and y.is_float:
        return x.bits < y.bits
    if x.is_int and y.is_int:
        if x.is_signed == y.is_signed:
            return x.bits < y.bits
        return not x.is_signed and y.is_signed and x.bits < y.bits
    return False


def dtype_of(name: str) -> DType:
    """The DType called `name` (`"f32"`, `"i16"`, ...). Raises KeyError for unknown names."""
    return DType("bool" if name == "bool_" else name)


def uint_of_width(bits: int) -> np.dtype:
    """The unsigned numpy dtype of `bits` bits (8, 16, 32 or 64)."""
    return np.dtype({8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits])


# -- cb16: its values are held as the f32 values they are (each exactly an f32), rounded to cb16
# after every operation; its 16-bit pattern is made where bits are seen (memcpy, wavelets,
# bitcasts)

def rounded(x, t: DType) -> np.ndarray:
    """`x` (numpy values or Python numbers) converted to `t`'s numpy type, each rounded to nearest
    even in `t` (a 0-d array for a scalar)."""
    with np.errstate(over="ignore"):            # past the type's range: an infinity
        if t is DType.cb16:
            return _cb16.decode(_cb16.encode(np.asarray(x, np.float32)))
        return np.asarray(x).astype(t.np)


def bits16_of(v, t: DType) -> np.ndarray:
    """The 16-bit patterns (uint16) of values `v` of the 16-bit type `t`."""
    if t is DType.cb16:
        return _cb16.encode(v)
    return np.asarray(v, t.np).view(np.uint16)


def from_bits16(b, t: DType) -> np.ndarray:
    """The values of type `t` (16 bits) whose patterns are the low 16 bits of `b`."""
    if t is DType.cb16:
        return _cb16.decode(b)
    return (np.asarray(b).astype(np.int64) & 0xFFFF).astype(np.uint16).view(t.np)


def format_value(v, spec: str, t: DType | None = None) -> str:
    """One `<simprint>` value (of type `t`, where known): {d} decimal, {X} upper hex and {b}
    binary padded to the value's width (16, 32 or 64 bits; a cb16 value's 16-bit pattern), {f}
    the shortest float that reads back."""
    if t is DType.cb16 and spec in ("X", "b"):
        v = bits16_of(v, t)
    v = np.asarray(v)
    bits = max(v.dtype.itemsize * 8, 16)
    if spec == "f":
        return str(v.astype(np.float32) if v.dtype.kind == "f" else np.float32(v))
    raw = int(v.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[v.dtype.itemsize])) \
        if v.dtype.kind != "b" else int(v)
    if spec == "X":
        return f"{raw:0{bits // 4}X}"
    if spec == "b":
        return f"{raw:0{bits}b}"
    return str(int(v)) if v.dtype.kind in "iub" else str(v)
