"""The reference interpreter as the oracle of the engine's fabric (DESIGN §8).

Hypothesis generates small dataflow programs: messages along rows and columns (multicast to
some PEs on the way), of random lengths, sent synchronously or asynchronously (with an
`.activate` hook), received by synchronous or asynchronous fabric-input operations or by data
tasks, in a random order per PE, and chains: a PE receives a message asynchronously and the
completion activates a task that relays it as the next message. A message sent synchronously
may end with a control wavelet that runs a control task on every PE receiving it. Both the
engine and the reference run them from the same host data, at a random queue capacity; they
must agree on every memory, every clock, and on the deadlocks some orders make (the same PEs
stuck). A second generator routes through a switch: a sender steers segments of data
between two neighbours with control wavelets (SWITCH_ADV, SWITCH_RST, NOP) or `advance_switch`
fabouts, and each receiver's config may carry a filter (counter, sparse_counter, range).
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import started
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import DeadlockError, FabricFault
from wsejax import dsl as csl
from wsejax.reference import Reference

DIRS = {"EAST": (1, 0, "WEST"), "WEST": (-1, 0, "EAST"), "SOUTH": (0, 1, "NORTH"),
        "NORTH": (0, -1, "SOUTH")}


def _message(draw, w, h, color, src, length):
    sx, sy = src
    options = [d for d, (dx, dy, _) in DIRS.items() if 0 <= sx + dx < w and 0 <= sy + dy < h]
    if not options:
        return None
    d = draw(st.sampled_from(options))
    dx, dy, _ = DIRS[d]
    reach = 1
    while 0 <= sx + (reach + 1) * dx < w and 0 <= sy + (reach + 1) * dy < h:
        reach += 1
    hops = draw(st.integers(1, reach))
    path = [(sx + k * dx, sy + k * dy) for k in range(1, hops + 1)]
    # the last PE on the path receives; the others may (multicast)
    receivers = [p for p in path[:-1] if draw(st.booleans())] + [path[-1]]
    modes = {p: draw(st.sampled_from(["sync", "async", "task"])) for p in receivers}
    send = draw(st.sampled_from(["sync", "async"]))
    return dict(color=color, src=src, dir=d, path=path, modes=modes, length=length,
                send=send, relay=None, mark=send == "sync" and draw(st.booleans()))


@st.composite
def dataflow(draw):
    """A grid, messages, an order of each PE's steps, a queue capacity. A message may be
    relayed: the last PE of the previous message receives it asynchronously, and the
    completion activates a task that sends what arrived on as this message (a chain)."""
    w = draw(st.integers(1, 4))
    h = draw(st.integers(1, 3))
    messages = []
    for color in range(1, draw(st.integers(1, 4)) + 1):
        prev = messages[-1] if messages else None
        m = None
        if prev is not None and draw(st.booleans()):
            end = prev["path"][-1]
            m = _message(draw, w, h, color, end, prev["length"])
            if m is not None:
                prev["modes"][end] = "relay"
                m["relay"] = prev["color"]
        if m is None:
            src = (draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)))
            m = _message(draw, w, h, color, src, draw(st.integers(1, 6)))
        if m is not None:
            messages.append(m)
    order = {(x, y): draw(st.permutations(range(len(messages) * 2)))
             for y in range(h) for x in range(w)}
    return w, h, messages, order, draw(st.integers(1, 4))


def receiver(color, acc, cnt):
    """A data task storing twice each wavelet's value at the next place of `acc`."""
    def recv(v: csl.f32):
        acc[cnt] = v * 2.0
        cnt.set(cnt + 1)

    recv.__name__ = recv.__qualname__ = f"recv{color}"
    return recv


def marker(color, sent):
    """A local task recording that the async send of message `color` completed."""
    def done():
        sent.set(sent | (1 << color))

    done.__name__ = done.__qualname__ = f"done{color}"
    return done


def sender(out, mem, how, done, mark=None):
    """The step sending `mem` on fabout `out`: synchronous, or async activating `done`;
    `mark` `(control fabout, payload)`: then a control wavelet."""
    def send():
        if how == "sync":
            csl.fmovs(out, mem)
        else:
            csl.fmovs(out, mem, async_=True, activate=done)
        if mark is not None:
            csl.mov32(mark[0], csl.as_(csl.u32, mark[1]))

    return send


def control_id(color: int):
    return csl.get_control_task_id(40 + color)


