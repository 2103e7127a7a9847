"""CSL builtins (`@name(...)`), evaluated by the comptime evaluator.

Each handler takes `(compiler, node, env)` and returns a value; the family modules register
theirs in `_registry` (importing them here is what registers them). Builtins that act at run
time (DSD operations, `@map`) emit IR into the current function; layout builtins
(`@set_rectangle`, `@set_tile_code`, `@export_name`) record into the layout being built.

The fabric: queues (`@get_input_queue`, `@initialize_queue`), data tasks
(`@get_data_task_id`, `@bind_data_task`), fabric DSDs (`fabin_dsd`, `fabout_dsd`), FIFOs
(`@allocate_fifo`), microthreads (`@get_ut_id`, wse3) and the config struct of DSD
operations (`.async`, `.activate`, `.unblock`, `.index`, `.ut_id`). On wse3 a queue's color
is known only once its `@initialize_queue` has run, which may come after the DSDs and tasks
that use it: `finish_pe` checks those uses and fills in the colors once the PE program is
complete. Data structure registers: `dsrs`. A builtin with no handler is reported as
unknown.
"""

from wsejax.csl.builtins import (
    colors,
    dsd,
    dsd_ops,
    dsrs,
    layout,
    queues,
    rotating,
    runtime,
    symbols,
    task_table,
    tasks,
    teardown,
    values,
)
from wsejax.csl.builtins._registry import HANDLERS, args, builtin, call, nargs
from wsejax.csl.builtins.config import config_image  # noqa: F401  (registers its builtins)
from wsejax.csl.builtins.dfilt import __all__ as _dfilt  # noqa: F401  (registers @dfilt)
from wsejax.csl.builtins.dsd import fabric_dsd
from wsejax.csl.builtins.dsd_ops import dsd_op
from wsejax.csl.builtins.queues import _check_queue, finish_pe

__all__ = ["HANDLERS", "args", "builtin", "call", "colors", "dsd", "dsd_op",
           "dsd_ops", "dsrs", "fabric_dsd", "finish_pe", "layout", "nargs", "queues", "rotating",
           "runtime",
           "symbols", "task_table", "tasks", "teardown", "values", "_check_queue"]
