"""The router: one tick of wavelets from the PEs' outboxes to the inboxes their routes reach.

Contract. For each routed color, `ColorRoutes.dest_source` (`wsejax.routes`) names the source
PE (and, with color swapping, the color it sent on) whose wavelets a PE's ramp receives. In
one tick every source sends the same n wavelets, oldest first, to all of its destinations at
once (multicast), where n is its outbox count
capped by the free room of its fullest destination inbox (back-pressure: a wavelet leaves only
when every destination can take it). `Router.__call__` computes, from the outbox counts, the
inbox room and the first `cap` wavelets of every outbox, how many wavelets each source sends,
how many each destination receives, and which; the engine then pops and pushes its rings.

Mechanism. The `[H, W]` grid is split into `DY x DX` shards of `hl x wl` PEs, as the engine's
`("y", "x")` mesh splits the state (one shard without a mesh). Every (source, destination) pair
of a color has a shard offset `o = destination shard - source shard`; the offsets other than
(0, 0) that occur, over all colors, form the static set O. The build (numpy) makes, for each o
in O:

- `send[o]` `[DY, DX, K_o]`: for each shard, the PEs (`ly * wl + lx`) whose source has a
  destination in the shard at +o, one segment per color (`sizes[o][c]` entries, padded with
  `hl * wl`: no PE), in increasing order;

and, for the whole grid, `gather` `[H, W, C]`: where each destination finds its source's data
among the rows of its color in its shard, `[the shard's own hl * wl PEs; the rows of that color
arrived from each offset in O, sizes[o][c] each]` (-1: it receives nothing), and `is_source`.

A tick runs shard-local (inside `jax.shard_map` over the mesh, `lax.ppermute` across shards):

1. back-pressure: the free room of every destination is reduced by `segment_min` into the row
   its data will come from; the arrived rows of offset o (every color's) go back to their
   source shards by one ppermute of -o, where `send[o]` says which source each row is;
2. each source sends `n = min(outbox count, room of its fullest destination)`;
3. forward: each shard packs n and the first `cap` wavelets of the PEs in `send[o]` (every
   color's), ppermutes them by +o, and every destination gathers its row.

Color swapping (`wsejax.routes`: a ramp of color c may receive what a CE sent on c's partner
p = c ^ 1, `ColorRoutes.source_colors`): the rows of a color are its sources' (those sent on it),
and a destination of c reading a source of p reads p's rows, placed after c's own in what c's
destinations index (`Router.partner[c] = p`); its room goes into p's rows. Colors with no such
destination build and run exactly as without swapping.

Two ppermutes per offset in O, whatever the number of colors; each goes only between the shard
pairs with traffic at that offset, and only on ticks where some shard holds a wavelet for
another (one all-reduce of a flag decides; when none does, every source with a remote
destination sends 0 whatever its destinations' room, so skipping the exchange changes nothing).
Without a mesh there are no offsets: the same function is, per color, a `segment_min` and a
gather over the whole grid, with no collective.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from wsejax.routes import ColorRoutes, source_colors

__all__ = ["Router", "build_router", "routed_channels"]

AXES = ("y", "x")


@dataclass(frozen=True, eq=False)
class Router:
    """Static routing tables of the routed colors over a grid split by `mesh` (None: one
    shard). Build with `build_router`."""

    colors: tuple            # the routed colors (index c of the tables)
    mesh: Mesh | None
    offsets: tuple           # ((oy, ox), ...): the shard offsets with traffic, O
    links: tuple             # per offset: ((source shard, destination shard), ...) linear ids
    sizes: tuple             # per offset: rows of each color, (K_o0, K_o1, ...)
    send: tuple              # per offset: [DY, DX, K_o] int32 PEs sent, padded with hl * wl
    gather: np.ndarray       # [H, W, C] int32: the row a destination reads, or -1
    is_source: np.ndarray    # [H, W, C] bool: a source with at least one destination
    partner: tuple = ()      # per color: the color whose rows follow its own in the rows its
    #                          destinations read (color swapping), or -1; () for none

    def __call__(self, count, free, words):
        """One tick of routing, for every routed color (lists in `colors` order).

        Args:
          count: per color, `[H, W]` int32: wavelets in each outbox.
          free: per color, `[H, W]` int32: free room of each inbox.
          words: per color, `[H, W, cap]` uint32: the first cap wavelets of each outbox,
            oldest first.

        Returns:
          `(n, k, got)`, lists per color: `n` `[H, W]` int32 wavelets each outbox sends, `k`
          `[H, W]` int32 wavelets each inbox receives, `got` `[H, W, cap]` uint32 what it
          receives (the first k are valid).
        """
        args = (list(count), list(free), list(words), self.gather, self.is_source) + self.send
        if self.mesh is None:
            return self._tick(*args)
        spec = P(*AXES)
        return jax.shard_map(self._tick, mesh=self.mesh, in_specs=(spec,) * len(args),
                             out_specs=(spec, spec, spec))(*args)

    def _tick(self, count, free, words, gather, is_source, *send):
        """The shard-local tick: arrays are one shard's (`[hl, wl, ...]`, `send[o]`
        `[1, 1, K_o]`)."""
        if not self.offsets:
            return self._step(False, count, free, words, gather, is_source, *send)
        # does any shard hold a wavelet for another this tick? (one reduction; if none does,
        # every source with a remote destination sends 0 whatever its destinations' room, and
        # the ppermutes are skipped). One conditional for every offset: XLA:CPU, running such
        # a loop loaded from the persistent compilation cache, has been seen to confuse
        # collective-permutes placed in separate conditionals.
        sending = [jnp.any(jnp.take(count[c].reshape(-1), seg, mode="fill", fill_value=0) > 0)
                   for idx, sizes in zip(send, self.sizes)
                   for c, seg in _segments(idx.reshape(-1), sizes)]
        busy = lax.pmax(jnp.stack(sending).any().astype(jnp.int32), AXES) > 0
        return lax.cond(busy, functools.partial(self._step, True),
                        functools.partial(self._step, False),
                        count, free, words, gather, is_source, *send)

    def _step(self, exchange: bool, count, free, words, gather, is_source, *send):
        """The tick, with the ppermutes across shards (`exchange`) or without (what would
        arrive from other shards is zeros)."""
        hl, wl, nc = gather.shape
        npe = hl * wl
        cap = words[0].shape[-1]
        send = [idx.reshape(-1) for idx in send]
        g = [gather[:, :, c].reshape(-1) for c in range(nc)]
        rows = [npe + sum(sizes[c] for sizes in self.sizes) for c in range(nc)]
        mate = self.partner or (-1,) * nc
        seen = [rows[c] + (rows[mate[c]] if mate[c] >= 0 else 0) for c in range(nc)]
        # 1. back-pressure: the room of the fullest destination, into the row it reads
        room = [jax.ops.segment_min(free[c].reshape(-1), jnp.where(g[c] >= 0, g[c], seen[c]),
                                    num_segments=seen[c] + 1) for c in range(nc)]
        room = _cross_room(room, rows, seen, mate)
        minfree = [r[:npe] for r in room]
        at = [npe] * nc     # where the rows of the offset start, per color
        for links, idx, sizes in zip(self.links, send, self.sizes):
            if exchange:
                back = lax.ppermute(jnp.concatenate([room[c][at[c]:at[c] + sizes[c]]
                                                     for c in range(nc)]),
                                    AXES, [(d, s) for s, d in links])
                i = 0
                for c, seg in _segments(idx, sizes):
                    minfree[c] = minfree[c].at[seg].min(back[i:i + seg.shape[0]], mode="drop")
                    i += seg.shape[0]
            at = [a + k for a, k in zip(at, sizes)]
        n = [jnp.where(is_source[:, :, c].reshape(-1),
                       jnp.minimum(count[c].reshape(-1), minfree[c]), 0) for c in range(nc)]
        # 2. forward: each destination reads n and the words of its source's row, among its
        #    shard's own PEs or the rows that arrived (n and the words of a row sent to
        #    another shard travel together)
        words = [wd.reshape(npe, cap) for wd in words]
        n_in, words_in = [[x] for x in n], [[x] for x in words]
        for links, idx, sizes in zip(self.links, send, self.sizes):
            packet = jnp.concatenate([jnp.concatenate([
                lax.bitcast_convert_type(jnp.take(n[c], seg, mode="fill", fill_value=0),
                                         jnp.uint32)[:, None],
                jnp.take(words[c], seg, axis=0, mode="fill", fill_value=0)], axis=1)
                for c, seg in _segments(idx, sizes)])
            packet = lax.ppermute(packet, AXES, list(links)) if exchange \
                else jnp.zeros_like(packet)
            i = 0
            for c, seg in _segments(idx, sizes):
                part = packet[i:i + seg.shape[0]]
                n_in[c].append(lax.bitcast_convert_type(part[:, 0], jnp.int32))
                words_in[c].append(part[:, 1:])
                i += seg.shape[0]
        n_in, words_in = _cross_rows(n_in, mate), _cross_rows(words_in, mate)
        k, got = [], []
        for c in range(nc):
            src = jnp.maximum(g[c], 0)
            k.append(jnp.where(g[c] >= 0, jnp.concatenate(n_in[c])[src], 0).reshape(hl, wl))
            got.append(jnp.concatenate(words_in[c])[src].reshape(hl, wl, cap))
        return [x.reshape(hl, wl) for x in n], k, got


def _cross_room(room, rows, seen, part):
    """Color swapping: the room of the destinations of color c that read rows of its partner
    p (those after c's own rows) goes to p's rows."""
    out = list(room)
    for c, p in enumerate(part):
        if p >= 0:
            out[p] = out[p].at[:rows[p]].min(room[c][rows[c]:seen[c]])
    return out


def _cross_rows(parts, part):
    """Color swapping: a color's rows, then its partner's (a list of arrays per color)."""
    if all(p < 0 for p in part):
        return parts
    return [parts[c] + parts[p] if p >= 0 else parts[c] for c, p in enumerate(part)]


def routed_channels(routes: dict[int, ColorRoutes], sending) -> list:
    """The colors the router moves wavelets on: each color of `sending` some ramp receives
    from, and each color whose ramps receive from one of them (its own, or with color
    swapping its pair's other)."""
    out = set()
    for col, r in routes.items():
        sent = source_colors(r)[r.dest_source[r.dest_source >= 0]]
        sent = set(np.unique(sent).tolist()) & set(sending)
        if sent:
            out |= sent | {col}
    return sorted(out)


def _segments(idx, sizes):
    """`(color, its segment of idx)` for each color with rows in `sizes`."""
    out, i = [], 0
    for c, size in enumerate(sizes):
        if size:
            out.append((c, idx[i:i + size]))
        i += size
    return out


def build_router(routes: dict[int, ColorRoutes], colors, shape: tuple[int, int],
                 mesh: Mesh | None, sending=None) -> Router:
    """The routing tables of `colors` (`routed_channels`) over a `shape = (H, W)` grid split
    by `mesh` (a `("y", "x")` mesh dividing it, or None). Only wavelets sent on a color of
    `sending` (default: `colors`) are routed."""
    h, w = shape
    ny, nx = (1, 1) if mesh is None else (mesh.shape["y"], mesh.shape["x"])
    hl, wl = h // ny, w // nx
    npe = hl * wl
    nc = len(colors)
    is_source = np.zeros((h, w, nc), bool)
    gather = np.full((h, w, nc), -1, np.int32)
    if not nc:
        return Router((), mesh, (), (), (), (), gather, is_source)
    dest, src, chan, schan = _pairs(routes, colors, colors if sending is None else sending)
    blk = np.array([hl, wl])
    off = dest // blk - src // blk
    src_shard = (src // blk) @ np.array([nx, 1])
    src_pe = (src % blk) @ np.array([wl, 1])
    is_source[src[:, 0], src[:, 1], schan] = True
    local = (off == 0).all(1)
    gather[dest[local, 0], dest[local, 1], chan[local]] = src_pe[local]
    offsets, links, sizes, send = [], [], [], []
    at = np.full(nc, npe)       # where the next offset's rows start, per color
    for o in sorted({tuple(v) for v in off[~local].tolist()}):
        segments, counts, senders = [], [], set()
        for c in range(nc):
            sel = (off == o).all(1) & (schan == c)
            # the sources of color c, per shard, numbered from 0 in increasing order
            key, inv = np.unique(src_shard[sel] * npe + src_pe[sel], return_inverse=True)
            shard, pe = key // npe, key % npe
            pos = np.arange(key.size) - np.searchsorted(shard, shard, "left")
            k = int(pos.max()) + 1 if key.size else 0
            table = np.full((ny, nx, k), npe, np.int32)
            table[shard // nx, shard % nx, pos] = pe
            d = dest[sel]
            gather[d[:, 0], d[:, 1], chan[sel]] = at[c] + pos[inv]
            segments.append(table)
            counts.append(k)
            senders |= set(shard.tolist())
        offsets.append(o)
        links.append(tuple((s, s + o[0] * nx + o[1]) for s in sorted(senders)))
        sizes.append(tuple(counts))
        send.append(np.concatenate(segments, axis=2))
        at += counts
    partner = _partners(gather, dest, chan, schan, at)
    return Router(tuple(colors), mesh, tuple(offsets), tuple(links), tuple(sizes), tuple(send),
                  gather, is_source, partner)


def _pairs(routes, colors, sending):
    """Every (destination, source) pair: `[N, 2]` (y, x) each, the index in `colors` of the
    destination's color and of the color the source sent on."""
    index = {col: c for c, col in enumerate(colors)}
    dest, src, chan, schan = [], [], [], []
    for c, col in enumerate(colors):
        r = routes[col]
        ys, xs = np.nonzero(r.dest_source >= 0)
        i = r.dest_source[ys, xs]
        sent = source_colors(r)[i]
        keep = np.isin(sent, [x for x in sending if x in index])
        ys, xs, i, sent = ys[keep], xs[keep], i[keep], sent[keep]
        s = r.sources[i]
        dest.append(np.stack([ys, xs], 1))
        src.append(s[:, ::-1])      # (x, y) -> (y, x)
        chan.append(np.full(ys.size, c))
        schan.append(np.array([index[x] for x in sent.tolist()], np.int64))
    return (np.concatenate(dest).astype(np.int64).reshape(-1, 2),
            np.concatenate(src).astype(np.int64).reshape(-1, 2),
            np.concatenate(chan).astype(np.int64), np.concatenate(schan).astype(np.int64))


def _partners(gather, dest, chan, schan, rows) -> tuple:
    """Color swapping: the destinations of a color reading a source of another color read
    that color's rows, placed after their own color's `rows[c]`; per color, that other color
    (at most one: the pair's other) or -1. () when no destination crosses colors."""
    cross = chan != schan
    if not cross.any():
        return ()
    partner = [-1] * len(rows)
    for c, p in set(zip(chan[cross].tolist(), schan[cross].tolist())):
        if partner[c] not in (-1, p):
            raise ValueError(f"router: color index {c} receives from two other colors")
        partner[c] = p
    d = dest[cross]
    gather[d[:, 0], d[:, 1], chan[cross]] += rows[chan[cross]].astype(np.int32)
    return tuple(partner)
