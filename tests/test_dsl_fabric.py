"""The dataflow part of the Python API (`wsejax.dsl`): colors and routes, fabric DSDs, queues,
data tasks, op configs, FIFOs and memcpy streaming colors, checked on the IR they produce."""

from __future__ import annotations

import inspect

import pytest

from wsejax import dsl as csl
from wsejax import ir
from wsejax.errors import LayoutError, ProgramError
from wsejax.types import i16, u16


def compile_row(pe_program, width=2, arch="wse2", params=None, routes=(), **kwargs):
    """Compile `pe_program` on every PE of a `width` x 1 row; `routes` are set_color_config
    argument tuples `(x, y, color, rx, tx)` of the layout."""

    def layout():
        csl.set_rectangle(width, 1)
        for x in range(width):
            csl.set_tile_code(x, 0, pe_program, params or {})
        for x, y, color, rx, tx in routes:
            csl.set_color_config(x, y, color, rx=rx, tx=tx)

    return csl.compile(layout, arch=arch, **kwargs)


def ops_of(program: ir.Program, fn: str, cls=ir.DsdOp) -> list:
    """The statements of type `cls` in function `fn` of the first tile class."""
    body = program.classes[0].function(fn).body
    return [s for s in ir.walk_stmts(body) if isinstance(s, cls)]


def only_op(program: ir.Program, fn: str = "go") -> ir.DsdOp:
    (op,) = ops_of(program, fn)
    return op


def c16(v: int) -> ir.Const:
    return ir.Const(v, u16)


# ------------------------------------------------------------------------------------------------
# Colors and routes


def empty_program():
    pass


def test_layout_color_config_becomes_program_routes_and_is_resolved():
    p = compile_row(empty_program, width=3,
                    routes=[(0, 0, csl.get_color(3), [csl.RAMP], csl.EAST),
                            (1, 0, 3, csl.WEST, [csl.RAMP, csl.EAST, csl.RAMP]),
                            (2, 0, 3, (csl.WEST,), csl.RAMP)])
    assert p.routes == (((0, 0, 3), (("RAMP",), ("EAST",))),
                        ((1, 0, 3), (("WEST",), ("EAST", "RAMP"))),
                        ((2, 0, 3), (("WEST",), ("RAMP",))))
    assert p.resolved[3].sources.tolist() == [[0, 0]]
    assert p.resolved[3].dest_source.tolist() == [[-1, 0, 0]]
    assert p.resolved[3].hops.tolist() == [[-1, 1, 2]]


def test_local_color_config_goes_to_the_pe_program():
    def pe():
        csl.set_local_color_config(csl.get_color(4), rx=csl.RAMP, tx=[csl.RAMP])
        csl.set_local_color_config(2, rx=(), tx=())

    p = compile_row(pe, width=1)
    assert p.classes[0].routes == ((2, ((), ())), (4, (("RAMP",), ("RAMP",))))
    assert p.resolved[4].dest_source.tolist() == [[0]]


@pytest.mark.parametrize("routes, match", [
    ([(0, 0, 3, "UP", csl.EAST)], "directions"),
    ([(0, 0, 3, csl.RAMP, 7)], "directions"),
    ([(0, 0, 21, csl.RAMP, csl.EAST)], "reserved by memcpy"),
    ([(0, 0, 24, csl.RAMP, csl.EAST)], "out of range"),
    ([(2, 0, 3, csl.RAMP, csl.EAST)], "outside the 2x1 rectangle"),
    ([(0, 0, 3, csl.RAMP, csl.EAST)] * 2, "configured twice"),
    ([(1, 0, 3, csl.RAMP, (csl.RAMP, csl.EAST))], "off the edge"),  # by wsejax.routes
])
def test_bad_layout_routes(routes, match):
    with pytest.raises(LayoutError, match=match):
        compile_row(empty_program, routes=routes)


def test_layout_and_local_config_of_one_color_clash():
    def pe():
        csl.set_local_color_config(3, rx=csl.RAMP, tx=())

    with pytest.raises(LayoutError, match="configured twice"):
        compile_row(pe, routes=[(0, 0, 3, csl.RAMP, ())])


