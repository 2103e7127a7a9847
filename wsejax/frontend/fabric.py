"""The fabric rules of both front ends: colors, queues and task IDs per architecture, the
config of a DSD operation, fabric DSDs and FIFOs as operands, and `@map`'s operands.

Every function raises `RuleError`; a `what` argument, where given, prefixes the text (the
builtin or option the value was given to)."""

from __future__ import annotations

from dataclasses import dataclass

from wsejax.frontend import RuleError
from wsejax.hardware import (
    MAX_CONTROL_TASK_ID,
    MEMCPY_COLORS,
    MEMCPY_CONTROL_IDS,
    MEMCPY_LOCAL_IDS,
    MEMCPY_QUEUES,
    QUEUE_COUNTS,
)

__all__ = ["DIRECTIONS", "FABRIC_DSDS", "Operand", "check_async", "check_color",
           "check_control_task_id", "check_data_task_source", "check_direction", "check_hooks",
           "check_index", "check_initialised", "check_local_task_id", "check_map_arity",
           "check_on_control", "check_dfilt_async", "check_dfilt_options",
           "check_dfilt_source", "on_control_action",
           "check_map_input", "check_map_operands", "check_map_output", "check_map_result",
           "check_queue", "check_queue_free", "check_stream_operands", "check_unbound",
           "check_fifo_length", "fail", "op_may_end_early"]

FABRIC_DSDS = ("fabin_dsd", "fabout_dsd")
# router ports, as `wsejax.routes.DIRECTIONS` names them
DIRECTIONS = ("NORTH", "SOUTH", "EAST", "WEST", "RAMP")
MAX_COLOR = 23
MAX_LOCAL_TASK_ID = 30


def fail(text: str, what: str | None = None, operand: int | None = None):
    """Raise the RuleError `text`, prefixed by `what: ` if given."""
    raise RuleError(f"{what}: {text}" if what else text, operand)


# ------------------------------------------------------------------------------------------------
# Colors, queues and task IDs


def check_color(n: int, memcpy: bool = True, what: str | None = None) -> int:
    """A color number: 0 to 23, and not one of memcpy's where the program uses memcpy."""
    if not 0 <= n <= MAX_COLOR:
        fail(f"color {n} is out of range (0 to {MAX_COLOR})", what)
    if memcpy and n in MEMCPY_COLORS:
        fail(f"color {n} is reserved by memcpy (colors 21, 22, 23)", what)
    return n


def check_direction(name, what: str, shown: str) -> str:
    """A router port's name (`shown` is how the front end shows the value given)."""
    if name not in DIRECTIONS:
        fail(f"{what} takes directions ({', '.join(DIRECTIONS)}), got {shown}")
    return name


def check_color_swap(what: str, arch: str | None, swap_x, swap_y) -> tuple:
    """A route's `color_swap_x` / `color_swap_y` (spec 6.5): bools; `()` when neither is set,
    else `(swap_x, swap_y)`. The SDK has color swapping on WSE-2 only."""
    for name, v in (("color_swap_x", swap_x), ("color_swap_y", swap_y)):
        if not isinstance(v, bool):
            fail(f"{what}.{name} takes a bool, got {v!r}")
    if not (swap_x or swap_y):
        return ()
    if arch == "wse3":
        fail(f"{what}: color swapping (.color_swap_x, .color_swap_y) is not supported on "
             "wse3; the SDK has it on WSE-2 only")
    return (swap_x, swap_y)


def check_queue(kind: str, n: int, arch: str | None) -> int:
    """Queue `n` of `kind` ("input" or "output") exists on `arch` (None: on either)."""
    counts = QUEUE_COUNTS.get(arch, QUEUE_COUNTS["wse3"])
    count = counts[kind]
    if not 0 <= n < count:
        on = f" on {arch}" if arch else ""
        fail(f"{kind} queue {n} is out of range{on} (0 to {count - 1})")
    return n


def check_queue_free(kind: str, n: int, arch: str, what: str | None = None) -> None:
    """Queue `n` is not one memcpy uses (where the program uses memcpy)."""
    if n in MEMCPY_QUEUES[arch][kind]:
        fail(f"{kind} queue {n} is reserved by memcpy", what)


def check_initialised(what: str, kind: str, n: int, color, hint: str) -> None:
    """A queue that `what` (a data task, a fabric DSD) uses has a color (`color` None: it is
    never initialised); `hint` says how to give it one."""
    if color is None:
        fail(f"{what} uses {kind} queue {n}, which is never initialised: {hint}")


def check_local_task_id(n: int, arch: str | None) -> int:
    """A local task ID: 0 to 30 on wse2, 8 to 30 on wse3 (0 to 7 name data tasks there)."""
    lo = 8 if arch == "wse3" else 0
    if not lo <= n <= MAX_LOCAL_TASK_ID:
        on = f" on {arch}" if arch else ""
        fail(f"local task ID {n} is out of range{on} ({lo} to {MAX_LOCAL_TASK_ID})")
    return n


