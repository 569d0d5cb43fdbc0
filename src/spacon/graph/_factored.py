"""A graph over cells stored as a unit graph plus a cell -> unit map, never expanded whole.

Cell ``i`` in unit ``u`` receives edges from every cell of every unit ``v`` with a unit edge
``v -> u``. A plain cell graph is the special case with one cell per unit, so the spatial graph,
a cell-level connectome and a factored connectome share one sampler and one expansion routine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class FactoredGraph:
    """Incoming edges of cells, factored through units.

    Attributes
    ----------
    unit_in
        ``(n_units, n_units)`` CSR whose row ``u`` lists the units ``v`` sending edges to ``u``.
    cell_unit
        Unit of each cell, ``(n_cells,)``.
    """

    unit_in: sp.csr_matrix
    cell_unit: np.ndarray

    def __post_init__(self):
        unit_in = sp.csr_matrix(self.unit_in)
        if not unit_in.data.all():  # a stored zero (a weight set to 0 by hand) is no edge
            unit_in = unit_in.copy()  # (the caller's matrix is left as it is)
            unit_in.eliminate_zeros()
        self.unit_in = unit_in
        self.unit_in.sort_indices()
        self.cell_unit = np.asarray(self.cell_unit, dtype=np.int64)
        n_units = self.unit_in.shape[0]
        self.unit_size = np.bincount(self.cell_unit, minlength=n_units).astype(np.int64)
        # cells of each unit, contiguous: members[member_ptr[u]:member_ptr[u + 1]]
        self.members = np.argsort(self.cell_unit, kind="stable")
        self.member_ptr = np.concatenate([[0], np.cumsum(self.unit_size)])
        # global running count of source cells over the unit edges, in CSR order: a position
        # p in a cell's neighbour list maps to a unit edge by one searchsorted
        sizes = self.unit_size[self.unit_in.indices]
        self._edge_end = np.cumsum(sizes)
        self._row_start = np.concatenate([[0], self._edge_end])[self.unit_in.indptr[:-1]]
        cum = np.concatenate([[0], self._edge_end])
        self.unit_degree = cum[self.unit_in.indptr[1:]] - cum[self.unit_in.indptr[:-1]]

    @classmethod
    def from_cell_graph(cls, adjacency: sp.spmatrix) -> FactoredGraph:
        """A cell-level graph (rows = targets, columns = sources) as a factored graph."""
        n = adjacency.shape[0]
        return cls(sp.csr_matrix(adjacency), np.arange(n))

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.cell_unit)

    def degree(self, cells: np.ndarray) -> np.ndarray:
        """Number of incoming edges of each cell (self-loops in the data included)."""
        return self.unit_degree[self.cell_unit[cells]]

    @property
    def n_edges(self) -> int:
        """Number of cell-cell edges the graph implies."""
        return int(np.sum(self.unit_degree * self.unit_size))

    def neighbors(self, cells: np.ndarray):
        """All incoming edges of ``cells``: returns ``(target_index, source_cell)`` arrays."""
        from ._device import GraphOnDevice

        return GraphOnDevice(self, "cpu").neighbors(np.asarray(cells, dtype=np.int64))

    def expand(self) -> sp.csr_matrix:
        """The full cell x cell incoming-edge CSR (only for graphs that fit in memory)."""
        cells = np.arange(self.n_cells)
        _, source = self.neighbors(cells)
        indptr = np.concatenate([[0], np.cumsum(self.degree(cells))])
        m = sp.csr_matrix(
            (np.ones(len(source), np.float32), source, indptr), shape=(self.n_cells, self.n_cells)
        )
        m.sort_indices()
        return m

    def blocks(self, cells: np.ndarray):
        """Group ``cells`` by unit: ``[(positions in cells, source cells, has_self), ...]``.

        All cells of one unit share their incoming neighbours, so each group is one dense
        block; ``has_self`` says whether the unit sends to itself (its cells, hence each target,
        are among the sources).
        """
        units = self.cell_unit[cells]
        order = np.argsort(units, kind="stable")
        bounds = np.flatnonzero(np.diff(units[order])) + 1
        groups = []
        for part in np.split(order, bounds):
            if len(part) == 0:
                continue
            u = units[part[0]]
            senders = self.unit_in.indices[self.unit_in.indptr[u] : self.unit_in.indptr[u + 1]]
            sources = np.concatenate(
                [self.members[self.member_ptr[v] : self.member_ptr[v + 1]] for v in senders]
            ) if len(senders) else np.zeros(0, np.int64)
            groups.append((part, sources, bool(np.any(senders == u))))
        return groups
