"""Data structure registers (spec 9): `@get_dsr`, `@get_xdsr` and `@load_to_dsr`.

A DSR is a per-PE register holding a DSD. It is modelled as a global DSD variable of the PE
program (`ir.Dsr` names it): an operand reads it as `ir.DsdVar`, a `@load_to_dsr` in a
function body is an `ir.DsdAssign` to it, one at comptime (the register loaded before the
program starts) its initial value. `.save_address = true` marks the register so that each DSD
operation using it moves its offset past the elements it accessed; `.async = true` (with
`.activate`, `.unblock`, `.ut_id`, `.on_control`) makes every operation that uses it
asynchronous, with those hooks. A register is refused as an operand until some
`@load_to_dsr` (earlier in the program's text) has loaded it, and every load of one
register must agree on the kind of DSD, its element type, the load's config and what the
operand rules see of the DSD (`.simd_mode`, `.wavelet_index_offset`, `.zero`). Loads may
differ in the DSD's fixed part (a fabric DSD's color, a mem4d_dsd's shape, ...; one chosen
at run time among several is loaded by an if chain on its tag): the register then holds
one DSD variable per part beside the number of the part it holds (`csl.dsr_parts`).
`@load_to_dsr_xdsr` loads a circbuf_dsd (the only way one becomes an operand).
`.single_step = true` readies a register for `@map` (which takes a register only so loaded:
a dsr_src1 input or a dsr_dest output); elsewhere it is refused. `.on_control` applies to a
fabin_dsd's register only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.op_config import op_config
from wsejax.csl.dsd_picks import unloaded
from wsejax.csl.values import (
    CNum,
    DsdVal,
    DsdVarRef,
    PickedDsd,
    PickedVar,
    Special,
    StructVal,
    TupleVal,
    describe,
)
from wsejax.frontend.dsds import (
    DSR_FILES,
    DSR_TYPES,
    check_dsr_load,
    check_dsr_operand,
    check_dsr_retype,
)
from wsejax.types import DType

__all__ = ["DsrRecord", "DsrVal", "XdsrVal", "dsd_literal", "dsr_operand", "map_dsr_operand",
           "op_config_of_dsrs"]


@dataclass(frozen=True)
class DsrVal:
    """A data structure register (`@get_dsr(dsr_dest, 3)`): DSD variable `name` of the PE
    program, seen as register type `type` (`dsr_dest`, ...)."""

    name: str
    type: str
    id: int

    def freeze(self):
        return ("dsr", self.name, self.type)


@dataclass(frozen=True)
class XdsrVal:
    """An extended DSR (`@get_xdsr(id)`)."""

    id: int

    def freeze(self):
        return ("xdsr", self.id)


@dataclass
class DsrRecord:
    """What the loads of one register so far have put in it: the kind and element type of
    DSD, its literal (for the operand rules), and the load's config; the fixed parts of
    the DSDs loaded (`parts`, in the order first loaded: part g is held in DSD variable
    `part_name(g)`), and the part a comptime load leaves in it (`initial`)."""

    name: str
    file: str
    id: int
    kind: str
    dtype: DType | None
    literal: object
    save_address: bool
    config: ir.OpConfig | None
    single_step: bool = False
    parts: list = field(default_factory=list)
    initial: int = 0

    def ir(self) -> ir.Dsr:
        return ir.Dsr(self.name, self.file, self.id, self.save_address)

    def part_name(self, g: int) -> str:
        """The DSD variable that holds the register's DSDs of part g (part 0: its own)."""
        return self.name if g == 0 else f"{self.name}.{g}"


@builtin("get_dsr")
def _get_dsr(c, node, env):
    nargs(c, node, 2)
    t = c.ev(node.args[0], env)
    if not (isinstance(t, Special) and t.name in DSR_TYPES):
        raise c.error(f"@get_dsr takes a DSR type first ({', '.join(DSR_TYPES)}), got "
                      f"{_describe(t)}", node.args[0].pos)
    v = c.ev(node.args[1], env)
    if isinstance(v, DsrVal):
        rule(c, node, check_dsr_retype, t.name, v.type)
        return DsrVal(v.name, t.name, v.id)
    n = _register_id(c, v, node, "@get_dsr")
    return DsrVal(f"%dsr.{DSR_FILES[t.name]}.{n}", t.name, n)


@builtin("get_xdsr")
def _get_xdsr(c, node, env):
    nargs(c, node, 1)
    return XdsrVal(_register_id(c, c.ev(node.args[0], env), node, "@get_xdsr"))


def _register_id(c, v, node, what: str) -> int:
    n = v.value if isinstance(v, CNum) and v.dtype.is_int else v
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise c.error(f"{what} takes a comptime-known register number (0 or more), got "
                      f"{_describe(v)}", node.args[-1].pos)
    return n