@pytest.mark.parametrize("body, match", [
    (lambda: csl.set_local_color_config(1, rx=csl.RAMP, tx="SIDEWAYS"), "directions"),
    (lambda: csl.set_local_color_config(22, rx=csl.RAMP, tx=()), "reserved by memcpy"),
    (lambda: [csl.set_local_color_config(1, rx=csl.RAMP, tx=()) for _ in range(2)],
     "configured twice"),
    (lambda: csl.get_color(24), "out of range"),
    (lambda: csl.get_color(1.0), "comptime integer"),
])
def test_bad_local_routes(body, match):
    with pytest.raises(ProgramError, match=match):
        compile_row(lambda: body(), width=1)


def test_local_color_config_belongs_at_the_top_level():
    def pe():
        @csl.fn
        def go():
            csl.set_local_color_config(1, rx=csl.RAMP, tx=())

    with pytest.raises(ProgramError, match="top level"):
        compile_row(pe, width=1)


# ------------------------------------------------------------------------------------------------
# Fabric DSDs


def mover(arch="wse2", init_queues=False, src_kw=None, dst_kw=None, op="fmovs", **op_kw):
    """A program whose function `go` moves wavelets from a fabin_dsd to a fabout_dsd."""

    def pe():
        if init_queues:
            csl.initialize_queue(csl.get_input_queue(2), color=csl.get_color(3))
            csl.initialize_queue(csl.get_output_queue(3), color=csl.get_color(4))
        src = csl.get_dsd(csl.fabin_dsd, extent=5, **(src_kw or {}))
        dst = csl.get_dsd(csl.fabout_dsd, extent=5, **(dst_kw or {}))

        @csl.fn
        def go():
            getattr(csl, op)(dst, src, **op_kw)

    return pe


def test_fabric_dsds_lower_to_fabin_and_fabout():
    p = compile_row(mover(src_kw=dict(fabric_color=csl.get_color(3),
                                      input_queue=csl.get_input_queue(2)),
                          dst_kw=dict(fabric_color=4, output_queue=csl.get_output_queue(1))))
    op = only_op(p)
    assert op.op == "fmovs" and op.config is None
    assert op.dest == ir.DsdOperand(ir.DsdLit(ir.FabOut(4, c16(5), 1, False)))
    assert op.srcs == (ir.DsdOperand(ir.DsdLit(ir.FabIn(3, c16(5), 2))),)


def test_wse3_fabric_dsds_take_the_color_of_their_queue():
    p = compile_row(mover("wse3", True, dict(input_queue=csl.get_input_queue(2)),
                          dict(output_queue=csl.get_output_queue(3))), arch="wse3")
    op = only_op(p)
    assert op.dest.dsd.dsd == ir.FabOut(4, c16(5), 3, False)
    assert op.srcs[0].dsd.dsd == ir.FabIn(3, c16(5), 2)


def test_wse2_fabin_takes_the_color_of_an_initialised_queue():
    def pe():
        q = csl.get_input_queue(3)
        csl.initialize_queue(q, color=6, priority="low")
        d = csl.get_dsd(csl.fabin_dsd, extent=2, input_queue=q)
        acc = csl.var("acc", csl.f32)

        @csl.fn
        def go():
            csl.fadds(csl.addr(acc), acc, d)

    assert only_op(compile_row(pe)).srcs[1].dsd.dsd == ir.FabIn(6, c16(2), 3)


@pytest.mark.parametrize("arch, src_kw, init, match", [
    ("wse2", {}, False, "needs a fabric_color"),
    ("wse3", dict(fabric_color=3), True, "needs an input_queue"),
    ("wse3", dict(input_queue=csl.InputQueue(4)), True, "not initialised"),
    ("wse3", dict(input_queue=csl.InputQueue(2), fabric_color=5), True, "differs from color 3"),
    ("wse2", dict(input_queue=csl.OutputQueue(2), fabric_color=1), False, "get_input_queue"),
    ("wse2", dict(output_queue=csl.OutputQueue(2), fabric_color=1), False, "no property"),
    ("wse2", dict(fabric_color=1, wavelet_index_offset=True), False, "wavelet_index_offset"),
    ("wse2", dict(fabric_color=1, input_queue=csl.InputQueue(0)), False, "reserved by memcpy"),
    ("wse3", dict(input_queue=csl.InputQueue(1)), True, "reserved by memcpy"),
    ("wse2", dict(fabric_color=23), False, "reserved by memcpy"),
])
def test_bad_fabin_dsds(arch, src_kw, init, match):
    pe = mover(arch, init, src_kw, dict(output_queue=csl.OutputQueue(3), fabric_color=4))
    with pytest.raises(ProgramError, match=match):
        compile_row(pe, arch=arch)


