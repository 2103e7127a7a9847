"""The DSD rules of both front ends: building memory DSDs (addressing fields or a
`tensor_access`) and fabric DSDs, the DSD setters, operand widths and the raw-bits rule of
integer operations, and FIFO buffers.

Every function raises `RuleError`."""

from __future__ import annotations

from wsejax import dsd as dsd_math
from wsejax.frontend.fabric import FABRIC_DSDS, fail
from wsejax.types import DType

__all__ = ["ADDRESSING", "CIRCBUF", "DSR_FILES", "DSR_TYPES", "FIFO_ACTIONS", "MEMORY_DSDS",
           "check_base_width", "check_fifo_action", "check_fifo_registers",
           "circbuf_wraparound",
           "check_dsr_load", "check_dsr_operand", "check_dsr_retype", "check_fabric_source",
           "check_fifo_buffer", "check_given_once", "check_length_target", "check_offset_type",
           "check_stride_target", "check_width", "coeffs", "linearize", "memory_only",
           "need_base", "need_extent", "need_extents", "raw_bits_source", "raw_literal",
           "tensor_access_shape"]

MEMORY_DSDS = ("mem1d_dsd", "mem4d_dsd")
CIRCBUF = "circbuf_dsd"
# the fields a tensor_access gives in place of its own
ADDRESSING = ("base_address", "offset", "stride", "extent")


# ------------------------------------------------------------------------------------------------
# Memory DSDs


def check_given_once(given, also, by_access: bool = False) -> None:
    """No addressing field is given both in `given` and in `also` (the fields of a
    tensor_access struct, or with `by_access` those a tensor_access map implies)."""
    for k in ADDRESSING:
        if k in given and k in also:
            fail(f"DSD property '{k}' given twice" + (" (also by tensor_access)"
                                                       if by_access else ""))


def need_base(kind: str, given: bool) -> None:
    if not given:
        fail(f"{kind} needs a base_address or a tensor_access")


def need_extent(given: bool) -> None:
    if not given:
        fail("mem1d_dsd needs an extent")


def need_extents(extents: tuple | None) -> tuple:
    """The extents of a mem4d_dsd: 1 to 4 of them."""
    if extents is None or not 1 <= len(extents) <= 4:
        fail("mem4d_dsd needs an extent tuple of 1 to 4 entries")
    return extents


def coeffs(strides: tuple[int, ...], extents: tuple[int, ...]) -> tuple[int, ...]:
    """A mem4d_dsd's address coefficients from its strides (innermost first)."""
    try:
        return dsd_math.coeffs_from_strides(strides, extents)
    except ValueError as err:
        fail(str(err))


def tensor_access_shape(kind: str, n_vars: int, n_extents: int) -> None:
    """A tensor_access has 1 to 4 induction variables, one extent each (one for a
    mem1d_dsd)."""
    if n_vars != n_extents:
        fail(f"tensor_access: {n_vars} induction variables but {n_extents} extents")
    if not 1 <= n_vars <= 4:
        fail("tensor_access takes 1 to 4 induction variables")
    if kind == "mem1d_dsd" and n_vars != 1:
        fail("a mem1d_dsd tensor_access takes one induction variable")


def linearize(shape: tuple, indices: tuple, n_vars: int) -> tuple[int, tuple]:
    """(offset, coefficients) of a tensor_access's indices into an array of `shape`."""
    try:
        return dsd_math.linearize(shape, indices, n_vars)
    except (ValueError, TypeError) as err:
        fail(f"tensor_access: {err}")


# ------------------------------------------------------------------------------------------------
# Fabric DSDs


def check_fabric_source(kind: str, arch: str, has_extent: bool, has_color: bool,
                        has_queue: bool) -> None:
    """A fabric DSD has an extent (its wavelets) and a color: on wse2 a fabric_color (a
    fabin_dsd may take its input queue's instead), on wse3 the one its queue is initialised
    with."""
    qfield = "input_queue" if kind == "fabin_dsd" else "output_queue"
    if not has_extent:
        fail(f"{kind} needs an extent (the number of wavelets)")
    if arch == "wse2" and not has_color and (kind == "fabout_dsd" or not has_queue):
        fail(f"on wse2 a {kind} needs a fabric_color"
             + (" or an input_queue bound to a color" if kind == "fabin_dsd" else ""))
    if arch == "wse3" and not has_queue:
        fail(f"on wse3 a {kind} needs an {qfield}: its color is the one the queue is "
             "initialised with")


# ------------------------------------------------------------------------------------------------
# Setters


