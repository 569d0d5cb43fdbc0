"""A factored graph's sampling arrays on the training device, and sampling there.

On a GPU the arrays of :class:`~spacon.graph.FactoredGraph` that sampling reads are torch
tensors on it, so a batch's neighbourhood is drawn where the model runs and nothing is built
on the host or copied per step. On the CPU they are the graph's own NumPy arrays (no copy),
sampled with NumPy (see :mod:`spacon.graph._ops`).
"""

from __future__ import annotations

import numpy as np
import torch

from . import _ops as ops
from ._factored import FactoredGraph


class GraphOnDevice:
    """The incoming edges of a :class:`FactoredGraph`, sampled on ``device``.

    Parameters
    ----------
    graph
        The graph (its arrays are copied to a GPU, or shared on the CPU).
    device
        Where sampling runs.
    """

    def __init__(self, graph: FactoredGraph, device):
        def index(a):
            return ops.as_index(a, device)

        self.device = torch.device(device)
        self.n_cells = graph.n_cells
        self.cell_unit = index(graph.cell_unit)
        self.unit_indices = index(graph.unit_in.indices)
        self.unit_size = index(graph.unit_size)
        self.members = index(graph.members)
        self.member_ptr = index(graph.member_ptr)
        self.edge_end = index(graph._edge_end)
        self.row_start = index(graph._row_start)
        self.unit_degree = index(graph.unit_degree)
        # one cell per unit, in order: a neighbour list position is a unit edge directly
        self.plain = bool(len(graph.cell_unit) == len(graph.unit_size)
                          and np.array_equal(graph.cell_unit, np.arange(graph.n_cells)))

    def degree(self, cells):
        """Number of incoming edges of each cell."""
        return self.unit_degree[self.cell_unit[cells]]

    def source_at(self, cells, positions):
        """The source cell at ``positions`` of each target cell's neighbour list."""
        global_pos = self.row_start[self.cell_unit[cells]] + positions
        if self.plain:
            return self.unit_indices[global_pos]
        edge = ops.searchsorted(self.edge_end, global_pos, right=True)
        unit = self.unit_indices[edge]
        offset = global_pos - (self.edge_end[edge] - self.unit_size[unit])
        return self.members[self.member_ptr[unit] + offset]

    def neighbors(self, cells):
        """All incoming edges of ``cells``: ``(target_index, source_cell)``."""
        target, positions = ops.spread(self.degree(cells))
        return target, self.source_at(cells[target], positions)

    def sample(self, cells, fanout: int, generator):
        """Up to ``fanout`` incoming edges per cell, uniformly over its neighbour list.

        Cells with at most ``fanout`` neighbours keep all of them. Otherwise ``fanout``
        positions are drawn uniformly (with replacement) and repeats dropped, so each neighbour
        is included with the same probability, as when sampling the expanded cell graph.
        ``generator`` comes from :func:`spacon.graph._ops.generator` for this device.

        Returns ``(target_index, source_cell)``.
        """
        if fanout < 0:
            return self.neighbors(cells)
        deg = self.degree(cells)
        small = deg <= fanout
        t_small, s_small = self.neighbors(cells[small])
        t_small = ops.nonzero(small)[t_small]
        big = ops.nonzero(~small)
        if len(big) == 0:
            return t_small, s_small
        draw = ops.uniform(generator, (len(big), fanout), cells)
        pos = ops.sort(ops.floor_int(draw * deg[big, None]), dim=1)
        keep = ops.true_like(pos)
        keep[:, 1:] = pos[:, 1:] != pos[:, :-1]
        target = ops.repeat(big, ops.true_like(big) * fanout, len(big) * fanout)
        target = target.reshape(len(big), fanout)[keep]
        sources = self.source_at(cells[target], pos[keep])
        return ops.cat([t_small, target]), ops.cat([s_small, sources])