def _describe(v) -> str:
    if isinstance(v, DsrVal):
        return f"the {v.type} {v.id}"
    if isinstance(v, XdsrVal):
        return f"the xdsr {v.id}"
    return describe(v)


@builtin("load_to_dsr")
def _load_to_dsr(c, node, env):
    nargs(c, node, 2, 3)
    _load(c, node, env)


@builtin("load_to_dsr_xdsr")
def _load_to_dsr_xdsr(c, node, env):
    """`@load_to_dsr_xdsr(dsr, xdsr, circbuf [, config])`: a circbuf_dsd into a register
    (the XDSR it also takes is not modelled apart)."""
    nargs(c, node, 3, 4)
    x = c.ev(node.args[1], env)
    if not isinstance(x, XdsrVal):
        raise c.error(f"@load_to_dsr_xdsr takes an XDSR (@get_xdsr(n)) second, got "
                      f"{_describe(x)}", node.args[1].pos)
    _load(c, ast.Builtin(node.name, (node.args[0],) + node.args[2:], node.pos), env)


def _load(c, node, env):
    """A load of a DSD into a register: `node.args` are the register, the DSD and maybe the
    config (`@load_to_dsr`, or `@load_to_dsr_xdsr` without its XDSR). A DSD chosen at run
    time among different fixed parts is loaded by an if chain on its tag, each arm a load
    of one of them."""
    pe = env.module.pe
    if pe is None:
        raise c.error("@load_to_dsr belongs in a PE program", node.pos)
    dsr = c.ev(node.args[0], env)
    if not isinstance(dsr, DsrVal):
        raise c.error(f"@load_to_dsr loads a DSR (@get_dsr(dsr_dest, n), ...), got "
                      f"{_describe(dsr)}", node.args[0].pos)
    pos = node.args[1].pos
    v = c.ev(node.args[1], env)
    if not isinstance(v, (DsdVal, DsdVarRef, PickedDsd, PickedVar)):
        raise c.error(f"@load_to_dsr loads a DSD into {_describe(dsr)}, got {_describe(v)}",
                      pos)
    v = c.dsd_or_picked(v, pos)
    rule(c, node, check_dsr_load, dsr.type, v.kind, node.name == "load_to_dsr_xdsr")
    options = _load_config(c, node, env, v.kind)
    if dsr.name in pe.fifo_registers:
        raise c.error(f"@{node.name}: {_describe(dsr)} is FIFO "
                      f"'{pe.fifo_registers[dsr.name]}''s (.dest / .src of @allocate_fifo)",
                      node.args[0].pos)
    return c.each_arm([v], env, lambda d: _load_dsd(c, node, env, dsr, d[0], options), pos)


def _load_dsd(c, node, env, dsr: DsrVal, d: DsdVal, options: tuple) -> None:
    """The load of DSD `d` (of one fixed part) into register `dsr`, with its `options`
    (`.save_address`, config, `.single_step`): an assignment to the register's DSD
    variable of that part, or at comptime its initial value."""
    pe = env.module.pe
    lit = dsd_literal(c, d.expr) or c.picked_literal(pe, d.expr)
    if lit is None:
        raise c.error("@load_to_dsr takes a DSD made by @get_dsd or a DSD variable (with "
                      "setters), not a DSD parameter or local", node.args[1].pos)
    if d.kind == "circbuf_dsd":
        lit = _circbuf_literal(c, pe, d.expr, node)
    rec = DsrRecord(dsr.name, DSR_FILES[dsr.type], dsr.id, d.kind, d.dtype, lit, *options)
    _agree(c, pe.dsrs.get(dsr.name), rec, node)
    rec = pe.dsrs.setdefault(dsr.name, rec)
    g = _part(c, rec, lit)
    name = rec.part_name(g)
    if d.kind in ("fabin_dsd", "fabout_dsd"):
        _need_queue(c, pe, d.kind, lit, node)
    if env.fn is None:
        folded = _fold(pe, d.expr)
        if folded is None:
            raise c.error("a comptime @load_to_dsr needs a comptime-known DSD",
                          node.args[1].pos)
        pe.dsd_vars[name] = ir.DsdLit(folded)
        rec.initial = g
        return None
    pe.dsd_vars.setdefault(name, ir.DsdLit(unloaded(lit)))
    env.fn.emit(ir.DsdAssign(name, d.expr))
    return None


def _part(c, rec: DsrRecord, lit) -> int:
    """The number of the fixed part of DSD literal `lit` among the parts register `rec`
    holds (a new one is added)."""
    part = c._fixed_part(ir.DsdLit(lit))
    if part not in rec.parts:
        rec.parts.append(part)
    return rec.parts.index(part)


