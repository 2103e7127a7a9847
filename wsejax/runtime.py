"""`SdkRuntime`: the host's handle on the emulated device, with the SDK's signatures.

Commands (memcpy, launch) run strictly in issue order, each finishing before the next starts
(spec 12.5). `nonblock=True` returns a `Task` at once; its errors surface at `task_wait`, at the
next command or at `stop`. Host arguments are validated eagerly, before anything is traced:
every misuse raises `MemcpyError` naming the call, the symbol, what was expected and what came.

    runner = SdkRuntime(program_or_dir)
    A = runner.get_id("A")
    runner.load(); runner.run()
    runner.memcpy_h2d(A, a, 0, 0, 1, 1, 24, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                      nonblock=False)
    runner.launch("compute", nonblock=False)
    runner.stop()
"""

from __future__ import annotations

import enum
import os
import warnings

import numpy as np

from wsejax import ir
from wsejax.artifacts import load_program
from wsejax.engine import Engine
from wsejax.engine.check import Checker, mirrored
from wsejax.errors import CheckError, MemcpyError
from wsejax.memcpy import (
    MemcpyDataType,
    MemcpyOrder,
    block_to_host,
    stride_grid,
    strided_block,
    word_bits,
)
from wsejax.types import DType, bits16_of, from_bits16, rounded

__all__ = ["MemcpyDataType", "MemcpyOrder", "SdkRuntime", "Task"]


class Task:
    """A handle on a command issued with `nonblock=True`."""

    def __init__(self, name: str, arrays=(), check=None):
        self.name = name
        self._arrays = list(arrays)
        self._check = check
        self._done = False

    def _ready(self) -> bool:
        return all(getattr(a, "is_ready", lambda: True)() for a in self._arrays)

    def _finish(self) -> None:
        if self._done:
            return
        for a in self._arrays:
            if hasattr(a, "block_until_ready"):
                a.block_until_ready()
        self._done = True
        check, self._check = self._check, None
        if check is not None:
            check()

    def __repr__(self) -> str:
        return f"<Task {self.name} {'done' if self._done else 'pending'}>"


def _env_int(name: str, minimum: int | None = None) -> int | None:
    """The integer in environment variable `name`, or None where it is unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        want = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise MemcpyError(f"SdkRuntime: environment variable {name} must be {want}, got "
                          f"{text!r}")
    return value


# the latest runtime loaded from each compile output directory: the host's debug tools
# (`cerebras.sdk.debug.debug_util`) read its PEs' memory after it stops
_LOADED: dict[str, SdkRuntime] = {}


def _dir_key(bindir) -> str | None:
    path = getattr(bindir, "artifacts_path", bindir)
    return os.path.realpath(path) if isinstance(path, (str, os.PathLike)) else None


def loaded_runtime(bindir) -> SdkRuntime | None:
    """The SdkRuntime last loaded from compile output directory `bindir`, if any."""
    key = _dir_key(bindir)
    return _LOADED.get(key) if key is not None else None


def _program_of(bindir) -> ir.Program:
    """The Program of `SdkRuntime(bindir)`: a Program, a compile output directory, or an object
    with `artifacts_path` (the SDK's compile artifacts handle)."""
    if isinstance(bindir, ir.Program):
        return bindir
    artifacts = getattr(bindir, "artifacts_path", None)
    path = artifacts if artifacts is not None else bindir
    if path is None:
        raise MemcpyError("SdkRuntime: no compile output directory given (bindir is "
                          "None); pass the directory `wsejax cslc ... -o DIR` wrote (a "
                          "host script usually takes it as `--name DIR`)")
    if not isinstance(path, (str, os.PathLike)):
        raise MemcpyError(f"SdkRuntime: bindir must be a compile output directory (a "
                          f"path) or a Program, got {type(path).__name__}")
    return load_program(path)


def _devices(devices, from_env: bool) -> int | None:
    """The device count to split the PE grid over, checked against the devices JAX sees.

    An explicit `devices=` beyond them is an error; `WSEJAX_DEVICES` beyond them is a warning
    and uses them all, so one setting serves machines of different sizes."""
    if devices is None:
        return None
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)) or devices < 1:
        raise MemcpyError(f"SdkRuntime: devices must be a positive integer, got {devices!r}")
    if devices == 1:
        return 1
    import jax

    available = jax.devices()
    if devices <= len(available):
        return int(devices)
    have = f"{len(available)} {available[0].platform} device(s)"
    if not from_env:
        raise MemcpyError(f"SdkRuntime: devices={devices}, but only {have} are visible")
    warnings.warn(f"WSEJAX_DEVICES={devices}, but only {have} are visible; using "
                  f"{len(available)}", RuntimeWarning, stacklevel=3)
    return len(available)


