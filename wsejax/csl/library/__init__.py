"""The standard library modules (`@import_module("<name>")`): most implemented natively, a
few (`SOURCES`) written in CSL and shipped with the package (`csl/<name>.csl`), imported as
any CSL file is.

- `<memcpy/get_params>` (layout side): `get_params(x)` gives the params a PE's
  `<memcpy/memcpy>` import takes. The emulator's memcpy needs nothing per column, so every
  column gets the same value and memcpy params never split a tile class.
  Its streaming colors `.MEMCPYH2D_1..4` / `.MEMCPYD2H_1..4` become the Program's `streams`
  (memcpy routes them).
- `<memcpy/memcpy>` (PE side): `unblock_cmd_stream()`; `get_streaming_fabout_dsd(color,
  extent, output_queue)`, a fabout_dsd on that color through that queue; the streaming colors
  `MEMCPYH2D_1..4`, `MEMCPYD2H_1..4`, each as it was given to `get_params` (a color, or a
  number that the program turns into one with `@get_color(@bitcast(u16, ...))`); in the params
  struct a stream not given is void.
- `<layout>`: `get_x_coord()`, `get_y_coord()`.
- `<empty>`: no members, so that an import can be conditional.
- `<math>`: PI, E, infinities, NaN; abs, min, max, sign, floor, ceil, sqrt, exp, log, sin, cos,
  tanh, pow, inv, invsqrt, fscale, isNaN, isInf, isFinite, isSignaling, signbit, and `_f16` / `_f32`
  variants. Comptime arguments fold; runtime ones become intrinsics.
- `<time>`: `enable_tsc`, `disable_tsc`, `reset_tsc_counter`, `get_timestamp(*[3]u16)`,
  `tsc_size_words`. The counter is the PE's virtual clock (`cycles` in the state: one cycle
  per statement and per DSD element), 32 bits wide, read as three little-endian u16 words.
- `<random>`: `set_global_prng_seed`, `random16`-based `random_f32`, `random_f16`,
  `random_pow_u32`, `random_normal_f32`. The generator is the documented 23-bit LFSR
  (x^23 + x^18 + 1, 128 steps per draw, seeded with 0xdeadbeef's low 23 bits) in the usual
  Fibonacci form (shift right, the new top bit is bit 0 ^ bit 5), a draw its low 16 bits; a
  u32 is two draws, the first the low half, and a float in [lo, hi) takes that u32's top 24
  bits. The hardware's shift direction and the library's mapping are not documented, so the
  bits may differ from the hardware's.
- `<tile_config>`: `input_queue_config.encode_input_queue(queue_id, color, filter_enable)`
  and `output_queue_config.encode_output_queue(queue_id, color)` bind a queue to a color from
  then on (the engine keeps each PE's binding; a queue bound at run time takes one of the colors
  the program names for it, or, for a runtime color, of the colors its PE program configures);
  `queue_flush.exit(q)` resets the state `@queue_flush(q)` left; constants `target_name`,
  `word_size` (16) and `reg_type` (u16); `exceptions`, the exception mask register
  (`_exceptions`: an unmasked floating-point exception faults the PE, `wsejax.fpexc`). Every
  other member is reported as not supported yet.
  `filter_enable` is accepted: a color's filter applies to every wavelet of that color its
  PE receives.
- `<control>`: `encode_control_task_payload`, `encode_single_payload`, `encode_payload`,
  `opcode` (NOP, SWITCH_ADV, SWITCH_RST, TEARDOWN), `MAX_CMDS`: control wavelet payloads in
  the SDK's bit layout (`wsejax.fabric.control_payload`).
- `<timer>` (CSL): `param timerCount`, `timerType = [3]u16`, `start(id)`, `stop(id)`,
  `elapsed(id, *timerType)`: stop - start in `<time>`'s clock, as its three words.
- `<malloc>` (CSL): `param buffer_num_words`, `param asserts_enabled`; `malloc(T, n)` and
  `malloc_i16/u16/f16/i32/u32/f32(n)` hand out runtime pointers into one arena buffer, one
  allocation after another (32-bit types 4-byte aligned); `has_enough_space(T, n)`,
  `has_enough_words(n)`, `has_enough_double_words(n)`; `free()` empties the arena.
- `<complex>`: `complex(T)`, `complex_32`, `complex_64`, `get_complex[_32|_64]`,
  `add_complex`, `subtract_complex`, `multiply_complex` (and `_32` / `_64`), as structs
  `{ real, imag }` held in consts.
- `<directions>`: `rotate_clockwise`, `rotate_counterclockwise`, `flip_vertical`,
  `flip_horizontal`, `flip` of a comptime direction.
- `<dsd_ops>`: `mov`, `convert`, `add`, `sub`, `mul`, `fmac`, `neg`, `abs`, `norm`, `scale`,
  `max`, each one DSD builtin picked by the element type(s); the config must be comptime.
- `<simprint>`: `print_string`, `print_u16/u32_decimal/hex/binary`, `print_f16/f32`, `fmt`,
  `fmt_no_nl`, `fmt_with_coords` (`{d} {X} {b} {f}`); text goes to the host's stdout a line
  at a time, as the PE completes it.
- `<debug>`: `.key` and `.buffer_size` give a trace buffer; `trace_bool/u8/i8/u16/i16/f16/
  u32/i32/f32`, `trace(x)`, `trace_string`, `trace_timestamp` append records the host reads
  with `cerebras.sdk.debug.debug_util` (`wsejax.csl.library._debug`, `wsejax.trace`).
- `<collectives_2d/params>`, `<collectives_2d/pe>`: broadcast, scatter, gather,
  reduce_fadds and reduce_fmax over a row or a column (`wsejax.csl.library._collectives`,
  `ir.Collective`).
"""