def mark_receiver(color, marks):
    """A control task recording that message `color`'s control wavelet arrived."""
    def arrived():
        marks.set(marks | (1 << color))

    arrived.__name__ = arrived.__qualname__ = f"arrived{color}"
    return arrived


def relayer(color, send):
    """A local task that sends message `color` on (what the previous message brought)."""
    def relay():
        send()

    relay.__name__ = relay.__qualname__ = f"relay{color}"
    return relay


def build(w, h, messages, order):
    """One tile class per PE: its sends and receives, in `order`, then unblock_cmd_stream."""
    def pe(x, y):
        n = max((m["length"] for m in messages), default=1)
        src = csl.var("src", csl.f32[n])
        acc = {m["color"]: csl.var(f"acc{m['color']}", csl.f32[m["length"]]) for m in messages}
        cnt = {m["color"]: csl.var(f"cnt{m['color']}", csl.u32) for m in messages}
        sent = csl.var("sent", csl.u32)
        marks = csl.var("marks", csl.u32)
        steps = []
        relays = {}
        for m in messages:
            c, n_m = m["color"], m["length"]
            if m["src"] == (x, y):
                oq = csl.get_output_queue(1 + c % 4)
                out = csl.get_dsd(csl.fabout_dsd, extent=n_m, fabric_color=c, output_queue=oq)
                mark = None
                if m["mark"]:
                    mark = (csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=c,
                                        output_queue=oq, control=True),
                            csl.control.encode_control_task_payload(control_id(c)))
                base = src if m["relay"] is None else acc[m["relay"]]
                mem = csl.get_dsd(csl.mem1d_dsd, base_address=base, extent=n_m)
                # one completion task per message, setting its bit: two completions in one
                # tick activate a task once, so a shared counter would depend on timing
                done = csl.task(marker(c, sent))
                csl.bind_local_task(done, csl.get_local_task_id(16 + c))
                send = sender(out, mem, m["send"], done, mark)
                if m["relay"] is None:
                    steps.append(send)
                else:
                    relay = csl.task(relayer(c, send))
                    csl.bind_local_task(relay, csl.get_local_task_id(10 + c))
                    relays[m["relay"]] = relay
        for m in messages:
            c, n_m = m["color"], m["length"]
            mode = m["modes"].get((x, y))
            if mode is not None and m["mark"]:
                csl.bind_control_task(csl.task(mark_receiver(c, marks)), control_id(c))
            if mode == "task":
                csl.bind_data_task(csl.task(receiver(c, acc[c], cnt[c])),
                                   csl.get_data_task_id(csl.get_color(c)))
            elif mode is not None:
                fin = csl.get_dsd(csl.fabin_dsd, extent=n_m, fabric_color=c,
                                  input_queue=csl.get_input_queue(1 + c % 4))
                dst = csl.get_dsd(csl.mem1d_dsd, base_address=acc[c], extent=n_m)
                if mode == "sync":
                    steps.append(lambda dst=dst, fin=fin: csl.fadds(dst, dst, fin))
                elif mode == "async":
                    steps.append(lambda dst=dst, fin=fin: csl.fmovs(dst, fin, async_=True))
                else:
                    steps.append(lambda dst=dst, fin=fin, t=relays[c]: csl.fmovs(
                        dst, fin, async_=True, activate=t))

        @csl.fn
        def go():
            for k in order[(x, y)]:
                if k < len(steps):
                    steps[k]()
            csl.unblock_cmd_stream()

        for s in (src, sent, marks, *acc.values(), *cnt.values()):
            csl.export_symbol(s)
        csl.export_symbol(go)

    def layout():
        csl.set_rectangle(w, h)
        for y in range(h):
            for x in range(w):
                csl.set_tile_code(x, y, pe, {"x": x, "y": y})
        for m in messages:
            c, (sx, sy) = m["color"], m["src"]
            back = DIRS[m["dir"]][2]
            csl.set_color_config(sx, sy, c, rx=csl.RAMP, tx=m["dir"])
            for k, p in enumerate(m["path"]):
                last = k == len(m["path"]) - 1
                tx = ([csl.RAMP] if p in m["modes"] else []) + ([] if last else [m["dir"]])
                csl.set_color_config(p[0], p[1], c, rx=back, tx=tx)
        csl.export_name("src", csl.pointer(csl.f32), True)
        csl.export_name("sent", csl.pointer(csl.u32), True)
        csl.export_name("marks", csl.pointer(csl.u32), True)
        for m in messages:
            csl.export_name(f"acc{m['color']}", csl.pointer(csl.f32), True)
            csl.export_name(f"cnt{m['color']}", csl.pointer(csl.u32), True)
        csl.export_name("go", csl.fn_type())

    return csl.compile(layout)