def test_fabric_dsds_have_no_memory_properties():
    def pe():
        a = csl.var("a", csl.f32[4])
        csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=1, base_address=a)

    with pytest.raises(ProgramError, match="no property 'base_address'"):
        compile_row(pe)


def test_memory_dsds_have_no_fabric_properties():
    def pe():
        a = csl.var("a", csl.f32[4])
        csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4, fabric_color=1)

    with pytest.raises(ProgramError, match="no property 'fabric_color'"):
        compile_row(pe)


def test_fabric_dsd_setters():
    def pe():
        out = csl.var("out", csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=2))
        a = csl.var("a", csl.f32[8])

        @csl.fn
        def go(n: csl.u16):
            d = csl.set_dsd_length(out, n)
            csl.fmovs(d, csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=8))
            out.set(csl.set_dsd_length(out, 3))

    p = compile_row(pe)
    assert p.classes[0].dsd_vars == (("out", ir.DsdLit(ir.FabOut(2, c16(1)))),)
    op = only_op(p)
    assert op.dest == ir.DsdOperand(ir.SetLength(ir.DsdVar("out"), ir.Local("%arg0_go", u16)))
    (assign,) = ops_of(p, "go", ir.DsdAssign)
    assert assign.value == ir.SetLength(ir.DsdVar("out"), c16(3))


def test_fabric_dsd_as_a_function_argument():
    def pe():
        a = csl.var("a", csl.f32[3])

        @csl.fn
        def send(d: csl.fabout_dsd):
            csl.fmovs(d, csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=3))

        @csl.fn
        def go():
            send(csl.get_dsd(csl.fabout_dsd, extent=3, fabric_color=8))

    p = compile_row(pe)
    assert p.classes[0].function("send").params == (("%arg0_send", "dsd"),)
    (call,) = ops_of(p, "go", ir.Call)
    assert call.args == (ir.DsdLit(ir.FabOut(8, c16(3))),)


@pytest.mark.parametrize("setter", [
    lambda d, a: csl.increment_dsd_offset(d, 1, csl.f32),
    lambda d, a: csl.set_dsd_base_addr(d, a),
    lambda d, a: csl.set_dsd_stride(d, 2),
])
def test_memory_setters_refuse_fabric_dsds(setter):
    def pe():
        a = csl.var("a", csl.f32[4])
        d = csl.get_dsd(csl.fabin_dsd, extent=4, fabric_color=1)

        @csl.fn
        def go():
            setter(d, a)

    with pytest.raises(ProgramError, match="fabin_dsd|mem1d_dsd only"):
        compile_row(pe)


def test_fabin_cannot_be_the_destination():
    def pe():
        src = csl.get_dsd(csl.fabin_dsd, extent=5, fabric_color=1)
        a = csl.var("a", csl.f32[5])

        @csl.fn
        def go():
            csl.fmovs(src, csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=5))

    with pytest.raises(ProgramError, match="fabin_dsd receives"):
        compile_row(pe)


def test_fabout_cannot_be_a_source():
    def pe():
        out = csl.get_dsd(csl.fabout_dsd, extent=5, fabric_color=1)
        a = csl.var("a", csl.f32[5])

        @csl.fn
        def go():
            csl.fmovs(csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=5), out)

    with pytest.raises(ProgramError, match="fabout_dsd sends"):
        compile_row(pe)


def test_wse3_takes_one_fabin_per_op():
    def pe():
        for q, c in ((2, 3), (3, 4)):
            csl.initialize_queue(csl.get_input_queue(q), color=c)
        a = csl.get_dsd(csl.fabin_dsd, extent=5, input_queue=csl.get_input_queue(2))
        b = csl.get_dsd(csl.fabin_dsd, extent=5, input_queue=csl.get_input_queue(3))
        out = csl.var("out", csl.f32[5])

        @csl.fn
        def go():
            csl.fadds(csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=5), a, b)

    with pytest.raises(ProgramError, match="at most one fabin_dsd"):
        compile_row(pe, arch="wse3")