_LOAD_OPTIONS = ("async", "activate", "unblock", "ut_id", "on_control")


def _load_config(c, node, env, kind: str) -> tuple[bool, ir.OpConfig | None, bool]:
    """`.save_address`, the config of the operations that use the register, and
    `.single_step`."""
    if len(node.args) < 3:
        return False, None, False
    cfg = c.ev(node.args[2], env)
    if isinstance(cfg, TupleVal) and not cfg.items:
        return False, None, False
    pos = node.args[2].pos
    if not isinstance(cfg, StructVal):
        raise c.error(f"@load_to_dsr takes a config struct like .{{ .save_address = true }}, "
                      f"got {_describe(cfg)}", pos)
    f = dict(cfg.fields)
    _known_options(c, f, pos)
    save = _flag(c, f, "save_address", pos)
    single = _flag(c, f, "single_step", pos)
    if single and (f or save):
        other = "save_address" if save else next(iter(f))
        raise c.error(f"@load_to_dsr: .single_step goes alone, without .{other}", pos)
    if single:
        return False, None, True
    if save and f:
        raise c.error("@load_to_dsr: .save_address goes alone, without "
                      f".{next(iter(f))}", pos)
    if save and kind not in ("mem1d_dsd", "mem4d_dsd", "circbuf_dsd"):
        raise c.error(f"@load_to_dsr: .save_address applies to a mem1d_dsd or a mem4d_dsd, "
                      f"got a {kind}", pos)
    config = op_config(c, StructVal(f), node, env) if f else None
    if config is not None and config.on_control is not None and kind != "fabin_dsd":
        raise c.error(f"@load_to_dsr: .on_control acts on control wavelets arriving on a "
                      f"fabin_dsd, got a {kind}", pos)
    if config is not None and kind not in ("fabin_dsd", "fabout_dsd"):
        raise c.error(f"@load_to_dsr: .async and its hooks apply to a fabric DSD, got a "
                      f"{kind} (an operation on memory is synchronous)", pos)
    return save, config, False


def _flag(c, f: dict, name: str, pos) -> bool:
    """Option `.name` of a load (taken out of `f`): a comptime-known bool, false if not
    given."""
    v = f.pop(name, False)
    v = v.value if isinstance(v, CNum) else v
    if not isinstance(v, bool):
        raise c.error(f"@load_to_dsr: .{name} takes a comptime-known bool, got "
                      f"{_describe(v)}", pos)
    return v


def _known_options(c, f: dict, pos) -> None:
    for k in f:
        if k not in _LOAD_OPTIONS + ("save_address", "single_step"):
            raise c.error(f"@load_to_dsr: unknown option .{k}", pos)


def _agree(c, old: DsrRecord | None, new: DsrRecord, node) -> None:
    """Every load of one register puts the same kind of DSD in it, with the same config."""
    if old is None:
        return
    what = f"@load_to_dsr: the {new.file} DSR {new.id}"
    typed = old.dtype is not None and new.dtype is not None
    if old.kind != new.kind or (typed and old.dtype != new.dtype):
        raise c.error(f"{what} was loaded with a {old.kind} of {old.dtype} elsewhere; here "
                      f"with a {new.kind} of {new.dtype} (one register holds one kind of "
                      "DSD here)", node.args[1].pos)
    if (old.save_address, old.config, old.single_step) != \
            (new.save_address, new.config, new.single_step):
        raise c.error(f"{what} was loaded with another config elsewhere; every load of a "
                      "register gives the same .save_address / .async / .single_step options "
                      "here", node.pos)
    if _checked(old.literal) != _checked(new.literal):
        raise c.error(f"{what} was loaded elsewhere with a {old.kind} that differs from this "
                      "one in .simd_mode, .wavelet_index_offset or .zero; the operations on "
                      "a register are checked once, for what every DSD loaded into it "
                      "shares (give them all the same options, or use two registers)",
                      node.args[1].pos)


def _checked(lit) -> tuple:
    """What the operand rules of an operation see of the DSD literal `lit` a register holds
    (`dsd_ops._operand_info`, `_simd_of`)."""
    return (getattr(lit, "simd", None) is not None,
            bool(getattr(lit, "wavelet_index_offset", False)), getattr(lit, "zero", ()))


def dsd_literal(c, e):
    """The DSD literal under DSD expression `e`'s setters, None where only known at run
    time."""
    while isinstance(e, (ir.IncrementOffset, ir.SetBase, ir.SetLength, ir.SetStride)):
        e = e.dsd
    if isinstance(e, ir.DsdLit):
        return e.dsd
    if isinstance(e, ir.DsdVar):
        return c.pe_dsd_init(e.name)
    return None