def check_control_task_id(n: int) -> int:
    if not 0 <= n <= MAX_CONTROL_TASK_ID:
        fail(f"control task ID {n} is out of range (0 to {MAX_CONTROL_TASK_ID})")
    return n


def check_unbound(kind: str, n: int, tasks: dict, memcpy: bool = True) -> None:
    """Task ID `n` of `kind` may be bound: memcpy's own IDs are refused (`RuleError.operand`
    1: the ID is at fault), and an ID is bound once."""
    if memcpy and kind == "local" and n in MEMCPY_LOCAL_IDS:
        fail(f"local task ID {n} is reserved by {MEMCPY_LOCAL_IDS[n]}", None, 1)
    if memcpy and kind == "control" and n in MEMCPY_CONTROL_IDS:
        fail(f"control task ID {n} is reserved by memcpy (IDs {MEMCPY_CONTROL_IDS[0]} to "
             f"{MEMCPY_CONTROL_IDS[-1]})", None, 1)
    if n in tasks:
        fail(f"task ID {n} is bound twice")


def check_data_task_source(arch: str, source: str, n: int, what: str | None = None) -> int:
    """A data task is named by its color on wse2 and by its input queue on wse3; `source` is
    "color" or "input queue"."""
    if source == "color" and arch != "wse2":
        fail(f"on {arch} a data task is named by its input queue, not by color {n}", what)
    if source == "input queue" and arch != "wse3":
        fail(f"on {arch} a data task is named by its color, not by input queue {n}", what)
    return n


# ------------------------------------------------------------------------------------------------
# DSD operations


@dataclass(frozen=True)
class Operand:
    """What the operand rules see of one operand: `kind` is a DSD kind, "fifo" or "value" (a
    scalar or a pointer); whether a fabin_dsd is known to have no input queue (`no_queue`) and
    a DSD known to have wavelet_index_offset (`indexed`). A DSD only known at run time (a
    parameter) is known to have neither."""

    kind: str
    no_queue: bool = False
    indexed: bool = False
    zero: tuple = ()        # a fabout_dsd's `.zero`: the sources (0: first) it zeroes

    @property
    def streams(self) -> bool:
        return self.kind == "fifo" or self.kind in FABRIC_DSDS


def check_stream_operands(op: str, arch: str, operands: list[Operand]) -> None:
    """Fabric DSDs and FIFOs as operands (spec 7.4, 7.5, 7.6): `operands` are the
    destination, then the sources."""
    what = f"@{op}"
    if operands[0].kind == "fabin_dsd":
        fail("a fabin_dsd receives; it cannot be the destination", what, 0)
    for k, o in enumerate(operands[1:], 1):
        if o.kind == "fabout_dsd":
            fail(f"a fabout_dsd sends; it cannot be source {k}", what, k)
    if arch == "wse3" and sum(o.kind == "fabin_dsd" for o in operands) > 1:
        fail("on wse3 an operation takes at most one fabin_dsd", what)
    fifos = [k for k, o in enumerate(operands[1:], 1) if o.kind == "fifo"]
    if len(fifos) > 1:
        fail("at most one source may be a FIFO", what)
    if fifos == [1] and len(operands) > 2:
        fail("a FIFO cannot be the first of two sources", what, 1)
    for k in operands[0].zero:
        if k + 1 >= len(operands) or operands[k + 1].kind not in ("mem1d_dsd", "mem4d_dsd"):
            which = ("first", "second")[k]
            fail(f"the fabout_dsd's .zero names the {which} source, which is not a memory DSD "
                 "here", what, 0)


def check_hooks(op: str, activate: bool, unblock: bool) -> None:
    """An operation's config activates or unblocks one task at most."""
    if activate and unblock:
        fail("an operation takes at most one of activate and unblock", f"@{op}")


def check_on_control(op: str, operands: list[Operand]) -> None:
    """`.on_control` acts on a control wavelet arriving on the operation's fabin input:
    the operation reads a fabin_dsd."""
    if not any(o.kind == "fabin_dsd" for o in operands[1:]):
        fail(".on_control needs a fabin_dsd source: it acts on a control wavelet arriving on "
             "the operation's fabric input", f"@{op}")


def on_control_action(op: str, fields, shown) -> str:
    """`.on_control`'s struct `fields` (a dict): one field, `.terminate = true`,
    `.activate = task` or `.unblock = task`; gives the field's name (`shown(v)`: how the
    front end shows value v)."""
    what = f"@{op}: .on_control"
    form = (f"{what} takes one of .{{ .terminate = true }}, .{{ .activate = task }}, "
            ".{ .unblock = task }")
    if not isinstance(fields, dict) or len(fields) != 1:
        fail(form)
    (action, arg), = fields.items()
    if action == "terminate" and arg is not True:
        fail(f"{what}: .terminate takes true, got {'false' if arg is False else shown(arg)}")
    if action not in ("terminate", "activate", "unblock"):
        fail(form)
    return action