def test_map_with_a_fabric_input_needs_a_typed_callback():
    def pe(typed):
        src = csl.get_dsd(csl.fabin_dsd, extent=3, fabric_color=1)
        out = csl.var("out", csl.f32[3])
        dst = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=3)

        @csl.fn
        def twice(v: csl.f32) -> csl.f32:
            return v + v

        @csl.fn
        def go():
            csl.map(twice if typed else (lambda v: v + v), src, dst)

    (m,) = ops_of(compile_row(pe, params=dict(typed=True)), "go", ir.Map)
    assert m.inputs == (ir.DsdOperand(ir.DsdLit(ir.FabIn(1, c16(3)))),)
    with pytest.raises(ProgramError, match="typed parameters"):
        compile_row(pe, params=dict(typed=False))


# ------------------------------------------------------------------------------------------------
# Queues


@pytest.mark.parametrize("arch, body, match", [
    ("wse2", lambda: [csl.initialize_queue(csl.get_input_queue(2), color=c) for c in (1, 2)],
     "initialised twice"),
    ("wse2", lambda: csl.initialize_queue(csl.get_input_queue(0), color=1), "reserved by memcpy"),
    ("wse2", lambda: csl.initialize_queue(csl.get_output_queue(0)), "reserved by memcpy"),
    ("wse3", lambda: csl.initialize_queue(csl.get_input_queue(1), color=1), "reserved by memcpy"),
    ("wse2", lambda: csl.initialize_queue(csl.get_input_queue(2)), "needs a color"),
    ("wse3", lambda: csl.initialize_queue(csl.get_output_queue(2)), "needs a color"),
    ("wse2", lambda: csl.initialize_queue(csl.get_output_queue(2), color=1), "takes no config"),
    ("wse3", lambda: csl.initialize_queue(csl.get_input_queue(2), color=1, priority="high"),
     "no priority"),
    ("wse2", lambda: csl.initialize_queue(csl.get_input_queue(2), color=1, priority="top"),
     "priority must be"),
    ("wse2", lambda: [csl.initialize_queue(csl.get_input_queue(q), color=5) for q in (2, 3)],
     "bound to input queue 2"),
    ("wse2", lambda: csl.initialize_queue(csl.get_input_queue(2), color=22),
     "reserved by memcpy"),
    ("wse2", lambda: csl.initialize_queue(csl.get_color(2), color=1), "takes a queue"),
    ("wse2", lambda: csl.get_input_queue(8), "out of range"),
    ("wse2", lambda: csl.get_output_queue(6), "out of range"),
])
def test_bad_queues(arch, body, match):
    with pytest.raises(ProgramError, match=match):
        compile_row(lambda: body(), width=1, arch=arch)


def test_wse3_has_output_queues_6_and_7():
    def pe():
        csl.initialize_queue(csl.get_output_queue(7), color=1)

    compile_row(pe, width=1, arch="wse3")
    with pytest.raises(ProgramError, match="out of range"):
        compile_row(pe, width=1, arch="wse2")


def test_initialize_queue_belongs_at_the_top_level():
    def pe():
        @csl.fn
        def go():
            csl.initialize_queue(csl.get_input_queue(2), color=1)

    with pytest.raises(ProgramError, match="top level"):
        compile_row(pe, width=1)


# ------------------------------------------------------------------------------------------------
# Data tasks


def test_wse2_data_task_is_bound_to_its_color():
    def pe():
        total = csl.var("total", csl.f32)
        c = csl.get_color(3)

        @csl.task
        def recv(v: csl.f32):
            total.set(total + v)

        @csl.task
        def pair(data: csl.i16, index: csl.i16):
            total.set(total + csl.as_(csl.f32, data + index))

        csl.bind_data_task(recv, csl.get_data_task_id(c))
        csl.bind_data_task(pair, csl.get_data_task_id(5))
        csl.block(c)

    cls = compile_row(pe).classes[0]
    assert cls.tasks == (ir.Task("recv", "data", 3, 3), ir.Task("pair", "data", 5, 5))
    assert cls.function("recv").params == (("%arg0_recv", csl.f32),)
    assert [t for _, t in cls.function("pair").params] == [i16, i16]
    assert cls.blocked == (3,)


