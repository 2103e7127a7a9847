"""`<simprint>`: printing to the host's stdout, a line at a time."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    CNum,
    RVal,
    TupleVal,
    string_text,
)
from wsejax.types import DType, format_value


def simprint_module(c, params, pos):
    enabled = params.get("enable", True)
    if not isinstance(enabled, bool):
        raise c.error("<simprint> .enable must be a bool", pos)
    members = {"print_string": native_fn("print_string", _print_string(enabled)),
               "fmt": native_fn("fmt", _fmt(enabled, True, False)),
               "fmt_no_nl": native_fn("fmt_no_nl", _fmt(enabled, False, False)),
               "fmt_with_coords": native_fn("fmt_with_coords", _fmt(enabled, True, True))}
    for t in (DType.u16, DType.u32):
        for suffix, spec in (("decimal", "d"), ("hex", "X"), ("binary", "b")):
            members[f"print_{t}_{suffix}"] = native_fn(f"print_{t}_{suffix}",
                                                       _print_typed(enabled, t, spec))
    members["print_f16"] = native_fn("print_f16", _print_typed(enabled, DType.f16, "f"))
    members["print_f32"] = native_fn("print_f32", _print_typed(enabled, DType.f32, "f"))
    return NativeModule("simprint", members)


def _print(c, node, env, parts, enabled: bool, coords=False):
    """Emit the printing of a line's parts (nothing where <simprint> is not enabled)."""
    fn = c.need_fn(env, node.pos, "printing")
    if enabled:
        fn.emit(ir.Print(tuple(string_text(p) if isinstance(p, str) else p for p in parts),
                         coords))
    return None


def _print_string(enabled: bool):
    def impl(c, node, env):
        (s_,) = call_args(c, node, env, 1)
        if not isinstance(s_, str):
            raise c.error("print_string takes a comptime string", node.pos)
        return _print(c, node, env, [s_], enabled)
    return impl


def _print_typed(enabled: bool, t: DType, spec: str):
    def impl(c, node, env):
        (v,) = call_args(c, node, env, 1)
        return _print(c, node, env, [_print_part(c, v, spec, node, t)], enabled)
    return impl


def _fmt(enabled: bool, newline: bool, coords: bool):
    def impl(c, node, env):
        vals = [c.ev(a, env) for a in node.args]
        if not vals or not isinstance(vals[0], str):
            raise c.error("fmt takes a comptime format string first", node.pos)
        rest = vals[1:]
        if len(rest) == 1 and isinstance(rest[0], TupleVal):
            rest = list(rest[0].items)
        parts = _format(c, vals[0], rest, node)
        if newline:
            parts.append("\n")
        return _print(c, node, env, _merge(parts), enabled, coords)
    return impl


def _print_part(c, v, spec, node, want=None):
    """A part of a printed line: text, or (runtime expression, format spec)."""
    if isinstance(v, RVal):
        e = v.expr if want is None else c.to_expr(v, want, node.pos)
        return (e, spec)
    if isinstance(v, CNum):
        return format_value(want.np.type(v.value) if want else v.dtype.np.type(v.value), spec,
                            want or v.dtype)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        t = want or (DType.f32 if isinstance(v, float) or spec == "f" else DType.u32)
        return _print_part(c, CNum(c.num_in(v, t, node.pos, "print value"), t), spec, node, t)
    if isinstance(v, str):
        return v
    raise c.error(f"cannot print {type(v).__name__}", node.pos)


def _format(c, fstr: str, args: list, node) -> list:
    """The parts `fmt(fstr, args)` prints: `{{` and `}}` are braces, `{d}`, `{X}`, `{b}`,
    `{f}` take the next argument."""
    parts, k, i = [], 0, 0
    while i < len(fstr):
        if fstr.startswith(("{{", "}}"), i):
            parts.append(fstr[i])
            i += 2
            continue
        if fstr[i] != "{":
            parts.append(fstr[i])
            i += 1
            continue
        end = fstr.find("}", i)
        spec = fstr[i + 1:end] if end > 0 else None
        if spec not in ("d", "X", "b", "f"):
            raise c.error(f"fmt: unknown specifier {fstr[i:end + 1]!r} (use {{d}}, {{X}}, "
                          "{b}, {f})", node.pos)
        if k >= len(args):
            raise c.error("fmt: more specifiers than arguments", node.pos)
        parts.append(_print_part(c, args[k], spec, node))
        k += 1
        i = end + 1
    if k != len(args):
        raise c.error(f"fmt: {len(args)} arguments for {k} specifiers", node.pos)
    return parts


def _merge(parts):
    out = []
    for p in parts:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return out
