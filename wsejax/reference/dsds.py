"""DSD values, DSD operations and `@map` in the reference interpreter.

Contract: `DsdInterpreter` is the part of `Reference` that evaluates DSD expressions (one
`dsd_<Class>` per IR DSD expression) and runs `stmt_DsdAssign`, `stmt_DsdOp` and `stmt_Map`
one element at a time, in order. A DSD operation with fabric or FIFO operands becomes a
`RunningOp`: an asynchronous one goes to the microthread of its site (the scheduler advances
it), a synchronous one is advanced here, its statement yielding while it cannot complete.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from wsejax import ir
from wsejax.diagnostics import (
    dsd_out_of_range,
    fifo_fault,
    half_an_element,
    index_out_of_range,
    microthread_clash,
    started_while_running,
)
from wsejax.dsd import reads_low_halves
from wsejax.errors import ProgramError
from wsejax.fabric import payload_in, payload_out
from wsejax.opspec import CARRIED
from wsejax.reference.elements import element_ops
from wsejax.reference.interp import map_write_error
from wsejax.reference.pe import (
    ADVANCE,
    CONTROL,
    PE,
    STREAM_KINDS,
    Dsd,
    Fault,
    Frame,
    RunningOp,
    data_ahead,
    literal,
)
from wsejax.reference.scalars import cast, dtype_of, from_bits, typed_bits
from wsejax.types import DType, from_bits16

__all__ = ["DsdInterpreter"]

_NO_CONFIG = ir.OpConfig()

class DsdInterpreter:
    """DSD expressions, DSD operations and `@map` (a mixin of `Reference`).

    Uses from `Reference`: `queue_capacity`, and from `Interpreter`: `_expr`, `_int`,
    `_flat_index`, `_block`, `_drive`, `_tick`.
    """

    queue_capacity: int

    # -- DSD values -------------------------------------------------------------------------

    def _dsd(self, pe: PE, e, fr: Frame) -> Dsd:
        handler = self._handler("dsd_", e)
        if handler is None:
            raise ProgramError(f"cannot evaluate DSD expression {e!r}")
        return handler(pe, e, fr)

    def dsd_DsdLit(self, pe: PE, e: ir.DsdLit, fr: Frame) -> Dsd:
        return literal(e.dsd, pe.tables, lambda x: self._int(pe, x, fr))

    def dsd_FifoRef(self, pe: PE, e: ir.FifoRef, fr: Frame) -> Dsd:
        if e.name not in pe.fifos:
            raise ProgramError(f"{fr.fn}: unknown FIFO '{e.name}'")
        return Dsd("fifo", e.name, 0, 0, 0, 0)

    def dsd_DsdVar(self, pe: PE, e: ir.DsdVar, fr: Frame) -> Dsd:
        return pe.dsd[e.name]

    def dsd_DsdLocal(self, pe: PE, e: ir.DsdLocal, fr: Frame) -> Dsd:
        v = fr.locals.get(e.name)
        if not isinstance(v, Dsd):
            raise ProgramError(f"{fr.fn}: '{e.name}' is not a DSD")
        return v

    def dsd_IncrementOffset(self, pe: PE, e: ir.IncrementOffset, fr: Frame) -> Dsd:
        """`increment_dsd_offset` by `delta` elements of `e.dtype`, which the DSD's own
        elements may be wider or narrower than."""
        d = self._memory_dsd(pe, e.dsd, fr, "increment_dsd_offset")
        delta = self._int(pe, e.delta, fr)
        bits = pe.cls.symbol(d.base).dtype.bits
        if e.dtype.bits > bits:
            step = delta * (e.dtype.bits // bits)
        elif e.dtype.bits < bits:
            ratio = bits // e.dtype.bits
            if type(e.delta) is ir.Const and delta % ratio:
                raise ProgramError(half_an_element(delta, e.dtype, bits))
            step = delta // ratio
        else:
            step = delta
        return replace(d, offset=d.offset + step)

    def dsd_SetBase(self, pe: PE, e: ir.SetBase, fr: Frame) -> Dsd:
        d = self._memory_dsd(pe, e.dsd, fr, "set_dsd_base_addr")
        return replace(d, base=e.symbol, base_offset=e.base_offset, offset=0)

    def dsd_SetLength(self, pe: PE, e: ir.SetLength, fr: Frame) -> Dsd:
        d = self._dsd(pe, e.dsd, fr)
        if d.kind == "fifo":
            raise ProgramError(f"{fr.fn}: set_dsd_length of a FIFO")
        return replace(d, length=self._int(pe, e.length, fr))

    def dsd_SetStride(self, pe: PE, e: ir.SetStride, fr: Frame) -> Dsd:
        d = self._memory_dsd(pe, e.dsd, fr, "set_dsd_stride")
        return replace(d, stride=self._int(pe, e.stride, fr))

    def _memory_dsd(self, pe: PE, e, fr: Frame, what: str) -> Dsd:
        d = self._dsd(pe, e, fr)
        if not d.is_memory:
            raise ProgramError(f"{fr.fn}: {what} of a {d.kind} DSD")
        return d

    def stmt_DsdAssign(self, pe: PE, s: ir.DsdAssign, fr: Frame) -> None:
        pe.dsd[s.name] = self._dsd(pe, s.value, fr)

    # -- operands ---------------------------------------------------------------------------

    def _operands(self, pe: PE, operands, fr: Frame, index=None, what=""):
        """The operands' runtime values, as (letter, value) pairs: ("D", Dsd), ("s", (value,
        type)) or ("p", PtrOperand). A memory DSD with wavelet_index_offset moves by the op's
        `.index` (`index`, in 16-bit words)."""
        out = []
        for o in operands:
            if type(o) is ir.DsdOperand:
                out.append(("D", self._operand_dsd(pe, o, fr, index, what)))
            elif type(o) is ir.ScalarOperand:
                out.append(("s", (self._expr(pe, o.value, fr), o.value.dtype)))
            else:
                out.append(("p", o))
        return out

    def _operand_dsd(self, pe: PE, o: ir.DsdOperand, fr: Frame, index, what: str) -> Dsd:
        d = self._dsd(pe, o.dsd, fr)
        if isinstance(d.color, ir.QueueColor):
            d = replace(d, color=pe.color_now(d.color), queue=(d.color.kind, d.color.queue))
        if not d.index_offset:
            return d
        if index is None:
            raise ProgramError(f"{what}: a DSD with wavelet_index_offset needs the op's .index")
        if d.is_memory:
            words = pe.cls.symbol(d.base).dtype.bits // 16
            if index % words:
                raise Fault(f"{what}: .index {index} is not a whole element of '{d.base}'")
            d = replace(d, offset=d.offset + index // words)
        return d

    def _check_operand(self, pe: PE, letter: str, o, n: int, want, fr: Frame, what: str):
        """Width and range checks of one operand over its n elements; returns the pointer
        destination's flat index for a pointer."""
        if letter == "D" and o.kind == "fifo":
            sym = pe.cls.symbol(pe.fifos[o.base].spec.buffer)
            if want is not None and sym.dtype.bits != want.bits:
                raise ProgramError(f"{what}: FIFO '{o.base}' over '{sym.name}' ({sym.dtype}) is "
                                   f"used for {want.bits}-bit {want} elements")
        elif letter == "D" and o.is_memory:
            sym = pe.cls.symbol(o.base)
            if want is not None and sym.dtype.bits != want.bits and not reads_low_halves(
                    sym.dtype, want):
                raise ProgramError(f"{what}: a DSD over '{sym.name}' ({sym.dtype}) is used for "
                                   f"{want.bits}-bit {want} elements")
            for i in range(n):
                if not 0 <= o.address(i) < sym.size:
                    raise Fault(dsd_out_of_range(what, sym.name))
        elif letter == "p":
            sym = pe.cls.symbol(o.symbol)
            if want is not None and sym.dtype.bits != want.bits:
                raise ProgramError(f"{what}: '{sym.name}' ({sym.dtype}) receives {want} values")
            idx = self._flat_index(pe, sym, o.indices, fr) if o.indices else 0
            if idx is None:
                raise Fault(index_out_of_range("writing", o.symbol))
            return idx
        return None

    @staticmethod
    def _read(pe: PE, d: Dsd, i: int, want: DType):
        if reads_low_halves(pe.dtypes[d.base], want):
            word = int(pe.flat[d.base].view(np.uint32)[d.address(i)])
            return from_bits16(word, want)[()]
        return pe.load(d.base, d.address(i), want)

    @staticmethod
    def _write(pe: PE, dest, ptr_index, i: int, v, have: DType, index: int = 0,
               last: bool = False) -> None:
        """Write element i of destination `dest` (a (letter, value) operand); `last`: the op's
        last element."""
        letter, o = dest
        if letter != "D":
            pe.store(o.symbol, ptr_index, v, have)
        elif o.kind == "fabout":
            bits = typed_bits(v, have)
            wavelet = payload_out(bits, have.bits, index if o.index_offset else 0)
            pe.queue(pe.outbox, o.color).append(int(wavelet) | _marks(pe, o, last))
        elif o.kind == "fifo":
            pe.fifo_push(o.base, v, have)
        else:
            pe.store(o.base, o.address(i), v, have)

    @staticmethod
    def _length(dsds) -> int:
        """Spec 7.9: the shortest DSD operand (a FIFO does not bound it, nor does a fabout
        destination where another operand has a length: the SDK's programs send a whole
        memory vector through an extent-1 fabout DSD); an op with none runs once."""
        bounded = [d for d in dsds if d.kind != "fifo"]
        sized = [d for d in bounded if d.kind != "fabout"] or bounded
        return min((d.length for d in sized), default=1)

    # -- DSD operations ---------------------------------------------------------------------

    def stmt_DsdOp(self, pe: PE, s: ir.DsdOp, fr: Frame):
        if fr.in_map:
            raise map_write_error(fr)
        if s.op == "dfilt":
            self._dfilt(pe, s, fr)
        else:
            yield from self._dsd_op(pe, s, fr)
        self._tick(pe, fr, 1)
        return None

    def _config(self, pe: PE, cfg: ir.OpConfig, fr: Frame):
        """The op config's `.index` (16 bits), `.activate`, `.unblock` and `.ut_id` values."""
        def value(e):
            return None if e is None else self._int(pe, e, fr)
        index = value(cfg.index)
        return (None if index is None else index & 0xFFFF, value(cfg.activate),
                value(cfg.unblock), value(cfg.ut_id))

    def _dfilt(self, pe: PE, s: ir.DsdOp, fr: Frame) -> None:
        """`@dfilt` (`wsejax.csl.builtins.dfilt`): a `RunningOp` on its fabin (its one
        operand) whose elements are the control wavelets it takes; it drops the data."""
        what = f"@dfilt in {fr.fn}"
        _, activate, unblock, ut = self._config(pe, s.config, fr)
        fabin = self._operands(pe, [s.dest], fr, None, what)[0][1]
        op = RunningOp(what, None, ("D", fabin), [], None, [], fabin.length, 0, activate,
                       unblock, Counter({fabin.color: 1}), Counter(), -1, ut)
        op.queues = (fabin.queue,) if fabin.queue else ()
        op.dfilt = True
        self._claim(pe, op, s.site, s.config)
        pe.micro[s.site] = op

    def _dsd_op(self, pe: PE, s: ir.DsdOp, fr: Frame):
        """A DSD operation (a generator): in memory it runs at once; with fabric or FIFO
        operands it becomes a `RunningOp`."""
        spec = element_ops(self.program.fp16)[s.op]
        what = f"@{s.op} in {fr.fn}"
        cfg = s.config or _NO_CONFIG
        index, activate, unblock, ut = self._config(pe, cfg, fr)
        dest = self._operands(pe, [s.dest], fr, index, what)[0]
        srcs = self._operands(pe, s.srcs, fr, index, what)
        dsds = [o for letter, o in [dest] + srcs if letter == "D"]
        n = _fifo_bound(pe, dest, dsds, max(self._length(dsds), 0))
        streams = any(d.kind in STREAM_KINDS for d in dsds)
        if n == 0 and not streams:
            _hooks(pe, activate, unblock)
            return
        if dest[0] == "D" and dest[1].kind == "fabin":
            raise ProgramError(f"{what}: a fabin DSD is not a destination")
        if any(letter == "D" and o.kind == "fabout" for letter, o in srcs):
            raise ProgramError(f"{what}: a fabout DSD is not a source")
        for (letter, o), t in zip(srcs, spec.srcs):
            self._check_operand(pe, letter, o, n, t, fr, what)
        ptr_index = self._check_operand(pe, dest[0], dest[1], n, spec.dest, fr, what)
        scalars = [cast(o[0], dtype_of(o[0]), t) if letter == "s" else None
                   for (letter, o), t in zip(srcs, spec.srcs)]
        if not streams:
            self._memory_op(pe, spec, dest, srcs, scalars, ptr_index, n, what)
            _save_addresses(pe, _saved(pe, s), n)
            self._tick(pe, fr, n)
            _hooks(pe, activate, unblock)
            return
        src_dsds = [o for letter, o in srcs if letter == "D"]
        op = RunningOp(what, spec, dest, srcs, ptr_index, scalars, n, index or 0, activate,
                       unblock, Counter(o.color for o in src_dsds if o.kind == "fabin"),
                       Counter(o.base for o in src_dsds if o.kind == "fifo"),
                       dest[1].color if dest[0] == "D" and dest[1].kind == "fabout" else -1, ut)
        op.queues = tuple(o.queue for o in dsds if o.queue)
        op.saved = _saved(pe, s)
        if cfg.on_control is not None:
            oc = cfg.on_control
            op.on_control = (oc.action, None if oc.task is None else self._int(pe, oc.task, fr))
        self._claim(pe, op, s.site, cfg)
        if cfg.async_:
            pe.micro[s.site] = op
            return
        op.sync = True
        # spec 7.5: where a FIFO ends the op (false), a pointer destination keeps its value
        kept = pe.load(dest[1].symbol, ptr_index, spec.dest).copy() if dest[0] == "p" else None
        progressed = self._advance(pe, op)
        while not op.finished:
            yield progressed
            progressed = self._advance(pe, op)
        pe.op_ok[s.site] = op.ok
        if not op.ok and kept is not None:
            pe.store(dest[1].symbol, ptr_index, kept, spec.dest)
        self._finish(pe, op)
        self._tick(pe, fr, n)

    def _memory_op(self, pe: PE, spec, dest, srcs, scalars, ptr_index, n: int,
                   what: str) -> None:
        """The n elements of an op on memory, in order (an op of `opspec.CARRIED` passes its
        carry from each element to the next, from 0)."""
        carry = 0
        checks = self.fp_checks(pe)
        for i in range(n):
            vals = [self._read(pe, o, i, t) if letter == "D" else c
                    for (letter, o), t, c in zip(srcs, spec.srcs, scalars)]
            if checks:
                self.fp_op(pe, spec, vals, what)
            if spec.name in CARRIED:
                r, carry = spec.fn(*vals, carry)
            else:
                r = spec.fn(*vals)
            self._write(pe, dest, ptr_index, i, r, spec.dest, last=i == n - 1)

    @staticmethod
    def _claim(pe: PE, op: RunningOp, site: int, cfg: ir.OpConfig) -> None:
        """Start `op` on `pe`'s fabric: fault where its site, its microthread or its queues are
        taken by a running op; then take its queues."""
        what = op.what
        if cfg.async_ and site in pe.micro:
            raise Fault(started_while_running(what))
        if op.ut is not None:
            # spec 5.4: running operations must not share a microthread
            for other_site in sorted(pe.micro):
                other = pe.micro[other_site]
                if other_site != site and other.ut == op.ut:
                    raise Fault(microthread_clash(
                        what, other.what, op.ut if type(cfg.ut_id) is ir.Const else None))
        for color in op.need_in:
            if pe.fabin_users[color]:
                raise Fault(f"{what}: the input queue of color {color} is already read by a "
                            "running operation")
        if op.out_color >= 0 and pe.fabout_users[op.out_color]:
            raise Fault(f"{what}: the output queue of color {op.out_color} is already written "
                        "by a running operation")
        pe.fabin_users.update(op.need_in)
        pe.fabout_users[op.out_color] += 1
        if op.on_control is not None or op.dfilt:
            pe.control_takers.update(op.need_in)

    def _advance(self, pe: PE, op: RunningOp) -> bool:
        """Run `op`'s next elements while its inputs hold data and its outputs have room;
        whether any ran."""
        if op.ut in pe.blocked_uts:
            return False                  # its microthread is blocked (spec 5.2)
        if op.dfilt:
            return _filter_data(pe, op)
        ready = self._readiness(pe, op)
        start = op.done
        while op.done < op.length and ready():
            vals = [self._source(pe, op, letter, o, t, c)
                    for (letter, o), t, c in zip(op.srcs, op.spec.srcs, op.scalars)]
            if self.fp_checks(pe):
                self.fp_op(pe, op.spec, vals, op.what)
            if op.spec.name in CARRIED:     # the carry goes from each element to the next
                r, op.carry = op.spec.fn(*vals, op.carry)
            else:
                r = op.spec.fn(*vals)
            if op.dest[0] == "D" and op.dest[1].kind == "fabout" and op.dest[1].simd:
                _send_packed(pe, op, r)
            else:
                self._write(pe, op.dest, op.ptr_index, op.done, r, op.spec.dest, op.index,
                            op.done == op.length - 1)
            _zero_sources(pe, op)
            op.done += 1
        if op.done < op.length:
            _fifo_action(pe, op)
        if not op.finished and op.on_control is not None:
            _control_end(pe, op)
        return op.done > start or op.ended

    def _readiness(self, pe: PE, op: RunningOp):
        """A test of whether `op` can do one more element now: its fabric output and FIFO
        destination have room, its inboxes and FIFO sources hold data."""
        letter, dest = op.dest
        out = push = None
        if letter == "D" and dest.kind == "fabout":
            out = pe.queue(pe.outbox, dest.color)
        elif letter == "D" and dest.kind == "fifo":
            push = pe.fifos[dest.base]
        inboxes = [(pe.queue(pe.inbox, c), k) for c, k in op.need_in.items()]
        fifos = [(pe.fifos[name], k) for name, k in op.need_pop.items()]
        capacity = self.queue_capacity

        def ready() -> bool:
            return not (out is not None and len(out) >= capacity
                        or push is not None and push.count >= push.size
                        or any(data_ahead(q) < k for q, k in inboxes)
                        or any(f.count < k for f, k in fifos))
        return ready

    def _source(self, pe: PE, op: RunningOp, letter: str, o, t: DType, scalar):
        """The next element of one source of `op`."""
        if letter != "D":
            return scalar
        if o.kind == "fabin" and o.simd:
            return _receive_packed(pe, op, o, t)
        if o.kind == "fabin":
            wavelet = pe.inbox[o.color].popleft()
            return from_bits(int(payload_in(wavelet, t.bits)), t)
        if o.kind == "fifo":
            return pe.fifo_pop(o.base, t)
        return self._read(pe, o, op.done, t)

    @staticmethod
    def _finish(pe: PE, op: RunningOp) -> None:
        pe.fabin_users.subtract(op.need_in)
        if op.on_control is not None or op.dfilt:
            pe.control_takers.subtract(op.need_in)
        pe.fabout_users[op.out_color] -= 1
        _save_addresses(pe, op.saved, op.length)
        _hooks(pe, op.activate, op.unblock)

    def stmt_SetFifoLength(self, pe: PE, s: ir.SetFifoLength, fr: Frame) -> None:
        n = self._int(pe, s.length, fr) & 0xFFFF
        if s.end == "read":
            pe.fifos[s.fifo].read_len = n
        else:
            pe.fifos[s.fifo].write_len = n

    def expr_OpOk(self, pe: PE, e: ir.OpOk, fr: Frame):
        return np.bool_(pe.op_ok.get(e.site, True))

    # -- @map -------------------------------------------------------------------------------

    def stmt_Map(self, pe: PE, s: ir.Map, fr: Frame):
        """`@map` (a generator): one call per element, in order; where an input is a fabin_dsd
        or the output a fabout_dsd, each element waits for its wavelet and for room."""
        if fr.in_map:
            raise map_write_error(fr)
        f = pe.cls.function(s.fn)
        what = f"@map in {fr.fn}"
        ins = self._operands(pe, s.inputs, fr)
        out = self._operands(pe, [s.output], fr)[0] if s.output is not None else None
        dsds = [o for letter, o in ins if letter == "D"]
        if out is not None and out[0] == "D":
            dsds.append(out[1])
        if any(d.kind == "fifo" or d.kind == "fabout" and d is not out[1] for d in dsds):
            raise ProgramError(f"{what}: @map takes no FIFO, nor a fabout_dsd input")
        n = self._length(dsds)
        if n > 0:
            for (letter, o), (_, ptype) in zip(ins, f.params):
                self._check_operand(pe, letter, o, n, ptype, fr, what)
            ptr_index = None
            if out is not None:
                ptr_index = self._check_operand(pe, out[0], out[1], n, f.ret, fr, what)
            ready = self._map_ready(pe, ins, out)
            i = 0
            while i < n:
                start = i
                while i < n and ready():
                    self._map_element(pe, s.fn, f, ins, out, ptr_index, i, what, i == n - 1)
                    i += 1
                if i < n:
                    yield i > start
            self._tick(pe, fr, n)
        self._tick(pe, fr, 1)

    def _map_ready(self, pe: PE, ins, out):
        """A test of whether `@map` can do one more element now: its fabin inputs hold
        data, its fabout output has room."""
        inboxes = Counter(o.color for letter, o in ins if letter == "D" and o.kind == "fabin")
        queues = [(pe.queue(pe.inbox, c), k) for c, k in inboxes.items()]
        box = None
        if out is not None and out[0] == "D" and out[1].kind == "fabout":
            box = pe.queue(pe.outbox, out[1].color)
        capacity = self.queue_capacity

        def ready() -> bool:
            return not (box is not None and len(box) >= capacity
                        or any(data_ahead(q) < k for q, k in queues))
        return ready

    def _map_element(self, pe: PE, name: str, f: ir.Function, ins, out, ptr_index, i: int,
                     what: str, last: bool = False) -> None:
        """Element i of `@map`: read the inputs (a wavelet of each fabin input), call, write."""
        args = []
        for (letter, o), (_, ptype) in zip(ins, f.params):
            if letter != "D":
                args.append(o[0])
            elif o.kind == "fabin":
                args.append(from_bits(int(payload_in(pe.inbox[o.color].popleft(), ptype.bits)),
                                      ptype))
            else:
                args.append(self._read(pe, o, i, ptype))
        r = self._map_call(pe, f, name, args, what)
        if out is not None:
            if r is None:
                raise ProgramError(f"@map callback {name} returned no value")
            self._write(pe, out, ptr_index, i, cast(r, dtype_of(r), f.ret), f.ret, last=last)

    def _map_call(self, pe: PE, f: ir.Function, name: str, args: list, what: str):
        """Call a @map callback on one element's arguments; its return value."""
        callee = Frame(fn=name, in_map=True)
        for (pname, _), a in zip(f.params, args):
            callee.locals[pname] = a
        pe.stack.append(name)
        try:
            self._drive(self._block(pe, f.body, callee), what)
        finally:
            pe.stack.pop()
        return callee.retval