def test_wse3_data_task_is_bound_to_its_input_queue_color():
    def pe():
        q = csl.get_input_queue(2)
        total = csl.var("total", csl.u32)

        @csl.task
        def recv(v: csl.u32):
            total.set(total + v)

        csl.bind_data_task(recv, csl.get_data_task_id(q))
        csl.initialize_queue(q, color=csl.get_color(9))     # after the binding: still found
        csl.block(q)

    cls = compile_row(pe, arch="wse3").classes[0]
    assert cls.tasks == (ir.Task("recv", "data", 2, 9),)
    assert cls.blocked == (2,)


def data_task_program(arch, params, source, bind="data", init=True, ctl=None):
    def pe():
        if init and arch == "wse3":
            csl.initialize_queue(csl.get_input_queue(2), color=3)

        def body(*args):
            pass
        body.__name__ = "recv"
        body.__signature__ = inspect.Signature(
            [inspect.Parameter(f"p{k}", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=t)
             for k, t in enumerate(params)])
        t = csl.task(body)
        ident = source()
        if bind == "data":
            csl.bind_data_task(t, ident)
        else:
            csl.bind_local_task(t, ident)
        if ctl:
            ctl(ident)

    return pe


@pytest.mark.parametrize("arch, params, source, bind, match", [
    ("wse2", (csl.i32, csl.i32), lambda: csl.get_data_task_id(3), "data",
     "task recv: .*takes 2 of 32, 32 bits"),
    ("wse2", (), lambda: csl.get_data_task_id(3), "data", "no bits"),
    ("wse2", (csl.u8,), lambda: csl.get_data_task_id(3), "data", "1 of 8 bits"),
    ("wse2", (csl.f32,), lambda: csl.get_data_task_id(csl.get_input_queue(2)), "data",
     "not an input queue"),
    ("wse3", (csl.f32,), lambda: csl.get_data_task_id(csl.get_color(3)), "data",
     "comes from an input queue"),
    ("wse2", (csl.f32,), lambda: csl.get_data_task_id(21), "data", "reserved by memcpy"),
    ("wse3", (csl.f32,), lambda: csl.get_data_task_id(csl.get_input_queue(1)), "data",
     "reserved by memcpy"),
    ("wse2", (csl.f32,), lambda: csl.get_local_task_id(4), "data", "data task ID"),
    ("wse2", (csl.f32,), lambda: csl.get_local_task_id(4), "local", "takes no parameters"),
    ("wse2", (), lambda: csl.get_data_task_id(3), "local", "local task ID"),
    ("wse2", (), lambda: csl.get_local_task_id(28), "local", "reserved by memcpy"),
    ("wse3", (), lambda: csl.get_local_task_id(5), "local", "out of range on wse3"),
])
def test_bad_task_bindings(arch, params, source, bind, match):
    with pytest.raises(ProgramError, match=match):
        compile_row(data_task_program(arch, params, source, bind), width=1, arch=arch)


def test_wse3_data_task_on_an_uninitialised_queue():
    pe = data_task_program("wse3", (csl.f32,), lambda: csl.get_data_task_id(
        csl.get_input_queue(4)))
    with pytest.raises(ProgramError, match="never initialised"):
        compile_row(pe, width=1, arch="wse3")


def test_data_and_local_task_ids_share_one_space():
    def pe():
        @csl.task
        def recv(v: csl.f32):
            pass

        @csl.task
        def tick():
            pass

        csl.bind_data_task(recv, csl.get_data_task_id(4))
        csl.bind_local_task(tick, csl.get_local_task_id(4))

    with pytest.raises(ProgramError, match="bound twice"):
        compile_row(pe, width=1)