def _outcome(fn):
    try:
        fn()
    except (DeadlockError, FabricFault) as err:
        return err
    return None


SETTINGS = dict(deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=8, **SETTINGS)
@given(dataflow(), st.integers(0, 2**31 - 1))
def test_generated_dataflow_programs_agree(case, seed):
    check_agreement(case, seed)


@pytest.mark.slow
@settings(max_examples=80, **SETTINGS)
@given(dataflow(), st.integers(0, 2**31 - 1))
def test_many_generated_dataflow_programs_agree(case, seed):
    check_agreement(case, seed)


def check_agreement(case, seed):
    w, h, messages, order, cap = case
    program = build(w, h, messages, order)
    rng = np.random.default_rng(seed)
    n = max((m["length"] for m in messages), default=1)
    src = rng.standard_normal(w * h * n).astype(np.float32)
    runner = started(program, queue_capacity=cap)
    ref = Reference(program, queue_capacity=cap)
    runner.memcpy_h2d(runner.get_id("src"), src.copy(), 0, 0, w, h, n)
    ref.memcpy_h2d("src", src.view(np.uint32).copy(), 0, 0, w, h, n)
    got = _outcome(lambda: runner.launch("go"))
    want = _outcome(lambda: ref.launch("go"))
    assert type(got) is type(want), (got, want)
    if got is not None:
        assert got.pes == want.pes
    for y in range(h):
        for x in range(w):
            mem = ref.memory(x, y)
            for name, want_v in mem.items():
                slot = runner.engine.plan.symbol_slot[int(program.class_of[y, x])][name]
                got_v = np.asarray(runner.state.mem[slot][y, x]).reshape(-1)
                want_v = np.asarray(want_v).reshape(-1)
                np.testing.assert_array_equal(got_v.view(np.uint8), want_v.view(np.uint8),
                                              err_msg=f"{name} at PE ({x}, {y})")
    np.testing.assert_array_equal(np.asarray(runner.state.cycles), ref.cycles)
    if got is None:
        # every message arrived whole: the receivers hold what numpy predicts
        srcs = src.reshape(h, w, n)
        sent = {}
        for m in messages:
            if m["relay"] is None:
                sx, sy = m["src"]
                sent[m["color"]] = srcs[sy, sx, :m["length"]]
            else:
                sent[m["color"]] = sent[m["relay"]]
            for (x, y), mode in m["modes"].items():
                acc = ref.memory(x, y)[f"acc{m['color']}"].reshape(-1)
                want_acc = sent[m["color"]] * np.float32(2) if mode == "task" else \
                    sent[m["color"]]
                np.testing.assert_array_equal(acc, want_acc)
                if m["mark"]:
                    assert int(ref.memory(x, y)["marks"].reshape(-1)[0]) >> m["color"] & 1


# ------------------------------------------------------------------------------------------------
# Switched routes and filters: a sender steers its messages between two neighbours


COMMANDS = {"adv": csl.control.opcode.SWITCH_ADV, "rst": csl.control.opcode.SWITCH_RST,
            "nop": csl.control.opcode.NOP}


@st.composite
def switched(draw):
    """A sender with two in-grid neighbours, its switch (position 0 sends to the first,
    position 1 to the second, maybe position 2 back to the first), segments of data each
    followed by a control wavelet (SWITCH_ADV, SWITCH_RST or NOP) or sent through an
    `advance_switch` fabout, and a filter (or none) on each receiver."""
    w, h = draw(st.integers(2, 3)), 2     # every PE has two neighbours or more
    src = (draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)))
    dirs = [d for d, (dx, dy, _) in DIRS.items()
            if 0 <= src[0] + dx < w and 0 <= src[1] + dy < h]
    d0, d1 = draw(st.permutations(dirs))[:2]
    how = st.sampled_from(["adv", "rst", "nop", "dsd", "dsd"])
    segments = [(draw(st.integers(1, 3)), draw(how)) for _ in range(draw(st.integers(2, 4)))]
    switches = {"pos1": {"tx": d1}, "ring_mode": draw(st.booleans()),
                "pop_mode": draw(st.sampled_from(["no_pop", "always_pop"]))}
    if draw(st.booleans()):
        switches["pos2"] = {"tx": d0}
    filters = {}
    for d in {d0, d1}:
        kind = draw(st.sampled_from([None, "counter", "sparse_counter", "range"]))
        if kind == "range":
            filters[d] = {"kind": kind, "min_idx": draw(st.integers(0, 2)),
                          "max_idx": draw(st.integers(0, 3))}
        elif kind is not None:
            filters[d] = {"kind": kind, "count_data": True, "limit1": draw(st.integers(1, 4)),
                          "max_counter": draw(st.integers(0, 3))}
    return w, h, src, (d0, d1), segments, switches, filters, draw(st.integers(1, 4))


