"""`<tile_config>.filters`: a PE's program sets the state of its counter filters (spec 6.3).

A filter is named by its ID, which `@get_filter_id(color)` gives. The SDK leaves the number
opaque; wsejax numbers a PE's filters by their colors (the filter of color c has ID c), so
`num_filters` is the number of routable colors, 24. `set_counter(id, v)`, `set_active_limit(id,
v)` (the limit the counter wraps at: limit1, or limit2 once a sparse counter has switched to
it) and `set_max_counter(id, v)` set that part of the filter's state on the calling PE, from
the next wavelet it receives on (`ir.FilterEdit`); the filter counts one per wavelet, as its
`.filter` config does. A PE whose color has no filter, or an ID known only at run time that
names no color, changes nothing; a comptime ID that names no color is a located error.

Refused with the reason: the wse3 members (`counter_filter_state`, `set_counter_and_state`,
`set_counter_value`, `get_counter_value`, `set_state`, `get_state`, `set_pass_count`,
`get_pass_count`, `set_drop_count`, `get_drop_count`), whose pass/drop state and counts in
half-wavelets the SDK names without saying how they advance with each wavelet.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import RVal
from wsejax.types import DType

__all__ = ["NUM_FILTERS", "filters_module"]

NUM_FILTERS = 24

WSE3_WHY = ("the SDK names the wse3 pass/drop state and the counts in half-wavelets without "
            "saying how they advance with each wavelet (or how a wavelet's halves are "
            "counted), so wsejax cannot emulate them")
WSE3_MEMBERS = ("counter_filter_state", "set_counter_and_state", "set_counter_value",
                "get_counter_value", "set_state", "get_state", "set_pass_count",
                "get_pass_count", "set_drop_count", "get_drop_count")


def _setter(field: str, name: str):
    what = f"filters.{name}"

    def impl(c, node, env):
        ident, value = call_args(c, node, env, 2)
        if not isinstance(ident, RVal):
            n = c.comptime_int(ident, node.args[0].pos)
            if not 0 <= n < NUM_FILTERS:
                raise c.error(f"{what}: filter ID {n} names no filter (a filter's ID is its "
                              f"color's number, 0 to {NUM_FILTERS - 1}: @get_filter_id(color))",
                              node.args[0].pos)
        fn = c.need_fn(env, node.pos, f"{what}()")
        fn.emit(ir.FilterEdit(field, c.to_expr(ident, DType.u16, node.args[0].pos,
                                               f"{what}'s filter_id"),
                              c.to_expr(value, DType.u16, node.args[1].pos, f"{what}'s value")))

    return native_fn(name, impl)


def filters_module() -> NativeModule:
    return NativeModule("tile_config/filters", {
        "num_filters": NUM_FILTERS,
        "set_counter": _setter("counter", "set_counter"),
        "set_active_limit": _setter("limit", "set_active_limit"),
        "set_max_counter": _setter("max_counter", "set_max_counter"),
    }, why=dict.fromkeys(WSE3_MEMBERS, WSE3_WHY))
