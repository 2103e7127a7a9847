"""`<control>`: control wavelet payloads in the SDK's bit layout."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    VOID,
    ArrayVal,
    CNum,
    EnumT,
    ObjArrayVal,
    RVal,
    TaskIdVal,
    TupleVal,
    describe,
)
from wsejax.fabric import MAX_COMMANDS, NO_ENTRYPOINT, control_payload
from wsejax.types import DType

OPCODES = (("NOP", 0), ("SWITCH_ADV", 1), ("SWITCH_RST", 2), ("TEARDOWN", 3))


def _entrypoint(c, v, node) -> int:
    if v is None or v is VOID:
        return NO_ENTRYPOINT
    if isinstance(v, TaskIdVal) and v.kind == "control":
        return v.id
    raise c.error(f"a control payload's entrypoint is a control task ID "
                  f"(@get_control_task_id(n)) or {{}}, got {describe(v)}", node.pos)


def _opcode(c, v, node, opcode: EnumT) -> int:
    if isinstance(v, RVal):
        raise c.error("a control payload's opcode must be comptime-known", node.pos)
    return c.coerce(v, opcode, node.pos, "a <control> opcode").value


def _flag(c, v, node) -> int:
    if not isinstance(v, bool):
        raise c.error(f"expected a comptime bool, got {describe(v)}", node.pos)
    return int(v)


def _items(c, v, node, n: int) -> list:
    seq = v.items if isinstance(v, TupleVal) else (
        v.values.reshape(-1).tolist() if isinstance(v, (ArrayVal, ObjArrayVal)) else None)
    if seq is None or len(seq) < n:
        raise c.error(f"expected an array of at least {n} values, got {describe(v)}", node.pos)
    return list(seq[:n])


def _payload(bits: int, runtime=None):
    if runtime is None:
        return CNum(bits, DType.u32)
    return RVal(ir.Bin("|", ir.Const(bits, DType.u32), runtime, DType.u32), DType.u32)


def control_module(c, params, pos):
    opcode = EnumT(object(), OPCODES, "opcode")

    def task_payload(c2, node, env):
        (ep,) = call_args(c2, node, env, 1)
        return _payload(control_payload(_entrypoint(c2, ep, node)))

    def single_payload(c2, node, env):
        cmd, ignore, ep, data = call_args(c2, node, env, 4)
        bits = control_payload(_entrypoint(c2, ep, node),
                               [(_opcode(c2, cmd, node, opcode), _flag(c2, ignore, node))])
        if isinstance(data, RVal):
            return _payload(bits, ir.Cast(c2.to_expr(data, DType.u16, node.pos), DType.u32))
        return _payload(bits | c2.comptime_int(c2.coerce(data, DType.u16, node.pos,
                                                         "the payload's data"), node.pos))

    def full_payload(c2, node, env):
        n, cmds, ignores, rest, ep = call_args(c2, node, env, 5)
        n = c2.comptime_int(n, node.pos)
        if not 0 <= n <= MAX_COMMANDS:
            raise c2.error(f"a control payload holds 0 to {MAX_COMMANDS} commands, got {n}",
                           node.pos)
        cmds, ignores = _items(c2, cmds, node, n), _items(c2, ignores, node, n)
        return _payload(control_payload(
            _entrypoint(c2, ep, node), [(_opcode(c2, a, node, opcode), _flag(c2, b, node))
                                        for a, b in zip(cmds, ignores)], _flag(c2, rest, node)))

    return NativeModule("control", {
        "MAX_CMDS": CNum(MAX_COMMANDS, DType.u16),
        "opcode": opcode,
        "encode_control_task_payload": native_fn("encode_control_task_payload", task_payload),
        "encode_single_payload": native_fn("encode_single_payload", single_payload),
        "encode_payload": native_fn("encode_payload", full_payload),
    })