def _enum(what: str, name: str, cls, value):
    """`value` as a member of the IntEnum `cls` (its members or their integer values)."""
    if isinstance(value, cls):
        return value
    # a member of another enum (data_type passed as order) is a mistake, not a number
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, enum.Enum)):
        try:
            return cls(int(value))
        except ValueError:
            pass
    accepted = ", ".join(f"{cls.__name__}.{m.name}" for m in cls)
    raise MemcpyError(f"{what}: {name} must be one of {accepted}, got {value!r}")


def _integers(name: str, **values) -> None:
    """Raise MemcpyError unless every value is an integer (not a bool)."""
    for k, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise MemcpyError(f"{name}: {k} must be an integer, got {v!r}")


class SdkRuntime:
    """The emulated device, driven by the host.

    Args:
      bindir: a compile output directory (from `wsejax cslc` or `save_program`) or a Program.
      platform: accepted for the SDK's signature; unused.
      cmaddr: the address of a real system; only the emulator (None or "") is available.
      loop_limit: iterations a loop nest on a PE may run before it faults instead of running
        on.
      matvec_loops: lower `@fmacs` loops over an advancing DSD to one matrix product: fast,
        but it sums in another order and on CPU flushes f32 subnormals; the default (False)
        runs them step by step, IEEE-exact.
      schedule_seed: run runnable tasks in a seeded random order instead of lowest ID first
        (also set by the environment variable WSEJAX_SCHEDULE_SEED).
      queue_capacity: wavelets each PE's inbox and outbox of a color hold (default 8).
      devices: split the PE grid over this many devices (a `jax.sharding.Mesh` over its rows
        and columns; also set by WSEJAX_DEVICES); None runs on one device.
        The environment variable WSEJAX_BAND sets the engine's banded tick
        (`wsejax.engine.band`): 0 runs every tick over the whole grid, N a band of N columns.
      check: run the reference interpreter beside the engine and compare them after every
        command (`wsejax.engine.check`; also set by WSEJAX_CHECK=1); small fabrics only.
      Other keyword arguments of the SDK (`suppress_simfab_trace`, `simfab_numthreads`,
      `msg_level`, `memcpy_required`) are accepted and ignored.
    """

    def __init__(self, bindir, platform=None, *, cmaddr: str | None = None,
                 loop_limit: int | None = None, matvec_loops: bool = False,
                 schedule_seed: int | None = None, queue_capacity: int | None = None,
                 devices: int | None = None, check: bool | None = None, **kwargs):
        if cmaddr:
            raise MemcpyError(f"SdkRuntime: cmaddr={cmaddr!r} names a real CS system; wsejax "
                              "only emulates the device (leave cmaddr unset)")
        unknown = set(kwargs) - {"suppress_simfab_trace", "simfab_numthreads", "msg_level",
                                 "memcpy_required"}
        if unknown:
            raise MemcpyError(f"SdkRuntime: unknown keyword argument(s) {sorted(unknown)}")
        self.program = _program_of(bindir)
        self._dir = _dir_key(bindir)
        # the environment lets an unmodified host script run in the random-order mode or
        # sharded over several devices
        if schedule_seed is None:
            schedule_seed = _env_int("WSEJAX_SCHEDULE_SEED")
        from_env = devices is None
        if from_env:
            devices = _env_int("WSEJAX_DEVICES", minimum=1)
        devices = _devices(devices, from_env)
        self._engine_kwargs = {"matvec_loops": matvec_loops, "schedule_seed": schedule_seed,
                               "devices": devices}
        if loop_limit is not None:
            self._engine_kwargs["loop_limit"] = loop_limit
        if queue_capacity is not None:
            self._engine_kwargs["queue_capacity"] = queue_capacity
        band = _env_int("WSEJAX_BAND", minimum=0)
        if band is not None:
            # the columns of a banded tick (0: every tick over the whole grid)
            self._engine_kwargs["band"] = band
        self.checker = None
        if check if check is not None else bool(_env_int("WSEJAX_CHECK")):
            self.checker = Checker(self.program, loop_limit, schedule_seed)
            self._engine_kwargs["matvec_loops"] = False
        self.engine: Engine | None = None
        self.state = None
        self._ids = {e.name: k for k, e in enumerate(self.program.exports)}
        self._loaded = False
        self._running = False
        self._stopped = False
        self._pending: list[Task] = []
        self._issued = 0
        # (x, y, symbol, values): a compiled SdkLayout's `set_symbol*`, written at load()
        self._presets = tuple(getattr(bindir, "symbols", ()))

    # -- lifecycle --------------------------------------------------------------------------

    def get_id(self, symbol: str) -> int:
        """The id of an exported data name or function."""
        if symbol not in self._ids:
            names = ", ".join(sorted(self._ids)) or "none"
            raise MemcpyError(f"get_id: no exported symbol '{symbol}' (exported: {names})")
        return self._ids[symbol]

    get_symbol = get_id

    def load(self) -> None:
        """Build the engine and the device's initial state."""
        self._alive("load")
        if self.engine is None:
            self.engine = Engine(self.program, **self._engine_kwargs)
        self.state = self.engine.initial_state()
        if self.checker is not None:
            self.checker.reset()
        for x, y, name, values in self._presets:
            self._preset(x, y, name, values)
        self._loaded = True
        if self._dir is not None:
            _LOADED[self._dir] = self

    def run(self) -> None:
        """Start the device; it then waits for commands."""
        self._alive("run")
        if not self._loaded:
            raise MemcpyError("run: call load() first")
        self._running = True
        self._issued = 0

    def stop(self) -> None:
        """Wait for every pending command, then stop. No command is accepted afterwards.
        A device no command drove since `run()` (an SdkLayout program, whose tasks start at
        comptime) first runs until it is idle."""
        self._alive("stop")
        self._drain()
        if self._running and not self._issued:
            self._settle()
        self._stopped = True

    def _settle(self) -> None:
        """Run the fabric until it is idle; raise FabricFault if a PE faulted (and, in check
        mode, CheckError where the reference, run alike, differs)."""
        self.state, _, _ = self.engine.run_fabric(self.state)
        self.engine.check_faults(self.state)
        if self.checker is not None:
            self.checker.ref.stop()
            problems = self.checker.compare(self)
            if problems:
                raise CheckError(f"stop: engine and reference disagree: {problems[0]}")

    def host_round_trips(self) -> dict:
        """Counts since the engine was built: `commands` issued, jitted `dispatches` and
        device-to-host `fetches`. A command makes a fixed number of each, however many ticks
        its fabric loop runs (no Python runs per tick)."""
        counts = self.engine.counts if self.engine is not None else {}
        return {k: int(counts.get(k, 0)) for k in ("commands", "dispatches", "fetches")}

    def is_task_done(self, task: Task) -> bool:
        if not isinstance(task, Task):
            raise MemcpyError(f"is_task_done: expected a Task, got {type(task).__name__}")
        if task._done:
            return True
        if task._ready():
            task._finish()
            return True
        return False

    def task_wait(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise MemcpyError(f"task_wait: expected a Task, got {type(task).__name__}")
        task._finish()

    def _alive(self, what: str) -> None:
        if self._stopped:
            raise MemcpyError(f"{what}: the runtime was stopped; no command is accepted after "
                              "stop()")

    def _ready_for(self, what: str) -> None:
        self._alive(what)
        if not getattr(self.program, "memcpy", True):
            raise MemcpyError(f"{what}: the program was compiled without --memcpy, so the host "
                              "cannot reach the device (no memcpy, no launch); compile it with "
                              "`wsejax cslc ... --memcpy`")
        if not self._running:
            raise MemcpyError(f"{what}: call load() and run() before issuing commands")
        self._drain()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for t in pending:
            t._finish()

    def _issue(self, task: Task, nonblock: bool):
        self.engine.counts["commands"] += 1
        self._issued += 1
        if nonblock:
            self._pending.append(task)
        else:
            task._finish()
        return task

    # -- copy-mode memcpy -------------------------------------------------------------------

    def _data_export(self, what: str, sym_id, write: bool) -> ir.ExportName:
        if not isinstance(sym_id, (int, np.integer)) or isinstance(sym_id, bool):
            raise MemcpyError(f"{what}: the symbol must be an id from get_id(), got {sym_id!r}")
        if not 0 <= int(sym_id) < len(self.program.exports):
            raise MemcpyError(f"{what}: {sym_id} is not a symbol id from get_id()")
        export = self.program.exports[int(sym_id)]
        if export.kind != "data":
            raise MemcpyError(f"{what}: '{export.name}' is a function, not a data symbol")
        if write and not export.mutable:
            raise MemcpyError(f"{what}: symbol '{export.name}' is exported immutable "
                              "(@export_name(..., false)); the host may only read it")
        return export

    def _check_roi(self, what, px, py, w, h, elem_per_pe) -> None:
        _integers(what, px=px, py=py, w=w, h=h, elem_per_pe=elem_per_pe)
        pw, ph = self.program.width, self.program.height
        if w < 1 or h < 1 or elem_per_pe < 1:
            raise MemcpyError(f"{what}: w, h and elem_per_pe must be at least 1, got w={w}, "
                              f"h={h}, elem_per_pe={elem_per_pe}")
        if px < 0 or py < 0 or px + w > pw or py + h > ph:
            raise MemcpyError(f"{what}: region (px={px}, py={py}, w={w}, h={h}) lies outside "
                              f"the {pw}x{ph} program rectangle")

    def _host_array(self, what: str, arr, size: int, export: ir.ExportName | str,
                    writable=False):
        name = export if isinstance(export, str) else f"symbol '{export.name}'"
        if not isinstance(arr, np.ndarray):
            raise MemcpyError(f"{what}: the host array must be a numpy array, got "
                              f"{type(arr).__name__}")
        if arr.dtype.itemsize != 4 or arr.dtype.kind not in "uif":
            raise MemcpyError(f"{what}: {name}: host arrays hold 32-bit "
                              f"elements (uint32, int32 or float32), got {arr.dtype}")
        if arr.size != size:
            raise MemcpyError(f"{what}: {name} expects a host array of {size} "
                              f"elements, got {arr.size}")
        if writable and (not arr.flags.c_contiguous or not arr.flags.writeable):
            raise MemcpyError(f"{what}: the destination array must be writable and "
                              "C-contiguous (it is written in place)")
        if not arr.dtype.isnative:
            if writable:
                raise MemcpyError(f"{what}: the destination array is {arr.dtype.str} (byte "
                                  "order not the host's); it is written in place with raw "
                                  "native words: pass an array of "
                                  f"{arr.dtype.newbyteorder('=').name}")
            # the values, not the bytes, are what the host means to send
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr.reshape(-1).view(np.uint32)

    def _targets(self, what, export, px, py, w, h, l, bits, who=None):
        """Per group of ROI PEs sharing a slot: `(slot, first word, [h, w] mask or None)`;
        only the PEs where `who` (`[h, w]`) holds, if given. Raises if a PE lacks the symbol
        or the transfer overflows it."""
        program = self.program
        groups: dict = {}
        cls = program.class_of[py:py + h, px:px + w]
        if who is not None:
            cls = np.where(who, cls, -1)
        for c in np.unique(cls[cls >= 0]):
            pe = program.classes[int(c)]
            found = next((e for e in pe.exports if isinstance(e, ir.ExportData)
                          and e.name == export.name), None)
            if found is None:
                ys, xs = np.nonzero(cls == c)
                raise MemcpyError(f"{what}: PE ({px + int(xs[0])}, {py + int(ys[0])}) does not "
                                  f"export '{export.name}'")
            if found.via:
                places = self._pointed(what, export, found, int(c), cls == c, px, py)
            else:
                places = [(found.symbol, found.offset, cls == c)]
            for symbol, offset, mask in places:
                key = self._target(what, export, int(c), symbol, offset, l, bits)
                groups[key] = mask | groups[key] if key in groups else mask
        if len(groups) == 1 and who is None:
            (slot, first), = groups
            return [(slot, first, None)]
        return [(slot, first, mask) for (slot, first), mask in groups.items()]

    def _target(self, what, export, c: int, symbol: str, offset: int, l: int, bits: int):
        """(slot, first word) of a copy of `l` elements to or from `symbol` of tile class c
        from element `offset`. Raises if it overflows the symbol."""
        engine = self.engine
        sym = self.program.classes[c].symbol(symbol)
        if sym.dtype.bits not in (16, 32):
            raise MemcpyError(f"{what}: symbol '{export.name}' holds {sym.dtype}; memcpy "
                              "moves 16- and 32-bit elements only")
        slot = engine.plan.symbol_slot[c][symbol]
        first = offset * sym.dtype.bits
        if first % bits:
            raise MemcpyError(f"{what}: symbol '{export.name}' starts in the middle of a "
                              f"{bits}-bit word")
        first //= bits
        avail = engine.words_per_pe(slot, bits) - first
        if l > avail:
            raise MemcpyError(f"{what}: symbol '{export.name}' holds {avail} "
                              f"{bits}-bit elements per PE ({sym.size} {sym.dtype}), got "
                              f"elem_per_pe={l}")
        return slot, first

    def _pointed(self, what, export, found: ir.ExportData, c: int, mine, px, py) -> list:
        """Where pointer variable `found.via` points on the ROI PEs of tile class c (`mine`,
        `[h, w]`) now: `(symbol, element offset, [h, w] mask)` per place. Raises where it
        points into no array of the element type."""
        pe = self.program.classes[c]
        h, w = mine.shape
        slot = self.engine.plan.symbol_slot[c][found.via]
        held = np.asarray(self.state.mem[slot]).reshape(self.program.height,
                                                        self.program.width, -1)
        addrs = held[py:py + h, px:px + w, 0].astype(np.int64)
        want = pe.symbol(found.symbol).dtype
        out = []
        for a in np.unique(addrs[mine]):
            at = mine & (addrs == a)
            hit = next((s for s in pe.symbols if s.dtype.nbytes == want.nbytes
                        and pe.addresses[s.name] <= a < pe.addresses[s.name] + s.nbytes
                        and (a - pe.addresses[s.name]) % want.nbytes == 0), None)
            if hit is None:
                ys, xs = np.nonzero(at)
                raise MemcpyError(f"{what}: symbol '{export.name}' on PE ({px + int(xs[0])}, "
                                  f"{py + int(ys[0])}) is pointer '{found.via}', which holds "
                                  f"address {int(a)}, inside no array of {want.nbytes}-byte "
                                  "elements")
            out.append((hit.name, int(a - pe.addresses[hit.name]) // want.nbytes, at))
        return out

    def _h2d(self, what, kind, dest, src, px, py, w, h, l, streaming, data_type, order,
             nonblock, src_size, strides=None):
        self._ready_for(what)
        order, data_type = _enum(what, "order", MemcpyOrder, order), \
            _enum(what, "data_type", MemcpyDataType, data_type)
        if streaming:
            return self._stream(what, "h2d", dest, src, px, py, w, h, l, order, nonblock,
                                block=kind, size=src_size(w, h, l), strides=strides)
        export = self._data_export(what, dest, write=True)
        self._check_roi(what, px, py, w, h, l)
        words = self._host_array(what, src, src_size(w, h, l), export)
        bits = word_bits(data_type)
        block, who = strided_block(kind, order, words, w, h, l, strides)
        block = np.ascontiguousarray(block if bits == 32 else (block & 0xFFFF).astype(np.uint16))
        state = self.state
        for slot, first, mask in self._targets(what, export, px, py, w, h, l, bits, who):
            state = self.engine.h2d(state, slot, bits, px, py, first, block, mask)
        self.state = state
        return self._issue(Task(what, list(state.mem.values())[:1]), nonblock)

    @mirrored
    def memcpy_h2d(self, dest: int, src: np.ndarray, px: int, py: int, w: int, h: int,
                   elem_per_pe: int, *, streaming: bool = False,
                   data_type: MemcpyDataType = MemcpyDataType.MEMCPY_32BIT,
                   order: MemcpyOrder = MemcpyOrder.ROW_MAJOR, nonblock: bool = False) -> Task:
        """Copy `src` (`w*h*elem_per_pe` 32-bit elements) to symbol `dest` on the ROI."""
        return self._h2d("memcpy_h2d", "roi", dest, src, px, py, w, h, elem_per_pe, streaming,
                         data_type, order, nonblock, lambda w, h, l: w * h * l)

    @mirrored
    def memcpy_h2d_rowbcast(self, dest: int, src: np.ndarray, px: int, py: int, w: int, h: int,
                            elem_per_pe: int, *, streaming: bool = False,
                            data_type: MemcpyDataType = MemcpyDataType.MEMCPY_32BIT,
                            order: MemcpyOrder = MemcpyOrder.ROW_MAJOR,
                            nonblock: bool = False) -> Task:
        """Copy `src` (`h*elem_per_pe`: one row of data per ROI row) to every PE of each row."""
        return self._h2d("memcpy_h2d_rowbcast", "rowbcast", dest, src, px, py, w, h,
                         elem_per_pe, streaming, data_type, order, nonblock,
                         lambda w, h, l: h * l)

    @mirrored
    def memcpy_h2d_colbcast(self, dest: int, src: np.ndarray, px: int, py: int, w: int, h: int,
                            elem_per_pe: int, *, streaming: bool = False,
                            data_type: MemcpyDataType = MemcpyDataType.MEMCPY_32BIT,
                            order: MemcpyOrder = MemcpyOrder.ROW_MAJOR,
                            nonblock: bool = False) -> Task:
        """Copy `src` (`w*elem_per_pe`: one column of data per ROI column) to every PE of each
        column."""
        return self._h2d("memcpy_h2d_colbcast", "colbcast", dest, src, px, py, w, h,
                         elem_per_pe, streaming, data_type, order, nonblock,
                         lambda w, h, l: w * l)

    @mirrored
    def memcpy_h2d_stride(self, dest: int, src: np.ndarray, px: int, py: int, w: int, h: int,
                          elem_per_pe: int, row_stride: int, col_stride: int, *,
                          streaming: bool = False,
                          data_type: MemcpyDataType = MemcpyDataType.MEMCPY_32BIT,
                          order: MemcpyOrder = MemcpyOrder.ROW_MAJOR,
                          nonblock: bool = False) -> Task:
        """Copy `src` to every `row_stride`-th column and `col_stride`-th row of the ROI (PEs
        `(px + a*row_stride, py + b*col_stride)`), laid out as `memcpy_h2d` lays out a ROI of
        those PEs (`wsejax.memcpy.stride_grid`); the other PEs of the ROI are left alone."""
        what = "memcpy_h2d_stride"
        _integers(what, row_stride=row_stride, col_stride=col_stride)
        if row_stride < 1 or col_stride < 1:
            raise MemcpyError(f"{what}: row_stride and col_stride must be at least 1, got "
                              f"row_stride={row_stride}, col_stride={col_stride}")
        strides = (row_stride, col_stride)

        def size(w, h, l):
            xi, eta = stride_grid(w, h, strides)
            return xi * eta * l
        return self._h2d(what, "roi", dest, src, px, py, w, h, elem_per_pe, streaming,
                         data_type, order, nonblock, size, strides)

    @mirrored
    def memcpy_d2h(self, dest: np.ndarray, src: int, px: int, py: int, w: int, h: int,
                   elem_per_pe: int, *, streaming: bool = False,
                   data_type: MemcpyDataType = MemcpyDataType.MEMCPY_32BIT,
                   order: MemcpyOrder = MemcpyOrder.ROW_MAJOR, nonblock: bool = False) -> Task:
        """Copy symbol `src` on the ROI into `dest` (written in place, raw bits)."""
        what = "memcpy_d2h"
        self._ready_for(what)
        order, data_type = _enum(what, "order", MemcpyOrder, order), \
            _enum(what, "data_type", MemcpyDataType, data_type)
        if streaming:
            return self._stream(what, "d2h", src, dest, px, py, w, h, elem_per_pe, order,
                                nonblock)
        export = self._data_export(what, src, write=False)
        l = elem_per_pe
        self._check_roi(what, px, py, w, h, l)
        out = self._host_array(what, dest, w * h * l, export, writable=True)
        bits = word_bits(data_type)
        block = np.zeros((h, w, l), np.uint32)
        for slot, first, mask in self._targets(what, export, px, py, w, h, l, bits):
            got = self.engine.d2h(self.state, slot, bits, px, py, first, h, w, l)
            block = got if mask is None else np.where(mask[:, :, None], got, block)
        block_to_host(order, block.astype(np.uint32), out)
        return self._issue(Task(what), nonblock)

    # -- streaming memcpy -------------------------------------------------------------------

    def _stream(self, what, kind, color, arr, px, py, w, h, l, order, nonblock,
                block="roi", size=None, strides=None) -> Task:
        """Streaming mode (spec 12.4): each ROI PE receives (h2d) or sends (d2h) `l` wavelets
        on memcpy streaming color `color`; the host array's layout is as in copy mode (`block`:
        "roi", or a broadcast's "rowbcast" / "colbcast", whose `size` host elements every PE of
        a row or column receives alike), one 32-bit wavelet per element whatever the data
        type."""
        colors = [c for c, k in self.program.streams if k == kind]
        if isinstance(color, bool) or not isinstance(color, (int, np.integer)) \
                or int(color) not in colors:
            name = "MEMCPYH2D" if kind == "h2d" else "MEMCPYD2H"
            raise MemcpyError(f"{what}: streaming needs one of the {name}_n colors given to "
                              f"<memcpy/get_params> ({', '.join(map(str, colors)) or 'none'}), "
                              f"got {color!r}")
        self._check_roi(what, px, py, w, h, l)
        words = self._host_array(what, arr, w * h * l if size is None else size,
                                 f"color {int(color)}", writable=kind == "d2h")
        H, W = self.program.height, self.program.width
        total = np.zeros((H, W), np.int32)
        data = np.zeros((H, W, l), np.uint32)
        if kind == "h2d":
            data[py:py + h, px:px + w], who = strided_block(block, order, words, w, h, l,
                                                            strides)
            total[py:py + h, px:px + w] = l if who is None else np.where(who, l, 0)
        else:
            total[py:py + h, px:px + w] = l
        stream = self.engine.stream_index(kind, int(color))
        self.state, data, done = self.engine.run_fabric(self.state, stream, data, total)
        state = self.state

        def check():
            self.engine.check(state, what, done, total)
            if kind == "d2h":
                block = self.engine.fetch(data[py:py + h, px:px + w])
                block_to_host(order, block.astype(np.uint32), words)

        return self._issue(Task(what, [done], check), nonblock)

    def _preset(self, x: int, y: int, name: str, values) -> None:
        """Write `values` (as the symbol's element type) over PE (x, y)'s global `name`."""
        c = int(self.program.class_of[y, x])
        slot = self.engine.plan.symbol_slot[c].get(name)
        if slot is None:
            raise MemcpyError(f"set_symbol: PE ({x}, {y}) has no global '{name}'")
        mem = self.state.mem[slot]
        shape = mem.shape[2:]
        values = np.asarray(values)
        if values.size != int(np.prod(shape, dtype=np.int64)):
            raise MemcpyError(f"set_symbol: '{name}' on PE ({x}, {y}) holds "
                              f"{int(np.prod(shape))} elements, got {values.size}")
        values = values.astype(np.dtype(mem.dtype)).reshape(shape)
        self.state = self.state.replace(mem={**self.state.mem,
                                             slot: mem.at[y, x].set(values)})
        if self.checker is not None:
            self.checker.ref.set_symbol(x, y, name, values)

    # -- SdkLayout streams -------------------------------------------------------------------

    def _layout_stream(self, what: str, stream, kind: str, arr, size: int):
        if getattr(stream, "kind", None) != kind or getattr(stream, "color", None) is None:
            want = "create_input_stream" if kind == "h2d" else "create_output_stream"
            raise MemcpyError(f"{what}: expected a stream of a compiled layout's {want}, "
                              f"got {stream!r}")
        if size != stream.size:
            raise MemcpyError(f"{what}: the stream's port moves {stream.size} elements, got "
                              f"size={size}")
        return stream.color, arr, stream.x, stream.y, 1, 1, size

    def send(self, stream, data: np.ndarray, nonblock: bool = False) -> Task:
        """SdkLayout: send `data` (32-bit elements, one wavelet each) into an input stream."""
        color, arr, x, y, w, h, l = self._layout_stream(
            "send", stream, "h2d", data, int(np.size(data)))
        return self.memcpy_h2d(color, np.ascontiguousarray(arr).reshape(-1), x, y, w, h, l,
                               streaming=True, nonblock=nonblock)

    def receive(self, stream, data: np.ndarray, size: int, nonblock: bool = False) -> Task:
        """SdkLayout: receive `size` 32-bit elements from an output stream into `data`."""
        color, arr, x, y, w, h, l = self._layout_stream("receive", stream, "d2h", data, size)
        return self.memcpy_d2h(arr, color, x, y, w, h, l, streaming=True, nonblock=nonblock)

    # -- launch -----------------------------------------------------------------------------

    def _function(self, what: str, symbol) -> ir.ExportName:
        if not isinstance(symbol, str):
            raise MemcpyError(f"{what}: expected the exported function's name, got {symbol!r}")
        export = self.program.export(symbol)
        if export is None:
            funcs = ", ".join(e.name for e in self.program.exports if e.kind == "func")
            raise MemcpyError(f"{what}: no exported function '{symbol}' (exported functions: "
                              f"{funcs or 'none'})")
        if export.kind != "func":
            raise MemcpyError(f"{what}: '{symbol}' is a data symbol, not a function")
        return export

    @mirrored
    def launch(self, symbol: str, *args, nonblock: bool = False) -> Task:
        """Run exported function `symbol(*args)` on every PE that exports it; the command ends
        when every such PE has called `unblock_cmd_stream()`."""
        what = f"launch('{symbol}')"
        self._ready_for("launch")
        export = self._function("launch", symbol)
        if len(args) != len(export.params):
            raise MemcpyError(f"{what}: takes {len(export.params)} argument(s) "
                              f"({', '.join(map(str, export.params)) or 'none'}), got {len(args)}")
        values = tuple(_convert_arg(what, k, a, t) for k, (a, t) in
                       enumerate(zip(args, export.params)))
        return self._run_launch(what, symbol, values, nonblock)

    @mirrored
    def call(self, symbol: str, params=(), nonblock: bool = False) -> Task:
        """The legacy form of `launch`: `params` holds one 32-bit word per argument."""
        what = f"call('{symbol}')"
        self._ready_for("call")
        export = self._function("call", symbol)
        return self._run_launch(what, symbol, self.call_arguments(what, params, export),
                                nonblock)

    @staticmethod
    def call_arguments(what: str, params, export) -> tuple:
        """The arguments of a legacy `call` of `export`: one 32-bit word each in `params`
        (a list keeps each word's own type; an array is a sequence of raw words)."""
        params = list(params) if isinstance(params, (list, tuple)) else \
            list(np.asarray(params).reshape(-1))
        if len(params) != len(export.params):
            raise MemcpyError(f"{what}: takes {len(export.params)} argument word(s), got "
                              f"{len(params)}")
        return tuple(_from_word(what, k, p, t) for k, (p, t) in
                     enumerate(zip(params, export.params)))

    def _run_launch(self, what, symbol, values, nonblock) -> Task:
        self.engine.counts["dispatches"] += 1
        if self.engine.dynamic:
            # the PEs start the function once their main thread is idle, in the fabric loop
            self.state = self.engine.request_fn(symbol)(self.state, values)
            self.state, _, _ = self.engine.run_fabric(self.state)
        else:
            self.state = self.engine.launch_fn(symbol)(self.state, values)
        state = self.state

        def check():
            self.engine.check(state, what)

        return self._issue(Task(what, [state.cmd_blocked], check), nonblock)

    # -- debugging --------------------------------------------------------------------------

    def read_symbol(self, x: int, y: int, symbol_name: str, dtype="uint8") -> np.ndarray:
        """The raw bytes of PE (x, y)'s global `symbol_name`, viewed as `dtype`. After
        `stop()` it reads the memory the device stopped with (the SDK reads its core dump;
        SdkLayout host scripts read results this way)."""
        if not self._stopped:
            self._drain()
        return self.symbol_values("read_symbol", x, y, symbol_name, dtype)

    def symbol_values(self, what: str, x: int, y: int, symbol_name: str, dtype) -> np.ndarray:
        """`read_symbol` without its checks that the device still runs: the device's memory
        as the last command left it (also after `stop()`)."""
        dtype = _read_dtype(dtype, what)
        if not self._loaded:
            raise MemcpyError(f"{what}: call load() first")
        _integers(what, x=x, y=y)
        if not (0 <= x < self.program.width and 0 <= y < self.program.height):
            raise MemcpyError(f"{what}: PE ({x}, {y}) is outside the program rectangle")
        if not isinstance(symbol_name, str):
            raise MemcpyError(f"{what}: the symbol is a global's name, got {symbol_name!r}")
        c = int(self.program.class_of[y, x])
        slot = self.engine.plan.symbol_slot[c].get(symbol_name)
        if slot is None:
            raise MemcpyError(f"{what}: PE ({x}, {y}) has no global '{symbol_name}'")
        raw = np.ascontiguousarray(np.asarray(self.state.mem[slot][y, x])).reshape(-1)
        if self.engine.plan.slots[slot][0] is DType.cb16:     # held as f32: its patterns
            raw = bits16_of(raw, DType.cb16)
        raw = raw.view(np.uint8)
        size = dtype.itemsize
        if raw.size % size:
            raise MemcpyError(f"{what}: '{symbol_name}' holds {raw.size} bytes, not a "
                              f"whole number of {dtype} values")
        # device bytes are little-endian; a big-endian dtype gets the same values
        return raw.view(dtype.newbyteorder("<")).astype(dtype)


def _read_dtype(dtype, what: str = "read_symbol") -> np.dtype:
    """`read_symbol`'s dtype: a numpy bool, integer, float or complex type."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.kind not in "biufc" or dt.itemsize == 0:
        raise MemcpyError(f"{what}: dtype must be a numeric numpy dtype (e.g. 'uint8', "
                          f"np.float32, np.uint16), got {dtype!r}")
    return dt


def _convert_arg(what: str, k: int, a, t: DType):
    """A launch argument as a numpy scalar of type t, or MemcpyError."""
    arr = np.asarray(a)
    if arr.shape != ():
        raise MemcpyError(f"{what}: argument {k + 1} must be a scalar {t}, got shape {arr.shape}")
    if t.is_float:
        if arr.dtype.kind not in "fiu":
            raise MemcpyError(f"{what}: argument {k + 1} must be a {t}, got {arr.dtype}")
        return rounded(arr, t)
    if t is DType.bool_:
        return np.asarray(bool(arr))
    if arr.dtype.kind not in "iub":
        raise MemcpyError(f"{what}: argument {k + 1} must be an integer ({t}), got {arr.dtype}")
    info = np.iinfo(t.np)
    v = int(arr)
    if not info.min <= v <= info.max:
        raise MemcpyError(f"{what}: argument {k + 1} = {v} does not fit in {t}")
    return np.asarray(v, t.np)


def _from_word(what: str, k: int, p, t: DType):
    """A legacy `call` argument: one 32-bit word reinterpreted as type t."""
    arr = np.asarray(p)
    if arr.dtype.kind == "f":
        word = np.asarray(arr, np.float32).view(np.uint32)
    elif arr.dtype.kind in "iub":
        word = np.asarray(int(arr) & 0xFFFFFFFF, np.uint32)
    else:
        raise MemcpyError(f"{what}: argument word {k + 1} must be a number, got {arr.dtype}")
    if t.bits == 32:
        return word.view(t.np)
    return from_bits16(int(word), t)