def _fifo_bound(pe: PE, dest, dsds, n: int) -> int:
    """An op's length `n` with the set read length of its FIFO source and the set write
    length of its FIFO destination (`ir.SetFifoLength`) as those operands' lengths: the
    shortest, where no other DSD operand gives one (`n` is then 1) the FIFOs'."""
    lengths = []
    for d in dsds:
        if d.kind != "fifo":
            continue
        f = pe.fifos[d.base]
        left = f.write_len if dest[0] == "D" and d is dest[1] else f.read_len
        if left is not None:
            lengths.append(left)
    if not lengths:
        return n
    if all(d.kind == "fifo" for d in dsds):
        return min(lengths)
    return min(n, *lengths)


def _fifo_action(pe: PE, op: RunningOp) -> None:
    """Spec 7.5: `op`, short of its length, finds a FIFO source empty or its FIFO destination
    full: the FIFO's action ends it (`terminate`; `test_or_suspend` of a synchronous op, whose
    builtin then gives false), faults the PE (`fault`), or lets it wait."""
    letter, dest = op.dest
    stuck = [(pe.fifos[name], "empty") for name in op.need_pop if pe.fifos[name].count == 0]
    if letter == "D" and dest.kind == "fifo":
        f = pe.fifos[dest.base]
        stuck += [(f, "full")] if f.count >= f.size else []
    for f, state in stuck:
        action = f.spec.empty_action if state == "empty" else f.spec.full_action
        if action == "fault":
            raise Fault(fifo_fault(op.what, f.spec.name, state))
        if action == "terminate" or (action == "test_or_suspend" and op.sync):
            op.ended = True
            op.ok = op.ok and action == "terminate"


