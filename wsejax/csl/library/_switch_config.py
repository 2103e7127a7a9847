"""`<tile_config>.switch_config`: a PE's program rewrites the switch state of a color at its own
router (spec 6.2, 6.4, 11).

Members: the enums `pop_mode` (NO_POP, ALWAYS_POP, POP_ON_ADVANCE, CLEAR_MASK),
`switch_status` (CLEAR_CURRENT_POS), `switch_pos` (POS1, POS2, POS3), `switch_select` (INPUT,
OUTPUT) and `ring_mode` (NO_RING_MODE, RING_MODE); `get_switch_config_addr(c, setting_ty)`,
`get_color_config_addr(c)`, `clear_current_position(c)`, `set_current_switch_position(c,
posn)`, `set_ring_mode(c, mode)`, `set_pop_mode(c, mode)`,
`set_invalid_for_all_switch_positions(c)`, `set_switch_pos(pos, c, dir, switch_kind)`,
`set_rx_switch_posN(c, dir)` / `set_tx_switch_posN(c, dir)` (N = 1, 2, 3) and, on wse3,
`set_rxtx_switch_pos(pos, c, dir_rx, dir_tx)` / `set_rxtx_switch_posN(c, dir_rx, dir_tx)`,
where `c` is a color or an address from `get_switch_config_addr` / `get_color_config_addr`.

Policy. As for `color_config` (`wsejax.csl.library._color_config`): the color must be known at
compile time (so are the address, the position, the switch kind and the modes; `posn` may be a
runtime value); any call naming a color makes it routed hop by hop, and the call
(`ir.SwitchEdit`) changes the calling PE's router only, from the moment it runs, teardown or
not. Setting a position's rx or tx makes that position valid; its other side is what it held
(for a position never configured, position 0's ports at load time). Making the positions
invalid gives them position 0's ports of that moment. A current position past 3 faults the
PE. On wse3 only the colors of `wsejax.frontend.switches.WSE3_SWITCH_COLORS` have switches.
`set_pop_mode(c, .CLEAR_MASK)` is refused: CLEAR_MASK is the mask the SDK clears the pop mode
with, and what setting it as a mode does is not documented.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsejax import ir
from wsejax.csl.builtins._registry import rule
from wsejax.csl.builtins.teardown import _color
from wsejax.csl.library._color_config import ColorConfigAddr
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import EnumLitVal, EnumT, EnumVal, RVal, describe
from wsejax.frontend.switches import check_switch_color
from wsejax.routes import DIRECTIONS
from wsejax.types import DType

__all__ = ["SwitchConfigAddr", "switch_config_module"]

POP_MODE = EnumT(DType.u16, (("NO_POP", 0), ("ALWAYS_POP", 1), ("POP_ON_ADVANCE", 2),
                             ("CLEAR_MASK", 3)), "pop_mode")
SWITCH_STATUS = EnumT(DType.u16, (("CLEAR_CURRENT_POS", 0),), "switch_status")
SWITCH_POS = EnumT(DType.u16, (("POS1", 1), ("POS2", 2), ("POS3", 3)), "switch_pos")
SWITCH_SELECT = EnumT(DType.u16, (("INPUT", 0), ("OUTPUT", 1)), "switch_select")
RING_MODE = EnumT(DType.u16, (("NO_RING_MODE", 0), ("RING_MODE", 1)), "ring_mode")
SETTING_TYPES = (POP_MODE, SWITCH_STATUS, SWITCH_POS, SWITCH_SELECT, RING_MODE)


@dataclass(frozen=True)
class SwitchConfigAddr:
    """`get_switch_config_addr(color, setting_ty)` of a comptime color: stands for that
    setting of its configuration."""

    color: int
    setting: str

    def freeze(self):
        return ("switch_config_addr", self.color, self.setting)


def _target(c, v, node, what: str) -> int:
    """The comptime color a call names (a color or an address of its configuration), checked
    against the colors that have switches."""
    if isinstance(v, (ColorConfigAddr, SwitchConfigAddr)):
        color = v.color
    else:
        color = _color(c, v, node, f"switch_config.{what}")
    rule(c, node, check_switch_color, f"switch_config.{what}", c.arch, color, pos=node.pos)
    return color


def _member(c, v, etype: EnumT, node, what: str, k: int) -> int:
    """The value of a comptime member of enum `etype` (argument k)."""
    if isinstance(v, EnumLitVal) and v.name in dict(etype.members):
        return dict(etype.members)[v.name]
    if isinstance(v, EnumVal) and v.etype is etype:
        return v.value
    names = ", ".join(f".{n}" for n, _ in etype.members)
    raise c.error(f"switch_config.{what} takes a switch_config.{etype.name} known at compile "
                  f"time ({names}), got {describe(v)}", node.args[k].pos)


def _direction(c, v, node, what: str, k: int) -> int:
    name = getattr(v, "name", None)
    if name not in DIRECTIONS or isinstance(v, RVal):
        raise c.error(f"switch_config.{what} takes a direction known at compile time (NORTH, "
                      f"SOUTH, EAST, WEST or RAMP), got {describe(v)}", node.args[k].pos)
    return 1 << DIRECTIONS.index(name)


def _emit(c, node, env, edit: ir.SwitchEdit, what: str) -> None:
    fn = c.need_fn(env, node.pos, f"switch_config.{what}()")
    env.module.pe.teardown_colors.add(edit.color)
    fn.emit(edit)


def _wse3_only(c, node, what: str) -> None:
    if c.arch != "wse3":
        raise c.error(f"switch_config.{what} exists on wse3 and beyond only (this program is "
                      f"compiled for {c.arch})", node.pos)


def _position_fns() -> dict:
    """`set_rx_switch_posN`, `set_tx_switch_posN`, `set_rxtx_switch_posN` (N = 1, 2, 3)."""
    out = {}
    for n in (1, 2, 3):
        for side in ("rx", "tx"):
            what = f"set_{side}_switch_pos{n}"

            def impl(c, node, env, n=n, side=side, what=what):
                target, d = call_args(c, node, env, 2)
                color = _target(c, target, node, what)
                mask = _direction(c, d, node, what, 1)
                _emit(c, node, env, ir.SwitchEdit(color, "port", n, **{side: mask}), what)

            out[what] = native_fn(what, impl)
        what = f"set_rxtx_switch_pos{n}"

        def both(c, node, env, n=n, what=what):
            _wse3_only(c, node, what)
            target, drx, dtx = call_args(c, node, env, 3)
            color = _target(c, target, node, what)
            edit = ir.SwitchEdit(color, "port", n, _direction(c, drx, node, what, 1),
                                 _direction(c, dtx, node, what, 2))
            _emit(c, node, env, edit, what)

        out[what] = native_fn(what, both)
    return out


def _set_switch_pos(c, node, env):
    what = "set_switch_pos"
    pos, target, d, kind = call_args(c, node, env, 4)
    n = _member(c, pos, SWITCH_POS, node, what, 0)
    color = _target(c, target, node, what)
    mask = _direction(c, d, node, what, 2)
    side = "rx" if _member(c, kind, SWITCH_SELECT, node, what, 3) == 0 else "tx"
    _emit(c, node, env, ir.SwitchEdit(color, "port", n, **{side: mask}), what)


def _set_rxtx_switch_pos(c, node, env):
    what = "set_rxtx_switch_pos"
    _wse3_only(c, node, what)
    pos, target, drx, dtx = call_args(c, node, env, 4)
    n = _member(c, pos, SWITCH_POS, node, what, 0)
    color = _target(c, target, node, what)
    edit = ir.SwitchEdit(color, "port", n, _direction(c, drx, node, what, 2),
                         _direction(c, dtx, node, what, 3))
    _emit(c, node, env, edit, what)


def _set_current(c, node, env):
    what = "set_current_switch_position"
    target, posn = call_args(c, node, env, 2)
    color = _target(c, target, node, what)
    if not isinstance(posn, RVal):
        n = c.comptime_int(posn, node.args[1].pos)
        if not 0 <= n <= 3:
            raise c.error(f"switch_config.{what}: position {n} does not exist (0 to 3)",
                          node.args[1].pos)
    value = c.to_expr(posn, DType.u16, node.args[1].pos, f"switch_config.{what}'s posn")
    _emit(c, node, env, ir.SwitchEdit(color, "position", value), what)


def _clear_current(c, node, env):
    what = "clear_current_position"
    (target,) = call_args(c, node, env, 1)
    color = _target(c, target, node, what)
    _emit(c, node, env, ir.SwitchEdit(color, "position", ir.Const(0, DType.u16)), what)


def _set_invalid(c, node, env):
    what = "set_invalid_for_all_switch_positions"
    (target,) = call_args(c, node, env, 1)
    _emit(c, node, env, ir.SwitchEdit(_target(c, target, node, what), "invalid"), what)


def _set_ring_mode(c, node, env):
    what = "set_ring_mode"
    target, mode = call_args(c, node, env, 2)
    color = _target(c, target, node, what)
    ring = _member(c, mode, RING_MODE, node, what, 1) == 1
    _emit(c, node, env, ir.SwitchEdit(color, "ring", ring), what)


def _set_pop_mode(c, node, env):
    what = "set_pop_mode"
    target, mode = call_args(c, node, env, 2)
    color = _target(c, target, node, what)
    n = _member(c, mode, POP_MODE, node, what, 1)
    if n == 3:
        raise c.error("switch_config.set_pop_mode(.CLEAR_MASK) is not supported: CLEAR_MASK is "
                      "the mask the pop mode is cleared with, and what setting it as a mode "
                      "does is not documented", node.args[1].pos)
    _emit(c, node, env, ir.SwitchEdit(color, "pop", n), what)


def _switch_addr(c, node, env):
    target, setting = call_args(c, node, env, 2)
    if setting not in SETTING_TYPES:
        raise c.error("switch_config.get_switch_config_addr takes a setting type "
                      "(switch_config.pop_mode, .switch_status, .switch_pos, .switch_select or "
                      f".ring_mode), got {describe(setting)}", node.args[1].pos)
    color = _target(c, target, node, "get_switch_config_addr")
    return SwitchConfigAddr(color, setting.name)


def _color_addr(c, node, env):
    (target,) = call_args(c, node, env, 1)
    return ColorConfigAddr(_target(c, target, node, "get_color_config_addr"))


def switch_config_module() -> NativeModule:
    return NativeModule("tile_config/switch_config", {
        "pop_mode": POP_MODE,
        "switch_status": SWITCH_STATUS,
        "switch_pos": SWITCH_POS,
        "switch_select": SWITCH_SELECT,
        "ring_mode": RING_MODE,
        "get_switch_config_addr": native_fn("get_switch_config_addr", _switch_addr),
        "get_color_config_addr": native_fn("get_color_config_addr", _color_addr),
        "clear_current_position": native_fn("clear_current_position", _clear_current),
        "set_current_switch_position": native_fn("set_current_switch_position", _set_current),
        "set_ring_mode": native_fn("set_ring_mode", _set_ring_mode),
        "set_pop_mode": native_fn("set_pop_mode", _set_pop_mode),
        "set_invalid_for_all_switch_positions": native_fn(
            "set_invalid_for_all_switch_positions", _set_invalid),
        "set_switch_pos": native_fn("set_switch_pos", _set_switch_pos),
        "set_rxtx_switch_pos": native_fn("set_rxtx_switch_pos", _set_rxtx_switch_pos),
        **_position_fns(),
    })