def build_switched(w, h, src, dirs, segments, switches, filters):
    """The sender runs the segments; each neighbour in `dirs` records what it receives."""
    c = 3
    total = sum(n for n, _ in segments)
    targets = {(src[0] + DIRS[d][0], src[1] + DIRS[d][1]): d for d in dirs}

    def pe(x, y):
        src_v = csl.var("src", csl.f32[total])
        acc = csl.var("acc", csl.f32[total])
        cnt = csl.var("cnt", csl.u32)
        color = csl.get_color(c)
        steps = []
        if (x, y) == src:
            oq = csl.get_output_queue(1)
            ctl = csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=color, output_queue=oq,
                              control=True)
            at = 0
            for n, how in segments:
                out = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=color,
                                  output_queue=oq, advance_switch=how == "dsd")
                mem = csl.get_dsd(csl.mem1d_dsd, base_address=src_v, offset=at, extent=n)
                steps.append(lambda out=out, mem=mem: csl.fmovs(out, mem))
                if how != "dsd":
                    word = csl.control.encode_single_payload(COMMANDS[how], True, None, 0)
                    steps.append(lambda w=word: csl.mov32(ctl, csl.as_(csl.u32, w)))
                at += n
        elif (x, y) in targets:
            def recv(v: csl.f32):
                acc[cnt] = v
                cnt.set(cnt + 1)

            csl.bind_data_task(csl.task(recv), csl.get_data_task_id(color))

        @csl.fn
        def go():
            for s in steps:
                s()
            csl.unblock_cmd_stream()

        for s in (src_v, acc, cnt):
            csl.export_symbol(s)
        csl.export_symbol(go)

    def layout():
        csl.set_rectangle(w, h)
        for y in range(h):
            for x in range(w):
                csl.set_tile_code(x, y, pe, {"x": x, "y": y})
        csl.set_color_config(src[0], src[1], c, rx=csl.RAMP, tx=dirs[0], switches=switches)
        for (x, y), d in targets.items():
            csl.set_color_config(x, y, c, rx=DIRS[d][2], tx=csl.RAMP, filter=filters.get(d))
        for name, t in (("src", csl.f32), ("acc", csl.f32), ("cnt", csl.u32)):
            csl.export_name(name, csl.pointer(t), True)
        csl.export_name("go", csl.fn_type())

    return csl.compile(layout)


@settings(max_examples=4, **SETTINGS)
@given(switched(), st.integers(0, 2**31 - 1))
def test_generated_switched_programs_agree(case, seed):
    w, h, src, dirs, segments, switches, filters, cap = case
    program = build_switched(w, h, src, dirs, segments, switches, filters)
    total = sum(n for n, _ in segments)
    data = np.random.default_rng(seed).standard_normal(w * h * total).astype(np.float32)
    runner = started(program, queue_capacity=cap)
    ref = Reference(program, queue_capacity=cap)
    runner.memcpy_h2d(runner.get_id("src"), data.copy(), 0, 0, w, h, total)
    ref.memcpy_h2d("src", data.view(np.uint32).copy(), 0, 0, w, h, total)
    compare(program, runner, ref, w, h)


def compare(program, runner, ref, w, h):
    """Launch `go` on both; the same outcome, memories and clock."""
    got = _outcome(lambda: runner.launch("go"))
    want = _outcome(lambda: ref.launch("go"))
    assert type(got) is type(want), (got, want)
    if got is not None:
        assert got.pes == want.pes
    for y in range(h):
        for x in range(w):
            for name, want_v in ref.memory(x, y).items():
                slot = runner.engine.plan.symbol_slot[int(program.class_of[y, x])][name]
                got_v = np.asarray(runner.state.mem[slot][y, x]).reshape(-1)
                np.testing.assert_array_equal(got_v.view(np.uint8),
                                              np.asarray(want_v).reshape(-1).view(np.uint8),
                                              err_msg=f"{name} at PE ({x}, {y})")
    np.testing.assert_array_equal(np.asarray(runner.state.cycles), ref.cycles)
