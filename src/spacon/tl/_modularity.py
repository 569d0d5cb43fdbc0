"""Modularity of a partition of cells on a (possibly factored) graph, without cell x cell matrices.

Newman's directed modularity ``Q = sum_c [w_cc / m - d_in(c) d_out(c) / m^2]``: the share of edge
weight inside domains minus the share expected from the domains' degrees alone. A graph factored
through units (cell ``i`` in unit ``u`` receives edges from every cell of every unit ``v`` with
``W[u, v] > 0``) is handled through the units x groups count matrix, so a connectome implying
billions of cell edges costs one sparse product. The weights are first summed between groups
of cells (the leaves of a domain tree), after which every coarser partition costs a few small
dense products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class GroupGraph:
    """Edge weight between groups of cells, and into and out of each group."""

    between: np.ndarray  # (n_groups, n_groups): weight into group a from group b
    into: np.ndarray
    out_of: np.ndarray
    total: float


def group_graph(unit_in: sp.spmatrix, cell_unit: np.ndarray, group: np.ndarray,
                n_groups: int) -> GroupGraph:
    """Sum the graph whose row ``u`` of ``unit_in`` lists edges into unit ``u`` over groups.

    A plain cell graph is ``unit_in = adjacency.T`` with ``cell_unit = arange(n_cells)``.
    """
    w = sp.csr_matrix(unit_in, dtype=np.float64)
    counts = sp.csr_matrix(
        (np.ones(len(cell_unit)), (np.asarray(cell_unit), np.asarray(group))),
        shape=(w.shape[0], n_groups),
    )
    size = np.asarray(counts.sum(axis=1)).ravel()
    between = np.asarray((counts.T @ (w @ counts)).todense())
    return GroupGraph(between, counts.T @ (w @ size), counts.T @ (w.T @ size),
                      float(size @ (w @ size)))


def modularity_of_merge(graph: GroupGraph, cluster_of_group: np.ndarray) -> float:
    """Modularity of the partition that joins groups into ``cluster_of_group``."""
    if graph.total <= 0:
        return 0.0
    k = int(cluster_of_group.max()) + 1
    join = np.zeros((len(cluster_of_group), k))
    join[np.arange(len(cluster_of_group)), cluster_of_group] = 1.0
    inside = float(np.trace(join.T @ graph.between @ join))
    return inside / graph.total - float((join.T @ graph.into) @ (join.T @ graph.out_of)) / (
        graph.total**2)


def modularity(unit_in: sp.spmatrix, cell_unit: np.ndarray, labels: np.ndarray) -> float:
    """Modularity of ``labels`` (one per cell) on a factored graph."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    codes = codes.ravel()
    n = int(codes.max()) + 1
    return modularity_of_merge(group_graph(unit_in, cell_unit, codes, n), np.arange(n))
