"""`<memcpy/get_params>` (layout side), `<memcpy/memcpy>` (PE side) and `<layout>`."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins import fabric_dsd
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    ColorVal,
    RVal,
    Special,
    StructVal,
)
from wsejax.types import DType

STREAM_NAMES = tuple(f"MEMCPYH2D_{k}" for k in range(1, 5)) + tuple(
    f"MEMCPYD2H_{k}" for k in range(1, 5))


def memcpy_params_module(c, params, pos):
    for k in ("width", "height"):
        if k not in params:
            raise c.error(f"<memcpy/get_params> needs .{k}", pos)
    known = {"width", "height", "LAUNCH"} | set(STREAM_NAMES)
    extra = set(params) - known
    if extra:
        c.warn(f"<memcpy/get_params>: unknown param '{sorted(extra)[0]}' ignored")
    width = c.comptime_int(params["width"], pos)
    height = c.comptime_int(params["height"], pos)
    fields = {"width": width, "height": height, **_stream_colors(c, params, pos)}
    if "LAUNCH" in params:
        fields["LAUNCH"] = _launch_color(c, params["LAUNCH"], pos)

    def get_params(c2, node, env):
        (x,) = call_args(c2, node, env, 1)
        x = c2.comptime_int(x, node.pos)
        if not 0 <= x < width:
            raise c2.error(f"memcpy.get_params({x}): column outside the width {width}",
                           node.pos)
        # the same value for every column: the emulator's memcpy needs no per-column state
        return StructVal(dict(fields))

    return NativeModule("memcpy/get_params", {"get_params": native_fn("get_params", get_params)})


def _stream_colors(c, params, pos) -> dict:
    """The streaming colors given to `<memcpy/get_params>` (each as given: the SDK's programs
    pass a number or a color; a stream not given is void, `@type_of(p.MEMCPYH2D_2)`),
    recorded in the compiler's `streams`."""
    fields = {}
    seen = {}
    for k in STREAM_NAMES:
        if k not in params:
            continue
        color = c.coerce(params[k], Special("color"), pos, f"<memcpy/get_params> .{k}")
        if color.id in (21, 22, 23):
            raise c.error(f"<memcpy/get_params> .{k}: color {color.id} is memcpy's own (21, 22, "
                          "23); a streaming color is one of 0..20", pos)
        if color.id in seen:
            raise c.error(f"<memcpy/get_params>: color {color.id} is both .{seen[color.id]} and "
                          f".{k}", pos)
        seen[color.id] = k
        kind = "h2d" if "H2D" in k else "d2h"
        if c.streams.get(color.id, (kind,))[0] != kind:
            raise c.error(f"<memcpy/get_params> .{k}: color {color.id} is already a "
                          f"{c.streams[color.id][0].upper()} streaming color", pos)
        c.streams.setdefault(color.id, (kind, pos))
        fields[k] = params[k]
    for k in STREAM_NAMES:
        fields.setdefault(k, None)
    return fields


def _launch_color(c, v, pos) -> ColorVal:
    """`.LAUNCH` (SDK 1.x): the color memcpy launches exported functions on, served by an
    `@rpc` data task in each PE program; recorded in the compiler's `launch`."""
    color = c.coerce(v, Special("color"), pos, "<memcpy/get_params> .LAUNCH")
    if color.id in (21, 22, 23):
        raise c.error(f"<memcpy/get_params> .LAUNCH: color {color.id} is memcpy's own (21, 22, "
                      "23); the launch color is one of 0..20", pos)
    if color.id in c.streams:
        raise c.error(f"<memcpy/get_params>: color {color.id} is both .LAUNCH and a streaming "
                      "color", pos)
    if c.launch is not None and c.launch[0] != color.id:
        raise c.error(f"<memcpy/get_params> .LAUNCH: color {color.id}, but an earlier import "
                      f"gave color {c.launch[0]}", pos)
    c.launch = (color.id, pos)
    return color


def memcpy_module(c, params, pos):
    def unblock(c2, node, env):
        call_args(c2, node, env, 0)
        fn = c2.need_fn(env, node.pos, "unblock_cmd_stream()")
        fn.emit(ir.UnblockCmdStream())
        return None

    def streaming_fabout_dsd(c2, node, env):
        # the module's own: on wse2 the DSD carries the color; on wse3 the color is the one
        # its queue is bound to, which must be the color given
        color, extent, oq = call_args(c2, node, env, 3)
        color = c2.coerce(color, Special("color"), node.args[0].pos,
                          "get_streaming_fabout_dsd's color")
        return fabric_dsd(c2, "fabout_dsd", {"fabric_color": color, "extent": extent,
                                             "output_queue": oq}, node, env)

    members = {"unblock_cmd_stream": native_fn("unblock_cmd_stream", unblock),
               "get_streaming_fabout_dsd": native_fn("get_streaming_fabout_dsd",
                                                     streaming_fabout_dsd)}
    for k in (*STREAM_NAMES, "LAUNCH"):
        if params.get(k) is not None:
            members[k] = params[k]
    return NativeModule("memcpy/memcpy", members)


def layout_module(c, params, pos):
    def coord(table):
        def impl(c2, node, env):
            call_args(c2, node, env, 0)
            c2.need_fn(env, node.pos, f"get_{table}_coord()")
            return RVal(ir.PeValue(table, DType.u16), DType.u16)
        return impl

    return NativeModule("layout", {"get_x_coord": native_fn("get_x_coord", coord("x")),
                                   "get_y_coord": native_fn("get_y_coord", coord("y"))})