def check_dfilt_source(source: str) -> None:
    """`@dfilt` filters a fabin_dsd (`source`: "fabin_dsd", or how the front end shows what
    it was given)."""
    if source != "fabin_dsd":
        fail(f"@dfilt takes a fabin_dsd or a dsr_src1 loaded with one, got {source}", None, 0)


def check_dfilt_options(options) -> None:
    """`@dfilt`'s config has none of `.index` and `.on_control` (`options`: its names)."""
    for k in ("index", "on_control"):
        if k in options:
            fail(f"option .{k} does not apply to a data filter", "@dfilt")


def check_dfilt_async(async_: bool) -> None:
    """`@dfilt` runs asynchronously."""
    if not async_:
        fail("@dfilt runs asynchronously: give it .{ .async = true } (or load its register "
             "with .async = true)")


def check_async(op: str, operands: list[Operand]) -> None:
    """An asynchronous operation streams: it has a fabric or FIFO operand, and a fabin_dsd
    it reads has an input queue."""
    streams = [o for o in operands if o.streams]
    if not streams:
        fail("an asynchronous operation needs a fabric or FIFO operand (an operation on "
             "memory only is synchronous)", f"@{op}")
    if any(o.kind == "fabin_dsd" and o.no_queue for o in streams):
        fail("an asynchronous operation's fabin_dsd needs an input_queue", f"@{op}")


def check_index(op: str, operands: list[Operand], index: bool) -> None:
    """A DSD with wavelet_index_offset needs the operation's index."""
    if index:
        return
    for k, o in enumerate(operands):
        if o.indexed:
            fail(f"operand {k + 1} uses wavelet_index_offset, so the operation needs an index",
                 f"@{op}")


# ------------------------------------------------------------------------------------------------
# @map


def check_map_arity(callee: str, params: int, given: int) -> None:
    """`@map` takes a callback, one input per parameter of the callback and, maybe, an
    output (`params` None: the callback's parameters are not known yet)."""
    if given < 1:
        fail("@map takes a function and at least one input")
    if params is not None and given not in (params, params + 1):
        fail(f"{callee} takes {params} inputs, got {given} arguments", "@map")


def check_map_operands(inputs: list[Operand], output: Operand | None) -> None:
    """The inputs and output of `@map` (the callback's arguments, then where its results go);
    `RuleError.operand` counts them from 0."""
    for k, o in enumerate(inputs + ([output] if output else [])):
        if o.kind == "fifo":
            fail("@map does not take FIFOs", None, k)
    for k, o in enumerate(inputs + ([output] if output else [])):
        if o.indexed:
            fail("@map takes no index, so no DSD with wavelet_index_offset", None, k)
    for k, o in enumerate(inputs):
        if o.kind == "fabout_dsd":
            fail("a fabout_dsd cannot be an input", "@map", k)
    if output is not None and output.kind == "fabin_dsd":
        fail("a fabin_dsd cannot be the output", "@map", len(inputs))
    if not any(o.kind not in ("value", "fifo") for o in inputs):
        fail("@map needs at least one DSD input")


def check_map_input(what: str, t, holds) -> None:
    """A DSD input of `@map` holds elements of the width of the callback's parameter
    (`what`, of type `t`); `holds` is None where not known (a fabric DSD)."""
    if holds is not None and holds.bits != t.bits:
        fail(f"{what} is {t}, its DSD holds {holds}", "@map")


def check_map_output(callee: str, ret, given: bool) -> None:
    """`@map` takes an output exactly when its callback (`callee`) returns a value `ret`."""
    if ret is None and given:
        fail(f"{callee} returns void, so no output is taken", "@map")
    if ret is not None and not given:
        fail(f"{callee} returns a value, so an output is required", "@map")


def check_map_result(callee: str, ret, letter: str, holds) -> None:
    """The output of `@map` is a DSD or a pointer (`letter` "D" or "p", as an operand's form)
    whose elements (`holds`, None where not known) have the width of the result `ret`."""
    if letter == "s":
        fail("@map output must be a DSD or a pointer")
    if holds is not None and holds.bits != ret.bits:
        fail(f"output holds {holds}, {callee} returns {ret}", "@map")


# ------------------------------------------------------------------------------------------------
# FIFO operands: what an op gives, and the lengths set at run time


def op_may_end_early(async_: bool, fifo_operand: bool) -> bool:
    """Does an operation give its run's result, a bool known only at run time (spec 7.5, 8)?
    A synchronous one with a FIFO operand does: false where the FIFO's `test_or_suspend`
    action ended it early. Any other completes (an asynchronous one is started): true."""
    return fifo_operand and not async_


def check_fifo_length(op: str, is_fifo: bool, shown: str) -> None:
    """`@set_fifo_read_length(f, n)` / `@set_fifo_write_length(f, n)` take a FIFO first."""
    if not is_fifo:
        fail(f"@{op} takes a FIFO (const f = @allocate_fifo(buf)), got {shown}")