def memory_only(name: str, kind: str) -> None:
    """`@name` takes a memory DSD."""
    if kind in FABRIC_DSDS:
        fail(f"@{name} does not apply to a {kind} (memory DSDs only)")
    if kind == CIRCBUF:
        fail(f"@{name} does not apply to a circbuf_dsd (mem1d_dsd and mem4d_dsd only)")


def circbuf_wraparound(array: str, size: int, start: int, whole: bool,
                       wraparound: int | None) -> int:
    """The ring size of a circbuf_dsd over `array` (`size` elements) from element `start`:
    `wraparound`, which defaults to the array's size where the base is the whole array, is
    required where it points to one element, and stays below the array's size (spec 7.3)."""
    if wraparound is None:
        if not whole:
            fail("a circbuf_dsd whose base_address points to one element needs a .wraparound")
        return size
    if wraparound <= 0:
        fail(f"a circbuf_dsd .wraparound is a count of elements (1 or more), got {wraparound}")
    if whole and wraparound >= size:
        fail(f"a circbuf_dsd .wraparound must be less than the size of '{array}' ({size}), "
             f"got {wraparound}")
    if start + wraparound > size:
        fail(f"a circbuf_dsd .wraparound of {wraparound} from element {start} runs past the "
             f"end of '{array}' ({size} elements)")
    return wraparound


def check_offset_type(t) -> None:
    """`@increment_dsd_offset` counts in elements of a 16- or 32-bit type."""
    if not isinstance(t, DType) or t.bits not in (16, 32):
        fail(f"{t} is not a 16- or 32-bit type", "@increment_dsd_offset")


def check_base_width(name: str, holds: DType, addresses: DType | None) -> None:
    """`@set_dsd_base_addr` keeps the DSD's element width."""
    if addresses is not None and holds.bits != addresses.bits:
        fail(f"'{name}' holds {holds}, the DSD addresses {addresses} elements",
             "@set_dsd_base_addr")


def check_length_target(kind: str) -> None:
    if kind == "mem4d_dsd":
        fail("@set_dsd_length does not apply to a mem4d_dsd")


def check_stride_target(kind: str) -> None:
    if kind != "mem1d_dsd":
        fail("@set_dsd_stride applies to a mem1d_dsd only")


# ------------------------------------------------------------------------------------------------
# Operands


def check_width(op: str, k: int, have: DType | None, want: DType, memory: bool = False) -> None:
    """Operand `k` (0: the destination) of `@op` addresses elements of the op's width; except
    that `@mov16` may read a memory DSD (`memory`) over a 32-bit array
    (`wsejax.dsd.reads_low_halves`)."""
    if memory and k > 0 and dsd_math.reads_low_halves(have, want):
        return
    if have is not None and have.bits != want.bits:
        fail(f"operand {k + 1} addresses {have} elements, but @{op} works on {want} "
             f"({want.bits}-bit)", f"@{op}", k)


def raw_bits_source(t: DType) -> DType | None:
    """Integer ops work on raw bit patterns (spec 8): the signed type of `t`'s width whose
    values an unsigned op `t` takes as their two's complement pattern (None: no such)."""
    if not t.is_int or t.is_signed:
        return None
    return {16: DType.i16, 32: DType.i32}.get(t.bits)


def raw_literal(v, t: DType):
    """A negative integer literal given to an unsigned integer op `t`, as its two's
    complement pattern; any other value as it is."""
    if (t.is_int and not t.is_signed and isinstance(v, int) and not isinstance(v, bool)
            and -(1 << (t.bits - 1)) <= v < 0):
        return v & ((1 << t.bits) - 1)
    return v


# ------------------------------------------------------------------------------------------------
# FIFOs


def check_fifo_buffer(name: str, dtype: DType, holder: str | None) -> None:
    """A FIFO's buffer holds 16- or 32-bit elements and no other FIFO (`holder`)."""
    if dtype.bits not in (16, 32) or dtype is DType.bool_:
        fail(f"'{name}' holds {dtype}; a FIFO holds 16- or 32-bit elements", "@allocate_fifo")
    if holder is not None:
        fail(f"'{name}' already holds a FIFO ('{holder}')", "@allocate_fifo")


FIFO_ACTIONS = ("test_or_suspend", "terminate", "suspend", "fault")


