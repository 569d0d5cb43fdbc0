"""Neighbour sampling on the connectivity graph, with the spatial neighbourhood alongside.

Ours, vectorised over each hop with torch ops on the training device (no pyg-lib /
torch-sparse): a batch costs time in proportion to the subgraph it samples, never to the data
set or the implied edge count, and on a GPU it is drawn there, with nothing built on the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from . import _ops as ops
from ._device import GraphOnDevice
from ._factored import FactoredGraph

SpatialSampling = Literal["neighbors", "induced"]


@dataclass
class Subgraph:
    """A sampled subgraph: global ids of its nodes (seeds first) and its edges, local ids,
    as int64 tensors on the sampler's device.
    """

    n_id: torch.Tensor
    n_seeds: int
    connectome_edges: tuple[torch.Tensor, torch.Tensor] | None  # (target, source)
    spatial_edges: tuple[torch.Tensor, torch.Tensor]


class NeighborSampler:
    """Mini-batches of seed cells with their sampled connectivity and spatial neighbourhoods.

    Parameters
    ----------
    connectome
        Incoming connectivity edges (cell level or factored), or ``None`` for spatial only.
    spatial
        Incoming spatial edges.
    fanouts
        Connectivity neighbours sampled per node at each hop (``-1``: all).
    batch_size
        Seed cells per batch.
    spatial_sampling
        ``"neighbors"``: the seeds and their first-hop connectivity neighbours also get up to
        ``spatial_fanout`` sampled spatial neighbours, added to the subgraph, so the spatial
        encoder sees a real neighbourhood where it matters most; every other node keeps its
        spatial edges among the subgraph's nodes. A batch then holds at most
        ``batch_size * (1 + fanouts[0]) * (1 + spatial_fanout)`` nodes beyond the connectivity
        sample, however large the data.
        ``"induced"``: only the spatial edges among the nodes the connectivity sampler picked
        (the original's behaviour).
    spatial_fanout
        Spatial neighbours per seed or first-hop node with ``spatial_sampling="neighbors"``
        (``-1``: all).
    seed
        Seeds are shuffled every epoch with a generator derived from ``(seed, epoch)``, so an
        epoch's batches do not depend on what ran before (resumable, and shardable by rank).
    device
        Where the graphs are held and sampled (the training device). The same seed gives the
        same batches on the CPU in any process; a GPU draws its own random numbers (the same
        on every run with the same seed).
    """

    def __init__(
        self,
        connectome: FactoredGraph | None,
        spatial: FactoredGraph,
        fanouts=(5, 3, 3),
        batch_size: int = 64,
        spatial_sampling: SpatialSampling = "neighbors",
        spatial_fanout: int = 8,
        seed: int = 0,
        device="cpu",
    ):
        self.device = torch.device(device)
        self.connectome = None if connectome is None else GraphOnDevice(connectome, device)
        self.spatial = GraphOnDevice(spatial, device)
        self.fanouts = list(fanouts)
        self.batch_size = int(batch_size)
        self.spatial_sampling = spatial_sampling
        self.spatial_fanout = spatial_fanout
        self.seed = seed
        self.n_cells = spatial.n_cells
        # global -> local ids of the batch being sampled, reset after each batch
        self._local = ops.as_index(np.full(self.n_cells, -1), self.device)

    def __len__(self) -> int:
        return -(-self.n_cells // self.batch_size)

    def n_batches(self, rank: int = 0, world_size: int = 1) -> int:
        """Batches per epoch on ``rank`` of ``world_size``."""
        return -(-len(range(rank, self.n_cells, world_size)) // self.batch_size)

    def epoch(
        self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> Iterator[Subgraph]:
        """The batches of one epoch (this rank's shard of the shuffled seeds).

        Batch ``b`` is drawn with a generator seeded by ``(seed, epoch, rank, b)``, so an epoch
        can be resumed at any batch (``start``) and gives the batches it would have given.
        """
        order = ops.permutation(ops.generator([self.seed, epoch], self.device), self.n_cells,
                                self.device)
        order = order[rank::world_size]
        for b, (lo, hi) in enumerate(batch_bounds(len(order), self.batch_size)):
            if b < start:
                continue
            yield self.sample(order[lo:hi], ops.generator([self.seed, epoch, rank, b],
                                                          self.device))

    def sample(self, seeds, generator) -> Subgraph:
        """Sample the subgraph around ``seeds`` (global cell ids) with ``generator``
        (:func:`spacon.graph._ops.generator` for the sampler's device).
        """
        nodes = [ops.as_index(seeds, self.device)]
        local = self._local
        n = len(nodes[0])
        local[nodes[0]] = ops.arange(0, n, local)
        con_edges = None
        try:
            if self.connectome is not None:
                targets, sources = [], []
                frontier = nodes[0]
                for fanout in self.fanouts:
                    t, s = self.connectome.sample(frontier, fanout, generator)
                    new, n = self._add(s, n, nodes)
                    targets.append(local[frontier[t]])
                    sources.append(local[s])
                    frontier = new
                con_edges = (ops.cat(targets), ops.cat(sources))
            if self.spatial_sampling == "neighbors":
                # seeds and their first connectivity hop get sampled spatial neighbours
                # (added to the subgraph); outer nodes keep the spatial edges among the
                # subgraph, so its size stays bounded by the fan-outs, not the data
                inner = ops.cat(nodes[:2])
                t, s = self.spatial.sample(inner, self.spatial_fanout, generator)
                _, n = self._add(s, n, nodes)
                outer = ops.arange(len(inner), n, local)
                t2, s2 = self.spatial.neighbors(ops.cat(nodes)[outer])
                inside = local[s2] >= 0
                spa_edges = (ops.cat([t, outer[t2[inside]]]),
                             ops.cat([local[s], local[s2[inside]]]))
            else:
                t, s = self.spatial.neighbors(ops.cat(nodes))
                inside = local[s] >= 0
                spa_edges = (t[inside], local[s[inside]])
            n_id = ops.cat(nodes)
        finally:
            for part in nodes:
                local[part] = -1
        return Subgraph(n_id, len(seeds), con_edges, spa_edges)

    def _add(self, candidates: torch.Tensor, n: int, nodes: list) -> tuple[torch.Tensor, int]:
        """Append the not-yet-seen ``candidates`` to the subgraph; return them and the new size."""
        local = self._local
        fresh = ops.unique_sorted(candidates[local[candidates] < 0])
        local[fresh] = ops.arange(n, n + len(fresh), local)
        nodes.append(fresh)
        return fresh, n + len(fresh)


def batch_bounds(n_seeds: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch of an epoch's ``n_seeds`` seeds: every ``batch_size``
    seeds, except that a last batch of one seed also takes the seed before it. A lone seed
    without neighbours would be a batch of one cell, and batch norm needs two; the number of
    batches stays ``ceil(n_seeds / batch_size)``, the same on every rank of a sharded run.
    """
    bounds = [(lo, min(lo + batch_size, n_seeds)) for lo in range(0, n_seeds, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-1] = (n_seeds - 2, n_seeds)
    return bounds