def _fold(pe, e):
    """The DSD literal comptime DSD expression `e` stands for (its setters applied), or
    None where some field is known only at run time."""
    if isinstance(e, ir.DsdLit):
        return e.dsd
    if not isinstance(e, (ir.IncrementOffset, ir.SetBase, ir.SetLength, ir.SetStride)):
        return None
    d = _fold(pe, e.dsd)
    if d is None:
        return None
    if isinstance(e, ir.SetBase):
        return dataclasses.replace(d, base=e.symbol, base_offset=e.base_offset,
                                   offset=ir.Const(0, DType.i16))
    if isinstance(e, ir.SetLength):
        return dataclasses.replace(d, length=e.length) if isinstance(e.length, ir.Const) \
            and not isinstance(d, ir.Mem4d) else None
    if isinstance(e, ir.SetStride):
        return dataclasses.replace(d, stride=e.stride) if isinstance(e.stride, ir.Const) \
            else None
    return _fold_offset(pe, d, e)


def _fold_offset(pe, d, e: ir.IncrementOffset):
    """`increment_dsd_offset` of literal `d` by a constant of its own element width."""
    if not (isinstance(e.delta, ir.Const) and isinstance(d.offset, ir.Const)):
        return None
    if pe.symbols[d.base].dtype.bits != e.dtype.bits:
        return None
    return dataclasses.replace(d, offset=ir.Const(int(d.offset.value) + int(e.delta.value),
                                                  DType.i16))


def _circbuf_literal(c, pe, e, node) -> ir.CircBuf:
    """The circbuf_dsd DSD expression `e` loads into a register: its extent is
    comptime-known (the engine sizes its ring walk by it; a load of another extent is of
    another fixed part)."""
    folded = _fold(pe, e) or c.picked_literal(pe, e)
    if folded is None or type(folded.length) is not ir.Const:
        raise c.error("a circbuf_dsd goes into a register with a comptime-known extent here",
                      node.args[1].pos)
    return folded


def _need_queue(c, pe, kind: str, lit, node) -> None:
    """A fabin in a DSR needs an explicit `@initialize_queue` of its input queue; on wse3 a
    fabout too, of its output queue (checked once the PE program is complete)."""
    if kind == "fabout_dsd" and c.arch != "wse3":
        return
    side = "input" if kind == "fabin_dsd" else "output"
    queue = getattr(lit, "queue", None)
    if queue is None:
        raise c.error(f"@load_to_dsr: a {kind} in a DSR needs an .{side}_queue that "
                      f"@initialize_queue binds", node.args[1].pos)

    def check():
        if (side, queue) not in pe.queues:
            raise c.error(f"@load_to_dsr: a {kind} in a DSR needs an explicit "
                          f"@initialize_queue(@get_{side}_queue({queue}), ...)",
                          node.args[1].pos)

    pe.deferred.append(check)


def dsr_operand(c, pe, v: DsrVal, node, k: int):
    """DSR `v` as operand `k` of DSD operation `node` of PE program `pe`: its record.
    Raises CslError where it is never loaded or is of the wrong kind."""
    rec = pe.dsrs.get(v.name)
    pos = node.args[k].pos if k < len(node.args) else node.pos
    if rec is None:
        raise c.error(f"@{node.name}: {_describe(v)} is used before any @load_to_dsr loads "
                      "it", pos)
    rule(c, node, check_dsr_operand, node.name, k, v.type)
    return rec


def map_dsr_operand(c, pe, v: DsrVal, node, k: int, output: bool) -> DsrRecord:
    """DSR `v` as argument `k` of `@map` (an input, or the output): its record. A register
    used by `@map` was loaded with `.single_step`; an input is a dsr_src1, the output a
    dsr_dest (spec 8.1)."""
    rec = pe.dsrs.get(v.name)
    pos = node.args[k].pos
    if rec is None:
        raise c.error(f"@map: {_describe(v)} is used before any @load_to_dsr loads it", pos)
    if not rec.single_step:
        raise c.error(f"@map: {_describe(v)} must be loaded with .{{ .single_step = true }}",
                      pos)
    want = "dsr_dest" if output else "dsr_src1"
    if v.type != want:
        raise c.error(f"@map: {'the output' if output else 'an input'} register is a "
                      f"{want}, got a {v.type}", pos)
    return rec


def op_config_of_dsrs(c, node, records, config):
    """The config of an operation: its own, or that of the `.async` loads of its DSRs."""
    loaded = {r.config for r in records if r.config is not None}
    if not loaded:
        return config
    if config is not None:
        raise c.error(f"@{node.name}: a DSR operand was loaded with .async; its options "
                      "are those of @load_to_dsr, not the operation's", node.pos)
    if len(loaded) > 1:
        raise c.error(f"@{node.name}: its DSR operands were loaded with different .async "
                      "options", node.pos)
    return loaded.pop()