@pytest.mark.parametrize("arch, ctl, match", [
    ("wse2", lambda i: csl.activate(i), "local task ID"),
    ("wse2", lambda i: csl.activate(csl.get_color(3)), "local task ID"),
    ("wse2", lambda i: csl.block(csl.get_input_queue(2)), "named by its color"),
    ("wse3", lambda i: csl.unblock(csl.get_color(3)), "named by its input queue"),
])
def test_bad_task_control(arch, ctl, match):
    source = (lambda: csl.get_data_task_id(3)) if arch == "wse2" else (
        lambda: csl.get_data_task_id(csl.get_input_queue(2)))
    with pytest.raises(ProgramError, match=match):
        compile_row(data_task_program(arch, (csl.f32,), source, ctl=ctl), width=1, arch=arch)


def test_runtime_block_and_unblock_of_a_color():
    def pe():
        c = csl.get_color(6)

        @csl.task
        def recv(v: csl.f32):
            csl.block(c)
            csl.unblock(recv)

        csl.bind_data_task(recv, csl.get_data_task_id(c))

    body = compile_row(pe, width=1).classes[0].function("recv").body
    assert body == (ir.TaskCtl("block", c16(6)), ir.TaskCtl("unblock", c16(6)))


# ------------------------------------------------------------------------------------------------
# Op config


def config_program(arch="wse2", memory_only=False, **op_kw):
    def pe():
        buf = csl.var("buf", csl.f32[4])
        mem = csl.get_dsd(csl.mem1d_dsd, base_address=buf, extent=4)
        if arch == "wse3":
            csl.initialize_queue(csl.get_output_queue(2), color=5)
            out = csl.get_dsd(csl.fabout_dsd, extent=4, output_queue=csl.get_output_queue(2))
        else:
            out = csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=5)
        c = csl.get_color(7)

        @csl.task
        def done():
            pass

        @csl.task
        def recv(v: csl.f32):
            pass

        csl.bind_local_task(done, csl.get_local_task_id(10))
        if arch == "wse2":
            csl.bind_data_task(recv, csl.get_data_task_id(c))

        @csl.fn
        def go(k: csl.u16):
            kw = {key: (v(k, done, c) if callable(v) else v) for key, v in op_kw.items()}
            csl.fmovs(mem if memory_only else out, mem, **kw)

    return pe


@pytest.mark.parametrize("kw, want", [
    (dict(), None),
    (dict(async_=False), None),
    (dict(async_=True), ir.OpConfig(async_=True)),
    (dict(async_=True, activate=lambda k, t, c: t), ir.OpConfig(True, activate=c16(10))),
    (dict(activate=lambda k, t, c: csl.get_local_task_id(12)), ir.OpConfig(activate=c16(12))),
    (dict(async_=True, unblock=lambda k, t, c: c), ir.OpConfig(True, unblock=c16(7))),
    (dict(unblock=lambda k, t, c: csl.get_data_task_id(c)), ir.OpConfig(unblock=c16(7))),
    (dict(unblock=lambda k, t, c: t), ir.OpConfig(unblock=c16(10))),
    (dict(index=lambda k, t, c: k), ir.OpConfig(index=ir.Local("%arg0_go", u16))),
    (dict(index=9), ir.OpConfig(index=c16(9))),
    (dict(index=lambda k, t, c: csl.as_(csl.u8, k)),
     ir.OpConfig(index=ir.Cast(ir.Cast(ir.Local("%arg0_go", u16), csl.u8), u16))),
])
def test_op_config(kw, want):
    assert only_op(compile_row(config_program(**kw), width=1)).config == want


@pytest.mark.parametrize("kw, memory_only, match", [
    (dict(activate=lambda k, t, c: t, unblock=lambda k, t, c: t), False, "at most one"),
    (dict(async_=True), True, "needs a fabric or FIFO operand"),
    (dict(async_=1), False, "True or False"),
    (dict(activate=lambda k, t, c: c), False, "local task ID"),
    (dict(activate=lambda k, t, c: csl.get_data_task_id(c)), False, "local task ID"),
    (dict(unblock=lambda k, t, c: 3), False, "takes a task ID"),
    (dict(index=lambda k, t, c: csl.as_(csl.i16, k)), False, "expected u16"),
    (dict(index=70000), False, "does not fit"),
])
def test_bad_op_config(kw, memory_only, match):
    with pytest.raises(ProgramError, match=match):
        compile_row(config_program(memory_only=memory_only, **kw), width=1)


