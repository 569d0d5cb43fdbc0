"""A domain hierarchy from a Gaussian mixture: components merged by entropy (Baudry et al. 2010).

A mixture with more components than domains describes a non-Gaussian domain (elongated, curved,
skewed) by several overlapping components. Merging, at each step, the two clusters whose union
lowers the entropy of the cells' soft assignments the most joins those overlapping pieces first
and leaves well-separated domains for last (Baudry, Raftery, Celeux, Lo & Gottardo 2010,
"Combining mixture components for clustering", J. Comput. Graph. Stat. 19:332-353). The merge
sequence is a tree: cutting it at ``k`` gives ``k`` domains, every cut nested in the coarser ones.

The entropy drop of a merge is divided by the mass of the two clusters merged (the normalised
criterion of Baudry et al.), so that it measures how mixed the two are, whatever their size:
near ``log 2`` for two components that describe one blob, near 0 for well-separated domains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MixtureTree:
    """Merge sequence of ``n_leaves`` mixture components.

    Attributes
    ----------
    merges
        ``(n_leaves - 1, 2)`` ids of the two clusters joined at each step; leaves are
        ``0 .. n_leaves - 1``, the cluster made at step ``s`` is ``n_leaves + s`` (scipy's
        linkage convention).
    overlap
        Normalised entropy drop of each merge (``0 .. log 2``): how mixed the two clusters were.
    leaf_size
        Number of fitted cells assigned to each leaf.
    """

    merges: np.ndarray
    overlap: np.ndarray
    leaf_size: np.ndarray

    @property
    def n_leaves(self) -> int:
        """Number of mixture components."""
        return len(self.leaf_size)

    def cut(self, k: int) -> np.ndarray:
        """Cluster (``0 .. k - 1``, in order of first leaf) of each leaf at ``k`` clusters."""
        if not 1 <= k <= self.n_leaves:
            raise ValueError(f"a tree with {self.n_leaves} leaves cannot be cut at {k}")
        parent = np.arange(2 * self.n_leaves - 1)
        for step in range(self.n_leaves - k):
            parent[self.merges[step]] = self.n_leaves + step
        root = np.arange(self.n_leaves)
        for _ in range(self.n_leaves):  # follow parents up to the clusters alive at k
            nxt = parent[root]
            if (nxt == root).all():
                break
            root = nxt
        _, cluster = np.unique(root, return_inverse=True)
        first = np.full(cluster.max() + 1, self.n_leaves)
        np.minimum.at(first, cluster, np.arange(self.n_leaves))
        rank = np.argsort(np.argsort(first))
        return rank[cluster]

    def to_dict(self) -> dict:
        """Plain arrays for ``adata.uns``."""
        return {"merges": self.merges, "overlap": self.overlap, "leaf_size": self.leaf_size}

    @classmethod
    def from_dict(cls, d: dict) -> MixtureTree:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["merges"], dtype=np.int64), np.asarray(d["overlap"], float),
                   np.asarray(d["leaf_size"], dtype=np.int64))


def merge_by_entropy(posterior: np.ndarray, min_size: float = 0.0) -> MixtureTree:
    """Build the tree from soft assignments ``(n_cells, n_components)`` (rows sum to 1).

    While a cluster holds less than ``min_size`` (a share of the cells), it is merged first,
    into the cluster it overlaps most: a handful of distinct cells is not a domain.
    """
    tau = np.clip(np.asarray(posterior, dtype=np.float64), 0.0, 1.0)
    n_leaves = tau.shape[1]
    leaf_size = np.bincount(tau.argmax(axis=1), minlength=n_leaves)
    alive = list(range(n_leaves))
    # every cluster's column, leaves first and each merge's cluster after them, in one
    # Fortran-ordered array: sums down its columns add in the order a single column's sum
    # does, so the gains computed together equal those computed pair by pair, to the last bit
    columns = np.zeros((len(tau), max(2 * n_leaves - 1, 1)), order="F")
    columns[:, :n_leaves] = tau
    plogp = list(_xlogx(columns[:, :n_leaves]).sum(axis=0))
    mass = list(columns[:, :n_leaves].sum(axis=0))

    def pair_gains(pairs):
        """Normalised entropy drop of joining each pair ``(a, b)``, all in one operation."""
        if not pairs:
            return {}
        a, b = (np.array(side) for side in zip(*pairs))
        joined = np.add(columns[:, a], columns[:, b], order="F")
        total = np.take(mass, a) + np.take(mass, b)
        drop = _xlogx(joined).sum(axis=0) - np.take(plogp, a) - np.take(plogp, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(total > 0, drop / total, np.log(2))
        return dict(zip(pairs, out.tolist()))

    gain = pair_gains([(a, b) for i, a in enumerate(alive) for b in alive[i + 1:]])
    merges, overlap = [], []
    for step in range(n_leaves - 1):
        smallest = min(alive, key=lambda c: (mass[c], c))
        pairs = gain.items()
        if mass[smallest] < min_size * len(tau):
            pairs = [(p, v) for p, v in pairs if smallest in p]
        # largest gain; ties broken by the smaller ids, so the tree is repeatable
        (a, b), g = max(pairs, key=lambda item: (item[1], -item[0][0], -item[0][1]))
        new = n_leaves + step
        columns[:, new] = columns[:, a] + columns[:, b]
        plogp.append(_xlogx(columns[:, new]).sum())
        mass.append(mass[a] + mass[b])
        alive = [c for c in alive if c not in (a, b)]
        gain = {p: v for p, v in gain.items() if a not in p and b not in p}
        gain.update(pair_gains([(c, new) for c in alive]))
        alive.append(new)
        merges.append((a, b))
        overlap.append(max(g, 0.0))
    return MixtureTree(np.array(merges, dtype=np.int64).reshape(-1, 2), np.array(overlap),
                       leaf_size)


def _xlogx(x: np.ndarray) -> np.ndarray:
    """``x log x`` elementwise, 0 where ``x`` is 0 (the array's memory order kept)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(x), 0.0)
