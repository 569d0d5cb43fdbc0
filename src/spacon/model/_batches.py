"""Where training batches come from: the whole graphs at once, or sampled neighbourhoods."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple

import torch

from .._errors import SpaconInputError
from ..graph import NeighborSampler, Subgraph
from ..graph import _ops as ops
from ..nn import Adjacency
from ._data import ModelData
from ._prefetch import prefetched
from ._rows import ExpressionRows


class Batch(NamedTuple):
    """One training step's input: expression and both graphs' adjacencies, on the device.

    ``n_id`` holds the global cell of each row of ``x`` (``None``: every cell, in order).
    """

    x: torch.Tensor
    adj_con: Adjacency | None
    adj_spa: Adjacency
    n_id: torch.Tensor | None = None


class FullBatch:
    """Every cell with its full neighbourhoods: an epoch is one step on the whole graphs."""

    n_batches = 1

    def __init__(self, data: ModelData, device):
        self.batch = Batch(
            data.expression(None, device),
            None if data.connectome is None else Adjacency.from_scipy(
                data.connectome.expand()).to(device),
            Adjacency.from_scipy(data.spatial.expand()).to(device),
        )

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The epoch's one batch, or nothing when it already ran (``start`` = 1)."""
        if start < self.n_batches:
            yield self.batch


class SampledBatches:
    """Mini-batches of seed cells with sampled neighbourhoods (:class:`NeighborSampler`).

    Everything a step needs is made on the sampler's device: the expression is held there
    once (:class:`ExpressionRows`), and the subgraph, its adjacencies and its rows are built
    there with torch ops, so a GPU step copies nothing from the host. Off the CPU each batch is
    made one step ahead in a background thread (``prefetch``, see
    :func:`~spacon.model._prefetch.prefetched`); the batches are the same either way. Every
    rank of a distributed run takes the same number of batches per epoch (the smallest
    shard's), so the ranks stay in step.
    """

    def __init__(self, data: ModelData, sampler: NeighborSampler, rank: int = 0,
                 world_size: int = 1, prefetch: bool | None = None):
        self.sampler = sampler
        self.prefetch = not ops.is_cpu(sampler.device) if prefetch is None else prefetch
        self.expression = ExpressionRows(data.features, sampler.device)
        self.rank, self.world_size = rank, world_size
        self.n_batches = min(sampler.n_batches(r, world_size) for r in range(world_size))
        if self.n_batches == 0:
            raise SpaconInputError(
                f"{world_size} ranks need at least {world_size} cells; the data have "
                f"{sampler.n_cells}.")

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` on this rank, from batch ``start`` on."""
        subgraphs = self.sampler.epoch(epoch, self.rank, self.world_size, start=start)
        batches = (self.assemble(subgraph) for subgraph in itertools.islice(
            subgraphs, max(self.n_batches - start, 0)))
        yield from prefetched(batches, self.sampler.device) if self.prefetch else batches

    def assemble(self, subgraph: Subgraph) -> Batch:
        """A sampled subgraph's expression rows and adjacencies (built where it was sampled)."""
        n = len(subgraph.n_id)
        adj_con = None if subgraph.connectome_edges is None else Adjacency.from_edges(
            *subgraph.connectome_edges, n, n)
        return Batch(self.expression.rows(subgraph.n_id), adj_con,
                     Adjacency.from_edges(*subgraph.spatial_edges, n, n),
                     ops.as_tensor(subgraph.n_id))