def test_async_fabin_needs_an_input_queue():
    def pe(queue):
        acc = csl.var("acc", csl.f32[2])
        src = csl.get_dsd(csl.fabin_dsd, extent=2, fabric_color=3,
                          input_queue=csl.get_input_queue(2) if queue else None)

        @csl.fn
        def go():
            csl.fmovs(csl.get_dsd(csl.mem1d_dsd, base_address=acc, extent=2), src, async_=True)

    assert only_op(compile_row(pe, params=dict(queue=True))).config == ir.OpConfig(True)
    with pytest.raises(ProgramError, match="needs an input_queue"):
        compile_row(pe, params=dict(queue=False))


def test_wavelet_index_offset_needs_an_index():
    def pe(with_index):
        buf = csl.var("buf", csl.i16[8])
        mem = csl.get_dsd(csl.mem1d_dsd, base_address=buf, extent=4, wavelet_index_offset=True)
        out = csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=2, wavelet_index_offset=True)

        @csl.fn
        def go():
            csl.mov16(out, mem, **({"index": 2} if with_index else {}))

    op = only_op(compile_row(pe, params=dict(with_index=True)))
    assert op.dest.dsd.dsd == ir.FabOut(2, c16(4), None, True)
    assert op.srcs[0].dsd.dsd.wavelet_index_offset is True
    assert op.config == ir.OpConfig(index=c16(2))
    with pytest.raises(ProgramError, match="so the operation needs an index"):
        compile_row(pe, params=dict(with_index=False))


def test_activate_by_a_task_bound_after_the_function():
    def pe():
        buf = csl.var("buf", csl.f32[4])
        out = csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=5,
                          output_queue=csl.get_output_queue(1))

        @csl.fn
        def go():
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=buf, extent=4),
                      async_=True, activate=later)

        @csl.task
        def later():
            pass

        csl.bind_local_task(later, csl.get_local_task_id(20))

    assert only_op(compile_row(pe)).config == ir.OpConfig(True, activate=c16(20))


# ------------------------------------------------------------------------------------------------
# FIFOs


def fifo_program(use):
    def pe():
        buf = csl.var("buf", csl.f32[16])
        other = csl.var("other", csl.f32[8])

        @csl.task
        def pushed():
            pass

        @csl.task
        def popped():
            pass

        fifo = csl.allocate_fifo(buf, activate_push=pushed,
                                 activate_pop=csl.get_local_task_id(11))
        fifo2 = csl.allocate_fifo(other)
        csl.bind_local_task(pushed, csl.get_local_task_id(10))
        csl.bind_local_task(popped, csl.get_local_task_id(11))
        src = csl.get_dsd(csl.fabin_dsd, extent=16, fabric_color=1,
                          input_queue=csl.get_input_queue(2))
        out = csl.get_dsd(csl.fabout_dsd, extent=16, fabric_color=2,
                          output_queue=csl.get_output_queue(1))

        @csl.fn
        def go():
            use(fifo, fifo2, src, out)

    return pe


def test_allocate_fifo_and_fifo_operands():
    def use(fifo, fifo2, src, out):
        csl.fmovs(fifo, src, async_=True)
        csl.fmovs(out, fifo, async_=True)

    p = compile_row(fifo_program(use))
    assert p.classes[0].fifos == (ir.Fifo("buf", "buf", 10, 11), ir.Fifo("other", "other"))
    push, pop = ops_of(p, "go")
    assert push.dest == ir.DsdOperand(ir.FifoRef("buf"))
    assert pop.srcs == (ir.DsdOperand(ir.FifoRef("buf")),)
    assert push.site != pop.site


@pytest.mark.parametrize("use, match", [
    (lambda f, g, s, o: csl.fadds(o, f, s), "cannot be the first"),
    (lambda f, g, s, o: (csl.fadds(o, s, f), csl.fadds(f, g, f)), "at most one source"),
    (lambda f, g, s, o: csl.map(lambda v: v, f, o), "does not take FIFOs"),
    (lambda f, g, s, o: csl.mov16(o, f), "16-bit"),
])
def test_bad_fifo_use(use, match):
    with pytest.raises(ProgramError, match=match):
        compile_row(fifo_program(use))


