"""`<dsd_ops>`: type-dispatching wrappers, each of which expands to exactly one DSD builtin.

`mov(T, dst, src, config)`, `convert(Td, Ts, dst, src, config)`, `add(Td, Ts, dst, src0,
src1, config)`, `sub`, `mul`, `neg`, `abs`, `norm`, `scale`, `max` (`(T, ...)`) and
`fmac(Td, Ts, dst, src0, src1, x, config)` pick the builtin by the element type(s) as the
SDK's table does (`@fp16()` is the program's fp16 type) and pass the other arguments on
unchanged; the config must be comptime-known (no runtime `.activate` / `.unblock`).
"""

from __future__ import annotations

from wsejax.csl import ast
from wsejax.csl.builtins import call
from wsejax.csl.library._native import NativeModule, native_fn
from wsejax.csl.values import LocalVar, RVal, StructVal, TupleVal, describe
from wsejax.types import DType

F16, F32, I16, U16, I32, U32 = "fp16", DType.f32, DType.i16, DType.u16, DType.i32, DType.u32

# wrapper -> (number of type arguments, number of operands, {types: builtin})
WRAPPERS = {
    "mov": (1, 2, {(F16,): "fmovh", (F32,): "fmovs", (I16,): "mov16", (U16,): "mov16",
                   (I32,): "mov32", (U32,): "mov32"}),
    "convert": (2, 2, {(F16, F32): "fs2h", (F16, I16): "xp162fh", (F16, F16): "fmovh",
                       (F32, F16): "fh2s", (F32, I16): "xp162fs", (F32, F32): "fmovs",
                       (I16, F16): "fh2xp16", (I16, F32): "fs2xp16", (I16, I16): "mov16"}),
    "add": (2, 3, {(F16, F16): "faddh", (F32, F16): "faddhs", (F32, F32): "fadds",
                   (I16, I16): "add16", (U16, U16): "add16"}),
    "sub": (1, 3, {(F16,): "fsubh", (F32,): "fsubs", (I16,): "sub16"}),
    "mul": (1, 3, {(F16,): "fmulh", (F32,): "fmuls"}),
    "fmac": (2, 4, {(F16, F16): "fmach", (F32, F16): "fmachs", (F32, F32): "fmacs"}),
    "neg": (1, 2, {(F16,): "fnegh", (F32,): "fnegs"}),
    "abs": (1, 2, {(F16,): "fabsh", (F32,): "fabss"}),
    "norm": (1, 2, {(F16,): "fnormh", (F32,): "fnorms"}),
    "scale": (1, 3, {(F16,): "fscaleh", (F32,): "fscales"}),
    "max": (1, 3, {(F16,): "fmaxh", (F32,): "fmaxs"}),
}


def _type_name(t) -> str:
    return "@fp16()" if t == F16 else str(t)


def _wrapper(name: str):
    ntypes, noperands, table = WRAPPERS[name]

    def impl(c, node, env):
        want = ntypes + noperands + 1
        if len(node.args) != want:
            raise c.error(f"dsd_ops.{name} takes {want} arguments, got {len(node.args)}",
                          node.pos)
        types = tuple(c.eval_type(a, env) for a in node.args[:ntypes])
        key = tuple(F16 if t == c.fp16 else t for t in types)
        op = table.get(key)
        if op is None:
            have = ", ".join(_type_name(t) for t in key)
            forms = "; ".join("(" + ", ".join(_type_name(t) for t in k) + ")"
                              for k in table)
            raise c.error(f"dsd_ops.{name} has no operation for ({have}); it takes {forms}",
                          node.args[0].pos)
        config = node.args[-1]
        operands = node.args[ntypes:] if _check_comptime(c, c.ev(config, env), name,
                                                         config.pos) else node.args[ntypes:-1]
        return call(c, ast.Builtin(op, tuple(operands), node.pos), env)
    return impl


def _check_comptime(c, v, name: str, pos) -> bool:
    """Whether config `v` asks for anything (`.{}` does not); CslError unless comptime."""
    if isinstance(v, TupleVal) and not v.items:
        return False
    if not isinstance(v, StructVal):
        raise c.error(f"dsd_ops.{name}: the last argument is the op's config struct "
                      f"(`.{{}}` for none), got {describe(v)}", pos)
    for field, x in v.fields.items():
        if isinstance(x, (RVal, LocalVar)):
            raise c.error(f"dsd_ops.{name}: the config must be comptime-known; .{field} is "
                          f"{describe(x)}", pos)
    return True


def dsd_ops_module(c, params, pos):
    return NativeModule("dsd_ops", {n: native_fn(n, _wrapper(n)) for n in WRAPPERS})