from __future__ import annotations

import pathlib

from wsejax.csl.library import (
    _collectives,
    _complex,
    _control,
    _debug,
    _directions,
    _dsd_ops,
    _math,
    _memcpy,
    _random,
    _simprint,
    _tile_config,
    _time,
)
from wsejax.csl.library._native import NativeModule

__all__ = ["MODULES", "NOT_YET", "NativeModule", "SOURCES", "load", "source"]

# the libraries written in CSL: `<name>` is the file `csl/<name>.csl` of this package
SOURCE_DIR = pathlib.Path(__file__).parent / "csl"
SOURCES = ("timer", "malloc")


def source(name: str) -> pathlib.Path | None:
    """The CSL source of library `<name>`, or None for a native one."""
    return SOURCE_DIR / f"{name}.csl" if name in SOURCES else None


def load(c, name: str, params: dict, env, pos) -> NativeModule:
    """The library module `<name>` with `params`, or CslError."""
    maker = MODULES.get(name)
    family = name.split("/")[0]
    if maker is None and family in NOT_YET:
        raise c.error(f"library module <{name}> is not supported yet: {NOT_YET[family]}", pos)
    if maker is None:
        raise c.error(f"library module <{name}> is not available in wsejax (available: "
                      f"{', '.join('<' + m + '>' for m in sorted([*MODULES, *SOURCES]))})",
                      pos)
    if getattr(maker, "takes_env", False):
        return maker(c, params, pos, env)
    return maker(c, params, pos)


# modules the SDK ships that wsejax does not provide, and why (by name, or by the family
# before a "/": `<kernels/...>`)
_UNDOCUMENTED = "its API is not documented, so wsejax cannot emulate it"
NOT_YET: dict = {"kernels": _UNDOCUMENTED, "message_passing": _UNDOCUMENTED}

def _empty_module(c, params, pos) -> NativeModule:
    """`<empty>`: a module with no members on purpose, so that an import can be conditional
    (`@import_module(if (stage == 0) "<empty>" else "cache.csl")`)."""
    return NativeModule("empty", {})


MODULES = {
    "empty": _empty_module,
    "memcpy/get_params": _memcpy.memcpy_params_module,
    "memcpy/memcpy": _memcpy.memcpy_module,
    "layout": _memcpy.layout_module,
    "control": _control.control_module,
    "debug": _debug.debug_module,
    "math": _math.math_module,
    "time": _time.time_module,
    "random": _random.random_module,
    "simprint": _simprint.simprint_module,
    "tile_config": _tile_config.tile_config_module,
    "complex": _complex.complex_module,
    "directions": _directions.directions_module,
    "dsd_ops": _dsd_ops.dsd_ops_module,
    "collectives_2d/params": _collectives.params_module,
    "collectives_2d/pe": _collectives.pe_module,
}
