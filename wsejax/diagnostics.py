"""The texts of device faults and host diagnostics, shared by the engine and the reference.

Contract. Both interpreters report the same faults and the same host errors, word for word
(tests match them, and check mode compares the two). Each text is written here once, as a
function of plain data: strings, ints, lists of `(x, y)` PE coordinates and `PeSummary`
records. Nothing here knows JAX or either interpreter's state; each caller gathers the data
from its own state and passes it in.

    >>> str(device_fault(nowhere_to_go(3), 2, [(0, 1)]))[:60]
    'device fault: a wavelet on color 3 has nowhere to go (no rou'
"""

from __future__ import annotations

from typing import NamedTuple

from wsejax.errors import DeadlockError, FabricFault

__all__ = ["DEFAULT_LOOP_LIMIT", "MAX_LISTED_PES", "PRNG_SEED", "PeSummary", "assertion_failed",
           "bad_pointer",
           "command_stuck",
           "config_space_full",
           "device_fault", "dsd_out_of_range", "fabric_busy", "fifo_fault", "fp_exception",
           "half_an_element",
           "index_out_of_range", "loop_ran_past", "map_writes_memory", "microthread_clash",
           "nowhere_to_go", "read_before_assigned", "recursion_too_deep", "started_while_running",
           "stream_short", "stuck_lines", "unbound_control_task",
           "collective_buffer", "collective_busy", "collective_mismatch", "collective_root",
           "route_edit_color"]

DEFAULT_LOOP_LIMIT = 1 << 22         # iterations of one loop nest, and ticks of one command
PRNG_SEED = 0xDEADBEEF & 0x7FFFFF    # the documented initial state, in the LFSR's 23 bits
MAX_LISTED_PES = 8                   # PEs a deadlock report describes one by one

UNBLOCK_HINT = "each PE must call sys_mod.unblock_cmd_stream() once its work is done"


# ------------------------------------------------------------------------------------------------
# Device faults (recorded per PE, reported by the host as `FabricFault`)


def fabric_busy(limit: int) -> str:
    """The fault of the PEs still busy when a command has run `limit` ticks."""
    return (f"the fabric was still busy after {limit} ticks (a task that keeps re-activating "
            "itself, or an endless loop?)")


def nowhere_to_go(color: int) -> str:
    """The fault of a PE sending on a color no route leads from its ramp to a ramp."""
    return (f"a wavelet on color {color} has nowhere to go (no route from this PE's ramp "
            "reaches a ramp)")


def unbound_control_task(color: int) -> str:
    """The fault of a control wavelet naming a control task ID the PE binds nothing to."""
    return (f"a control wavelet on color {color} names a control task ID that no control task "
            "of this PE is bound to")


def loop_ran_past(fn: str, kind: str, limit: int, outer: bool) -> str:
    """The fault of a loop past its budget. A loop nest (a `for` or `while`, the loops inside
    it and those of the functions it calls) runs at most `limit` iterations in all; the loop
    that would start one more faults its PE, in function `fn`."""
    where = "" if outer else " in all with the loops around it"
    return f"{fn}: a {kind} loop ran past {limit} iterations{where}"


def fifo_fault(what: str, fifo: str, state: str) -> str:
    """The fault of op `what` finding FIFO `fifo` `state` ("empty" or "full") where the
    FIFO's action for it is `fault` (spec 7.5)."""
    action = "empty_action" if state == "empty" else "full_action"
    return f"{what}: FIFO '{fifo}' is {state} and its .{action} is .fault"


def started_while_running(what: str) -> str:
    """The fault of op `what` started again while its own earlier start still runs."""
    return f"{what}: started while the same operation still runs on its microthread"


def microthread_clash(what: str, other: str, ut: int | None) -> str:
    """The fault text of op `what` starting on a microthread its `.ut_id` names (number `ut`;
    None where the number is known only at run time) while op `other` still runs on it."""
    on = "its microthread" if ut is None else f"microthread {ut}"
    return f"{what}: started on {on} while {other} still runs on it"


def assertion_failed(where: str) -> str:
    """The fault of a runtime `@assert` whose condition is false; `where` is its
    `file:line:col`."""
    return f"@assert failed at {where}"


def fp_exception(name: str, what: str) -> str:
    """The fault of floating-point exception `name` (`FP_INVALID`, ...) raised, while the PE's
    mask unmasks it, by operation `what` (`f32 '/' in main`, `@fadds in main`)."""
    return (f"{what} raised floating-point exception {name}, which the PE's exception mask "
            "unmasks (<tile_config>.exceptions.set_exception_mask)")


def index_out_of_range(verb: str, symbol: str) -> str:
    """The fault of an array index out of range; `verb` is "reading" or "writing"."""
    return f"index out of range {verb} '{symbol}'"


def dsd_out_of_range(what: str, symbol: str) -> str:
    """The fault of a DSD element address outside the array `symbol`."""
    return f"{what}: DSD address out of range of '{symbol}'"


# ------------------------------------------------------------------------------------------------
# Program errors both interpreters raise while running a body


def read_before_assigned(fn: str, name: str) -> str:
    return f"{fn}: local '{name}' is read before it is assigned"


def recursion_too_deep(fn: str, depth: int) -> str:
    """The fault of a call that would hold more than `depth` activations of a cycle of
    recursive functions at once on a PE (`ir_calls.MAX_RECURSION_DEPTH`)."""
    return (f"{fn}: recursion deeper than {depth} calls (the call stack of a PE holds at most "
            f"{depth} activations of a recursive function)")


