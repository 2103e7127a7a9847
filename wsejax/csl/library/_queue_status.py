"""`<tile_config>.input_queue_status` / `output_queue_status`: the occupancy of the PE's queues.

`get()` reads, at the moment of the call, which of the PE's input (output) queues are empty
and which are full, as a `status` struct of two u8 bitmasks (bit i: queue i). A queue holds
the wavelets of the color it is bound to (`wsejax.csl.queue_status`) that wait in the PE's
inbox (outbox) of that color: empty where it holds none, full where it holds as many as the
fabric queues' capacity (the engine's and the reference's `queue_capacity`). A queue bound
to no color reads as empty and never full. `is_full(s, q)`, `is_empty(s, q)`, `all_full(s)`,
`all_empty(s)`, `none_full(s)` and `none_empty(s)` test a status; "all" counts every queue
the architecture has (`wsejax.hardware.QUEUE_COUNTS`).

`get_raw()` is refused: the bit layout of the status register is not documented.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.queue_status import READS_STATUS
from wsejax.csl.values import QueueVal, RtHandleVal, RVal, StructRef, StructT, StructVal, describe
from wsejax.hardware import QUEUE_COUNTS
from wsejax.types import DType

__all__ = ["STATUS_T", "queue_status_module"]

u8 = DType.u8
# one `status` type per queue kind: a status of the input queues is not one of the output's
STATUS_T = {kind: StructT((("empty", u8, None), ("full", u8, None)), "status")
            for kind in ("input", "output")}

RAW_WHY = ("the bit layout of the queue status register is not documented (use get(), whose "
           "empty and full masks are)")


def _status_get(kind: str):
    def impl(c, node, env):
        call_args(c, node, env, 0)
        fn = c.need_fn(env, node.pos, f"{kind}_queue_status.get()")
        pe = env.module.pe
        setattr(pe, READS_STATUS, True)
        fields = {}
        # read both masks now: later uses of the status see this moment's occupancy
        for name in ("empty", "full"):
            ident = pe.fresh(f"{kind}_status.{name}.")
            fn.emit(ir.LocalAssign(ident, ir.QueueStatus(kind, name == "full")))
            fields[name] = RVal(ir.Local(ident, u8), u8)
        return StructVal(fields, STATUS_T[kind])

    return native_fn("get", impl)


def _mask(c, s, name: str, kind: str, node, what: str) -> ir.Expr:
    """The u8 expression of field `name` of status `s`."""
    if isinstance(s, StructRef) and s.stype is STATUS_T[kind]:
        return c.read_slot(c.struct_member(s, name, node.pos)).expr
    if isinstance(s, StructVal) and set(s.fields) == {"empty", "full"} and \
            s.stype in (None, STATUS_T[kind]):
        return c.to_expr(s.fields[name], u8, node.args[0].pos, f"{what}'s status.{name}")
    raise c.error(f"{what} takes a {kind}_queue_status.status (from get()), got {describe(s)}",
                  node.args[0].pos)


def _queue_bit(c, q, kind: str, node, what: str) -> ir.Expr:
    """A u16 expression of the number of queue `q`, checked against the architecture."""
    if isinstance(q, RtHandleVal) and q.kind == f"{kind}_queue":
        return q.expr
    if not isinstance(q, QueueVal) or q.kind != kind:
        raise c.error(f"{what} takes an {kind} queue (@get_{kind}_queue(n)), got "
                      f"{describe(q)}", node.args[1].pos)
    count = QUEUE_COUNTS[c.arch][kind]
    if not 0 <= q.id < count:
        raise c.error(f"{what}: {kind} queue {q.id} does not exist on {c.arch} (0 to "
                      f"{count - 1})", node.args[1].pos)
    return ir.Const(q.id, DType.u16)


def _test(kind: str, name: str, field: str):
    """`is_full` / `is_empty`: is queue q's bit of the mask set?"""
    what = f"{kind}_queue_status.{name}"

    def impl(c, node, env):
        s, q = call_args(c, node, env, 2)
        mask = ir.Cast(_mask(c, s, field, kind, node, what), DType.u16)
        shifted = ir.Bin(">>", mask, _queue_bit(c, q, kind, node, what), DType.u16)
        bit = ir.Bin("&", shifted, ir.Const(1, DType.u16), DType.u16)
        return RVal(ir.Bin("!=", bit, ir.Const(0, DType.u16), DType.bool_), DType.bool_)

    return native_fn(name, impl)


def _every(kind: str, name: str, field: str, every: bool):
    """`all_*` (every queue's bit set) and `none_*` (no queue's bit set)."""
    what = f"{kind}_queue_status.{name}"

    def impl(c, node, env):
        (s,) = call_args(c, node, env, 1)
        all_bits = (1 << QUEUE_COUNTS[c.arch][kind]) - 1
        bits = ir.Bin("&", _mask(c, s, field, kind, node, what), ir.Const(all_bits, u8), u8)
        want = ir.Const(all_bits if every else 0, u8)
        return RVal(ir.Bin("==", bits, want, DType.bool_), DType.bool_)

    return native_fn(name, impl)


def queue_status_module(kind: str) -> NativeModule:
    members = {
        "status": STATUS_T[kind],
        "get": _status_get(kind),
        "is_full": _test(kind, "is_full", "full"),
        "is_empty": _test(kind, "is_empty", "empty"),
        "all_full": _every(kind, "all_full", "full", True),
        "all_empty": _every(kind, "all_empty", "empty", True),
        "none_full": _every(kind, "none_full", "full", False),
        "none_empty": _every(kind, "none_empty", "empty", False),
    }
    return NativeModule(f"tile_config/{kind}_queue_status", members, why={"get_raw": RAW_WHY})