def _zero_sources(pe: PE, op: RunningOp) -> None:
    """A fabout destination's `.zero`: the memory sources it names get 0 where element
    `op.done` was read."""
    letter, dest = op.dest
    if letter != "D":
        return
    for k in dest.zero:
        src_letter, o = op.srcs[k]
        if src_letter == "D" and o.is_memory:
            pe.store(o.base, o.address(op.done), op.spec.srcs[k].np.type(0), op.spec.srcs[k])


def _filter_data(pe: PE, op: RunningOp) -> bool:
    """A running `@dfilt`: drop the data wavelets of its inbox and take its control
    wavelets, one element each, until it has taken its length; whether any went."""
    q = pe.queue(pe.inbox, op.dest[1].color)
    start = len(q)
    while q and op.done < op.length:
        if q.popleft() & CONTROL:
            op.done += 1
    return len(q) < start


def _control_end(pe: PE, op: RunningOp) -> None:
    """`.on_control` (spec 5.4): a control wavelet at the front of one of the op's fabin
    inboxes ends the op; the op takes it, and its action activates or unblocks a task."""
    for color in sorted(op.need_in):
        q = pe.inbox.get(color)
        if q and q[0] & CONTROL:
            q.popleft()
            op.ended = True
            action, task = op.on_control
            _hooks(pe, task if action == "activate" else None,
                   task if action == "unblock" else None)
            return


