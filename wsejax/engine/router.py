"""The router: one tick of wavelets from the PEs' outboxes to the inboxes their routes reach.

Contract. For each routed color, `ColorRoutes.dest_source` (`wsejax.routes`) names the source
PE whose wavelets a PE's ramp receives. In one tick every source sends the same n wavelets,
oldest first, to all of its destinations at once (multicast), where n is its outbox count
capped by the free room of its fullest destination inbox (back-pressure: a wavelet leaves only
when every destination can take it). `Router.__call__` computes, from the outbox counts, the
inbox room and the first `cap` wavelets of every outbox, how many wavelets each source sends,
how many each destination receives, and which; the engine then pops and pushes its rings.

Mechanism. The `[H, W]` grid is split into `DY x DX` shards of `hl x wl` PEs, as the engine's
`("y", "x")` mesh splits the state (one shard without a mesh). The routed colors are handled
together: a shard's *channels* are its (PE, color) pairs, numbered `(ly * wl + lx) * C + c`
(`L = hl * wl * C` of them). Every (source, destination) pair has a shard offset
`o = destination shard - source shard`; the offsets other than (0, 0) that occur form the
static set O, and the build (numpy) makes, for each o in O:

- `send[o]` `[DY, DX, K_o]`: the channels of each shard whose source has a destination in the
  shard at +o, in increasing order, padded with L (no channel);

and, for the whole grid, `gather` `[H, W, C]`: where a destination channel finds its source's
data in the shard-local concatenation `[the shard's own L channels; what arrived from each
offset in O, K_o rows each]` (-1: the channel receives nothing), and `is_source` `[H, W, C]`.

A tick runs shard-local (inside `jax.shard_map` over the mesh, `lax.ppermute` across shards):

1. back-pressure: the free room of every destination channel is reduced by `segment_min` into
   the rows of the concatenation its data will come from; the rows of offset o go back to
   their source shards by a ppermute of -o, where `send[o]` says which source each row is;
2. each source sends `n = min(outbox count, room of its fullest destination)`;
3. forward: each shard packs n and the first `cap` wavelets of the channels in `send[o]`,
   ppermutes them by +o, and every destination channel gathers its row of the concatenation.

Two ppermutes per offset in O, whatever the number of colors; each goes only between the shard
pairs with traffic at that offset, and only on ticks where some shard holds a wavelet for
another (one all-reduce of a flag decides; when none does, every source with a remote
destination sends 0 whatever its destinations' room, so skipping the exchange changes nothing).
Without a mesh there are no offsets: the same function is a `segment_min` and a gather over the
whole grid, with no collective.
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

from wsejax.routes import ColorRoutes

__all__ = ["Router", "build_router"]

AXES = ("y", "x")


@dataclass(frozen=True, eq=False)
class Router:
    """Static routing tables of the routed colors over a grid split by `mesh` (None: one
    shard). Build with `build_router`."""

    colors: tuple            # the routed colors, in channel order
    mesh: Mesh | None
    offsets: tuple           # ((oy, ox), ...): the shard offsets with traffic, O
    links: tuple             # per offset: ((source shard, destination shard), ...) linear ids
    send: tuple              # per offset: [DY, DX, K_o] int32 channels sent, padded with L
    gather: np.ndarray       # [H, W, C] int32: row of the concatenation, or -1
    is_source: np.ndarray    # [H, W, C] bool: a source with at least one destination

    def __call__(self, count, free, words):
        """One tick of routing.

        Args:
          count: `[H, W, C]` int32, wavelets in each outbox.
          free: `[H, W, C]` int32, free room of each inbox.
          words: `[H, W, C, cap]` uint32, the first cap wavelets of each outbox, oldest first.

        Returns:
          `(n, k, got)`: `n` `[H, W, C]` int32 wavelets each outbox sends, `k` `[H, W, C]`
          int32 wavelets each inbox receives, `got` `[H, W, C, cap]` uint32 what it receives
          (the first k are valid).
        """
        args = (count, free, words, self.gather, self.is_source) + self.send
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
        # every source with a remote destination sends 0 whatever its destinations' room, and the
        # ppermutes are skipped). One conditional for every offset: XLA:CPU, running such a
        # loop loaded from the persistent compilation cache, has been seen to confuse
        # collective-permutes placed in separate conditionals.
        flat = count.reshape(-1)
        sending = jnp.stack([jnp.any(jnp.take(flat, s.reshape(-1), mode="fill", fill_value=0) > 0)
                             for s in send]).any()
        busy = lax.pmax(sending.astype(jnp.int32), AXES) > 0
        return lax.cond(busy, functools.partial(self._step, True),
                        functools.partial(self._step, False),
                        count, free, words, gather, is_source, *send)

    def _step(self, exchange: bool, count, free, words, gather, is_source, *send):
        """The tick, with the ppermutes across shards (`exchange`) or without (what would
        arrive from other shards is zeros)."""
        hl, wl, c, cap = words.shape
        L = hl * wl * c
        send = [s.reshape(-1) for s in send]
        rows = L + sum(s.shape[0] for s in send)
        g = gather.reshape(-1)
        # 1. back-pressure: the room of the fullest destination, into the rows it reads
        room = jax.ops.segment_min(free.reshape(-1), jnp.where(g >= 0, g, rows),
                                   num_segments=rows + 1)
        minfree = room[:L]
        base = L
        for links, idx in zip(self.links, send) if exchange else ():
            back = lax.ppermute(room[base:base + idx.shape[0]], AXES,
                                [(d, s) for s, d in links])
            minfree = minfree.at[idx].min(back, mode="drop")
            base += idx.shape[0]
        n = jnp.where(is_source.reshape(-1), jnp.minimum(count.reshape(-1), minfree), 0)
        # 2. forward: n and the words of every channel, local rows first
        packet = jnp.concatenate([lax.bitcast_convert_type(n, jnp.uint32)[:, None],
                                  words.reshape(L, cap)], axis=1)
        parts = [packet]
        for links, idx in zip(self.links, send):
            out = jnp.take(packet, idx, axis=0, mode="fill", fill_value=0)
            parts.append(lax.ppermute(out, AXES, list(links)) if exchange
                         else jnp.zeros_like(out))
        rows_in = jnp.concatenate(parts, axis=0) if len(parts) > 1 else packet
        got = jnp.take(rows_in, jnp.maximum(g, 0), axis=0, mode="clip")
        k = jnp.where(g >= 0, lax.bitcast_convert_type(got[:, 0], jnp.int32), 0)
        return (n.reshape(hl, wl, c), k.reshape(hl, wl, c),
                got[:, 1:].reshape(hl, wl, c, cap))


def build_router(routes: dict[int, ColorRoutes], colors, shape: tuple[int, int],
                 mesh: Mesh | None) -> Router:
    """The routing tables of `colors` (each with at least one destination in `routes`) over
    a `shape = (H, W)` grid split by `mesh` (a `("y", "x")` mesh dividing it, or None)."""
    h, w = shape
    ny, nx = (1, 1) if mesh is None else (mesh.shape["y"], mesh.shape["x"])
    hl, wl = h // ny, w // nx
    nc = len(colors)
    L = hl * wl * nc
    if not nc:
        return Router((), mesh, (), (), (), np.zeros((h, w, 0), np.int32),
                      np.zeros((h, w, 0), bool))
    # every (destination, source) pair of every color
    dest, src, chan = [], [], []
    for c, col in enumerate(colors):
        r = routes[col]
        ys, xs = np.nonzero(r.dest_source >= 0)
        s = r.sources[r.dest_source[ys, xs]]
        dest.append(np.stack([ys, xs], 1))
        src.append(s[:, ::-1])      # (x, y) -> (y, x)
        chan.append(np.full(ys.size, c))
    dest = np.concatenate(dest).astype(np.int64).reshape(-1, 2)
    src = np.concatenate(src).astype(np.int64).reshape(-1, 2)
    chan = np.concatenate(chan).astype(np.int64)
    blk = np.array([hl, wl])
    off = dest // blk - src // blk
    src_shard = src // blk
    src_chan = ((src[:, 0] % hl) * wl + src[:, 1] % wl) * nc + chan
    is_source = np.zeros((h, w, nc), bool)
    is_source[src[:, 0], src[:, 1], chan] = True
    gather = np.full((h, w, nc), -1, np.int32)
    local = (off == 0).all(1)
    gather[dest[local, 0], dest[local, 1], chan[local]] = src_chan[local]
    offsets, links, send = [], [], []
    base = L
    for o in sorted({tuple(v) for v in off[~local].tolist()}):
        sel = (off == o).all(1)
        shard = src_shard[sel, 0] * nx + src_shard[sel, 1]
        key, inv = np.unique(shard * L + src_chan[sel], return_inverse=True)
        key_shard, key_chan = key // L, key % L
        pos = np.arange(key.size) - np.searchsorted(key_shard, key_shard, "left")
        k = int(pos.max()) + 1
        table = np.full((ny, nx, k), L, np.int32)
        table[key_shard // nx, key_shard % nx, pos] = key_chan
        d = dest[sel]
        gather[d[:, 0], d[:, 1], chan[sel]] = base + pos[inv]
        senders = np.unique(key_shard).tolist()
        offsets.append(o)
        links.append(tuple((s, s + o[0] * nx + o[1]) for s in senders))
        send.append(table)
        base += k
    return Router(tuple(colors), mesh, tuple(offsets), tuple(links), tuple(send), gather,
                  is_source)