def check_fifo_action(arch: str, field: str, action: str) -> None:
    """A FIFO's `.empty_action` / `.full_action` (spec 7.5): one of `FIFO_ACTIONS`;
    `.full_action`, `suspend` and `fault` are wse3 only."""
    if action not in FIFO_ACTIONS:
        fail(f".{field} takes one of .{{ .test_or_suspend | .terminate | .suspend | .fault = "
             f"true }}, got .{action}", "@allocate_fifo")
    if arch != "wse3" and field == "full_action":
        fail(".full_action is not supported on wse2", "@allocate_fifo")
    if arch != "wse3" and action in ("suspend", "fault"):
        fail(f".{field} .{action} is not supported on wse2", "@allocate_fifo")


def check_fifo_registers(dest: tuple | None, src: tuple | None, xdsr: int | None,
                         taken: str | None) -> None:
    """A FIFO's explicit registers (spec 7.5, 9): `.dest` a dsr_dest and `.src` a dsr_src1 of
    the same number, with `.xdsr`, all three or none; `taken` names what already uses one of
    them. `dest` and `src` are (register type, number)."""
    given = [k for k, v in (("dest", dest), ("src", src), ("xdsr", xdsr)) if v is not None]
    if given and len(given) < 3:
        missing = [k for k in ("dest", "src", "xdsr") if k not in given]
        fail(f".dest, .src and .xdsr go together; .{missing[0]} is missing", "@allocate_fifo")
    if not given:
        return
    if dest[0] != "dsr_dest":
        fail(f".dest takes a dsr_dest, got a {dest[0]}", "@allocate_fifo")
    if src[0] != "dsr_src1":
        fail(f".src takes a dsr_src1, got a {src[0]}", "@allocate_fifo")
    if dest[1] != src[1]:
        fail(f".dest and .src are registers of one number, got {dest[1]} and {src[1]}",
             "@allocate_fifo")
    if taken is not None:
        fail(f"{taken} is already in use", "@allocate_fifo")


# ------------------------------------------------------------------------------------------------
# Data structure registers (spec 9)

DSR_TYPES = ("dsr_dest", "dsr_src0", "dsr_src1", "dsr_fifo_dest", "dsr_fifo_src1")
# the register file of each DSR type: a fifo type is a view of a dest or src1 register
DSR_FILES = {"dsr_dest": "dest", "dsr_src0": "src0", "dsr_src1": "src1",
             "dsr_fifo_dest": "dest", "dsr_fifo_src1": "src1"}


def check_dsr_retype(new: str, old: str) -> None:
    """`@get_dsr(new, some_dsr)` re-types a register within its file (dest / src1)."""
    if DSR_FILES[new] != DSR_FILES[old]:
        fail(f"a {old} (of the {DSR_FILES[old]} register file) cannot be re-typed as a "
             f"{new}", None, 1)


def check_dsr_load(dsr: str, dsd: str, xdsr: bool = False) -> None:
    """What DSD kind register type `dsr` can hold: a fabin_dsd is never a destination, a
    fabout_dsd never a source; a circbuf_dsd goes through @load_to_dsr_xdsr (`xdsr`), which
    loads nothing else."""
    if xdsr and dsd != CIRCBUF:
        fail(f"@load_to_dsr_xdsr loads a circbuf_dsd, got a {dsd} (load it with @load_to_dsr)",
             None, 1)
    if xdsr:
        return
    if dsd == CIRCBUF:
        fail("a circbuf_dsd is loaded with @load_to_dsr_xdsr(dsr, xdsr, dsd), not "
             "@load_to_dsr", None, 1)
    if dsd == "fabin_dsd" and DSR_FILES[dsr] == "dest":
        fail(f"a fabin_dsd cannot be loaded into a {dsr} (a destination register)", None, 1)
    if dsd == "fabout_dsd" and DSR_FILES[dsr] != "dest":
        fail(f"a fabout_dsd cannot be loaded into a {dsr} (a source register)", None, 1)
    if dsd not in MEMORY_DSDS + FABRIC_DSDS:
        fail(f"a {dsd} cannot be loaded with @load_to_dsr", None, 1)


def check_dsr_operand(op: str, k: int, dsr: str) -> None:
    """Spec 8: a destination register is a dsr_dest or a dsr_src0; a source is never one
    of the dest file."""
    if k == 0 and dsr not in ("dsr_dest", "dsr_src0"):
        fail(f"@{op}: the destination is a {dsr}; a destination DSR is a dsr_dest or a "
             "dsr_src0", None, k)
    if k > 0 and DSR_FILES[dsr] == "dest":
        fail(f"@{op}: operand {k + 1} is a {dsr}; a source DSR is a dsr_src0 or a dsr_src1",
             None, k)