def _hooks(pe: PE, activate, unblock) -> None:
    """The completion hooks of an op's config (spec 5.4)."""
    if activate is not None:
        pe.activate(activate)
    if unblock is not None:
        pe.blocked.discard(unblock)


def _saved(pe: PE, s: ir.DsdOp) -> tuple:
    """The `.save_address` registers among the operands of `s`."""
    names = dict.fromkeys(o.dsd.name for o in (s.dest,) + s.srcs
                          if type(o) is ir.DsdOperand and type(o.dsd) is ir.DsdVar)
    return tuple(name for name in names if pe.cls.saved_address(name))


def _save_addresses(pe: PE, names, n: int) -> None:
    """Move each `.save_address` register of `names` past the n elements an op accessed:
    the next op continues from there (spec 9). A mem1d moves by n strides; a mem4d to one past
    the last element it accessed (the doc's "one position past the end of the range")."""
    for name in names:
        d = pe.dsd[name]
        if d.kind == "mem4d":
            step = d.address(n - 1) - d.base_offset - d.offset + 1 if n > 0 else 0
        elif d.kind == "circbuf":       # the head goes around the ring
            pe.dsd[name] = replace(d, offset=(d.offset + n) % d.wrap)
            continue
        else:
            step = d.stride * n
        pe.dsd[name] = replace(d, offset=d.offset + step)