def config_space_full(entries: int) -> str:
    return (f"@set_config: the PE has written {entries} other config addresses, the most "
            "wsejax keeps per PE")


def map_writes_memory(fn: str) -> str:
    return f"{fn}: a @map callback may not write memory or run DSD operations"


def half_an_element(delta, dtype, bits: int) -> str:
    """`increment_dsd_offset` by `delta` elements of `dtype` on a DSD of `bits`-bit elements,
    where that is not a whole number of them."""
    return (f"increment_dsd_offset by {delta} {dtype} elements moves a {bits}-bit DSD by half "
            "an element")


# ------------------------------------------------------------------------------------------------
# Host errors after a command


class PeSummary(NamedTuple):
    """What one PE is doing when a command cannot finish (for `stuck_lines`)."""

    x: int
    y: int
    active: list          # task IDs activated, ascending
    blocked: list         # task IDs blocked, ascending
    blocked_uts: list     # microthread IDs blocked, ascending
    waits_in: str | None  # the function its main thread waits in, or None
    queues: list          # (color, "in" | "out", wavelets) of its non-empty queues
    collectives: tuple = ()   # (kind, axis) of its pending <collectives_2d> operations


def device_fault(text: str, kinds: int, pes: list) -> FabricFault:
    """The error of a command that left faulted PEs: `text` the first kind of fault, `kinds`
    how many kinds there are, `pes` the `(x, y)` of the PEs with the first."""
    others = "" if kinds == 1 else f" (and {kinds - 1} other kinds of fault)"
    return FabricFault(f"device fault: {text}{others}", pes)


def stuck_lines(summaries: list, total: int) -> list[str]:
    """One line per PE of `summaries` (the first `MAX_LISTED_PES` of `total` stuck PEs)."""
    lines = []
    for pe in summaries[:MAX_LISTED_PES]:
        text = (f"  PE ({pe.x}, {pe.y}): active task IDs {pe.active or 'none'}, blocked task "
                f"IDs {pe.blocked or 'none'}")
        if pe.blocked_uts:
            text += f", blocked microthreads {pe.blocked_uts}"
        if pe.waits_in is not None:
            text += f"; its main thread waits in {pe.waits_in}"
        for kind, axis in pe.collectives:
            text += (f"; its <collectives_2d> {kind} waits for the other PEs of its "
                     f"{_line(axis)}")
        queues = [f"color {c} {io}: {n}" for c, io, n in pe.queues]
        text += f"; queues: {', '.join(queues) if queues else 'all empty'}"
        lines.append(text)
    if total > MAX_LISTED_PES:
        lines.append(f"  ... and {total - MAX_LISTED_PES} more")
    return lines


def command_stuck(command: str, pes: list, lines: list[str]) -> DeadlockError:
    """The error of a command whose PEs `pes` never unblocked the command stream; `lines`
    from `stuck_lines`."""
    return DeadlockError(
        f"{command} cannot finish: {len(pes)} PE(s) never called unblock_cmd_stream(), and "
        "nothing on the fabric can make progress", pes, "\n".join(lines + [UNBLOCK_HINT]))


def stream_short(command: str, short: list, verb: str, lines: list[str]) -> DeadlockError:
    """The error of a streaming memcpy whose PEs stopped short: `short` lists `(x, y, done,
    total)` per PE, `verb` "took" (H2D) or "sent" (D2H), `lines` from `stuck_lines`."""
    each = [f"  PE ({x}, {y}): {verb} {done} of {total} wavelets"
            for x, y, done, total in short[:MAX_LISTED_PES]]
    return DeadlockError(
        f"{command} cannot finish: {len(short)} PE(s) stopped short, and nothing on the "
        "fabric can make progress", [(x, y) for x, y, _, _ in short], "\n".join(each + lines))


def bad_pointer(doing: str, dtype: str, width: int) -> str:
    """The fault of a load or store (`doing` "reading" / "writing") of a `dtype` element
    (`width` bytes) through a runtime pointer whose address is in no array it may access, or
    not a multiple of the width."""
    return (f"{doing} {dtype} through a pointer: its address is not inside an array, or not a "
            f"multiple of {width} bytes")


# ------------------------------------------------------------------------------------------------
# <collectives_2d> (`ir.Collective`)


def _line(axis: str) -> str:
    return "row" if axis == "x" else "column"


def collective_busy(kind: str, axis: str) -> str:
    """A collective issued while the PE's previous one on that axis is still pending."""
    return (f"<collectives_2d> {kind} on the {axis} axis issued before the PE's previous "
            "collective on that axis completed")


def collective_root(kind: str, axis: str) -> str:
    return f"<collectives_2d> {kind}: the root is not a PE of the {_line(axis)}"


def collective_buffer(kind: str) -> str:
    return (f"<collectives_2d> {kind}: a buffer is not inside one array of 32-bit elements, "
            "or too short for the count")


def collective_mismatch(axis: str) -> str:
    """Every PE of a line issued a collective, but not the same one."""
    return (f"<collectives_2d>: the PEs of a {_line(axis)} issued different collectives "
            "(operation, root or count)")


# ------------------------------------------------------------------------------------------------
# `<tile_config>.color_config` of a color known only at run time

ROUTE_EDIT_CALLS = {"reset": "reset_routes", "set": "set_io_direction",
                    "clear": "clear_io_direction", "toggle": "toggle_io_direction"}


def route_edit_color(op: str) -> str:
    return (f"color_config.{ROUTE_EDIT_CALLS[op]}: the color given at run time is not one "
            "the program routes (a color known only at run time may name only a color that "
            "the layout or a PE program configures, or one with switches or teardown)")