@pytest.mark.parametrize("body, match", [
    (lambda b, s: csl.allocate_fifo(s), "global array"),
    (lambda b, s: [csl.allocate_fifo(b) for _ in range(2)], "already holds a FIFO"),
    (lambda b, s: csl.allocate_fifo(b, activate_push=csl.get_data_task_id(3)), "local task ID"),
    (lambda b, s: csl.allocate_fifo(b, activate_pop=3), "local task ID or a task"),
    (lambda b, s: csl.allocate_fifo(csl.var("bytes", csl.u8[4])), "16- or 32-bit"),
])
def test_bad_allocate_fifo(body, match):
    def pe():
        body(csl.var("buf", csl.f32[4]), csl.var("s", csl.f32))

    with pytest.raises(ProgramError, match=match):
        compile_row(pe, width=1)


def test_fifo_hook_must_be_a_bound_task():
    def pe():
        @csl.task
        def never_bound():
            pass

        csl.allocate_fifo(csl.var("buf", csl.f32[4]), activate_push=never_bound)

    with pytest.raises(ProgramError, match="not bound"):
        compile_row(pe, width=1)


# ------------------------------------------------------------------------------------------------
# memcpy streaming colors


def test_streaming_colors_reach_the_program():
    p = compile_row(empty_program, h2d_colors=(csl.get_color(2),), d2h_colors=[4, 6])
    assert p.streams == ((2, "h2d"), (4, "d2h"), (6, "d2h"))
    assert compile_row(empty_program).streams == ()
    assert compile_row(empty_program, h2d_colors=5).streams == ((5, "h2d"),)


@pytest.mark.parametrize("kw, routes, match", [
    (dict(h2d_colors=(1, 2, 3, 4, 5)), (), "at most 4"),
    (dict(h2d_colors=(21,)), (), "reserved by memcpy"),
    (dict(d2h_colors=(3, 3)), (), "given twice"),
    (dict(h2d_colors=(3,), d2h_colors=(3,)), (), "both"),
    (dict(h2d_colors=(3,)), [(0, 0, 3, csl.RAMP, ())], "may not configure"),
    (dict(d2h_colors=("3",)), (), "takes a color"),
])
def test_bad_streaming_colors(kw, routes, match):
    with pytest.raises(LayoutError, match=match):
        compile_row(empty_program, routes=routes, **kw)


def test_a_fabout_zero_names_its_sources():
    p = compile_row(_zero_mover())
    op = only_op(p)
    assert op.dest.dsd.dsd.zero == (1,)
    with pytest.raises(ProgramError, match="fabout_dsd zero takes 'first_source' and/or "
                       "'second_source', got 'third'"):
        compile_row(_zero_mover(("third",)))
    with pytest.raises(ProgramError, match="the fabout_dsd's .zero names the first source, "
                       "which is not a memory DSD here"):
        compile_row(_zero_mover(("first_source",)))


def _zero_mover(zero=("second_source",)):
    """`go` adds a fabin to a memory array and sends the sums on a fabout with `zero`."""

    def pe():
        a = csl.var("a", csl.f32[5])
        src = csl.get_dsd(csl.fabin_dsd, extent=5, fabric_color=3)
        dst = csl.get_dsd(csl.fabout_dsd, extent=5, fabric_color=4, zero=zero)

        @csl.fn
        def go():
            csl.fadds(dst, src, csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=5))

    return pe


def test_fifo_actions_are_checked_per_arch():
    def pe(**actions):
        def program():
            buf = csl.var("buf", csl.f32[4])
            csl.allocate_fifo(buf, **actions)
        return program

    compile_row(pe(empty_action="suspend", full_action="suspend"), arch="wse3")
    compile_row(pe(empty_action="test_or_suspend"))
    with pytest.raises(ProgramError, match=r"allocate_fifo: .full_action is not supported on "
                       "wse2"):
        compile_row(pe(full_action="suspend"))
    compile_row(pe(empty_action="terminate", full_action="fault"), arch="wse3")
    with pytest.raises(ProgramError, match=r"allocate_fifo: .empty_action .fault is not "
                       "supported on wse2"):
        compile_row(pe(empty_action="fault"))