# -- `.simd_mode` -----------------------------------------------------------------------------
# Two 16-bit elements a wavelet, element 2k in the low half (`wsejax.frontend.simd`).


def _receive_packed(pe: PE, op: RunningOp, o, t: DType):
    """Element `op.done` from the wavelet at the front of a `.simd_mode` fabin's queue: its
    low half for an even element, its high half for an odd one; the wavelet is popped once
    both halves are read, or with the op's last element."""
    queue = pe.inbox[o.color]
    half = op.done % 2
    wavelet = int(queue[0])
    if half == 1 or op.done + 1 >= op.length:
        queue.popleft()
    return from_bits((wavelet >> (16 * half)) & 0xFFFF, t)


def _send_packed(pe: PE, op: RunningOp, v) -> None:
    """Element `op.done` into a `.simd_mode` fabout: an even element waits as the low half,
    an odd one completes the wavelet, which is sent; the op's last element sends what it has
    (the high half 0)."""
    letter, o = op.dest
    have = op.spec.dest
    bits = typed_bits(v, have) & 0xFFFF
    if op.done % 2 == 0:
        op.pend = bits
        if op.done + 1 < op.length:
            return
        wavelet = bits
    else:
        wavelet = op.pend | (bits << 16)
    pe.queue(pe.outbox, o.color).append(wavelet | _marks(pe, o, op.done + 1 >= op.length))


def _marks(pe: PE, o, last: bool) -> int:
    """The flags of a wavelet fabout `o` sends: CONTROL for a control wavelet, ADVANCE on the
    last wavelet of an `.advance_switch` fabout on a switched color (a static color has no
    switch to advance)."""
    flags = CONTROL if o.control else 0
    if last and o.advance and o.color in pe.switched:
        flags |= ADVANCE
    return flags
