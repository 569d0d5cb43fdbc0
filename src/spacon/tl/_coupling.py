"""Transcriptome-connectome coupling: co-expression against connectivity, beyond distance."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.spatial.distance import cdist

from .. import _keys
from .._errors import SpaconInputError
from .._utils import (
    check_anndata,
    check_memory,
    expression_matrix,
    labels_column,
    spatial_coordinates,
    writable,
)
from ..pp._normalize import warn_if_counts
from ._surrogates import MoranSurrogates

logger = logging.getLogger(__name__)

COLUMNS = ["scope", "n_units", "n_pairs", "r", "p_spatial", "p_mantel", "r_partial",
           "p_partial_spatial"]


DISTANCE_BINS = 20
PAIRS_PER_BIN = 10  # a line per bin: at least 5 pairs per fitted parameter
MAX_UNITS = 5000  # unit x unit matrices are dense: units are regions or voxels, not cells


def coexpression(profiles: np.ndarray) -> np.ndarray:
    """Correlated gene expression between units: Pearson r across genes of their profiles.

    Genes are z-scored across units first, so every gene weighs the same.

    Parameters
    ----------
    profiles
        ``(n_units, n_genes)`` mean expression of each unit.

    Returns
    -------
    ``(n_units, n_units)`` correlation matrix.
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    if profiles.ndim != 2:
        raise SpaconInputError(f"coexpression takes units x genes profiles (2-D), got shape "
                               f"{profiles.shape}.")
    z = stats.zscore(profiles, axis=0)
    z = z - z.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    z = z / np.where(norm > 0, norm, 1.0)
    return z @ z.T


class DistanceTrend:
    """Piecewise-linear trend with distance: a line within each of ``n_bins`` quantile bins.

    Least squares on bin indicators and per-bin slopes, so any smooth trend with distance
    (exponential decay included) is removed, not only a linear one. With few pairs the bins
    are fewer (at least ``PAIRS_PER_BIN`` pairs each; one line below that), so the fit never
    absorbs the data.
    """

    def __init__(self, distance: np.ndarray, n_bins: int = DISTANCE_BINS):
        n_bins = max(1, min(n_bins, len(distance) // PAIRS_PER_BIN))
        edges = np.unique(np.quantile(distance, np.linspace(0, 1, n_bins + 1)[1:-1]))
        self.bins = np.searchsorted(edges, distance, side="right")
        self.count = np.maximum(np.bincount(self.bins), 1)
        self.centred = distance - self._mean(distance)
        self.spread = np.bincount(self.bins, self.centred**2)

    def _mean(self, values):
        return (np.bincount(self.bins, values) / self.count)[self.bins]

    def residual(self, values: np.ndarray) -> np.ndarray:
        """``values`` minus their fitted trend."""
        centred = values - self._mean(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(self.spread > 0,
                             np.bincount(self.bins, centred * self.centred) / self.spread, 0.0)
        return centred - slope[self.bins] * self.centred


def partial_correlation(x: np.ndarray, y: np.ndarray, distance: np.ndarray,
                        n_bins: int = DISTANCE_BINS) -> float:
    """Pearson r of ``x`` and ``y`` controlling for distance.

    Parameters
    ----------
    x, y
        Values per pair (e.g. co-expression and connectivity).
    distance
        Distance per pair.
    n_bins
        Distance quantile bins, each with its own line (fewer with few pairs, see
        ``spacon.tl._coupling.DistanceTrend``).

    Returns
    -------
    The partial correlation (NaN if a residual is constant).

    Both are regressed on a piecewise-linear function of distance (a line within each of
    ``n_bins`` quantile bins), which removes any smooth trend with distance, and the
    residuals are correlated.
    """
    x, y, distance = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y, distance))
    if not len(x) == len(y) == len(distance):
        raise SpaconInputError(f"partial_correlation needs one value per pair in each of x, y "
                               f"and distance; got {len(x)}, {len(y)} and {len(distance)}.")
    trend = DistanceTrend(distance, n_bins)
    return _pearson(trend.residual(x), trend.residual(y))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x**2).sum() * (y**2).sum())
    return float((x * y).sum() / denom) if denom > 0 else float("nan")


def coupling(
    adata,
    connectivity,
    *,
    unit_key: str | None = None,
    groupby: str | None = None,
    pairs: Literal["all", "connected"] = "all",
    method: Literal["spearman", "pearson"] = "spearman",
    n_perm: int = 1000,
    spatial_key: str = "spatial",
    layer: str | None = None,
    min_pairs: int = 10,
    seed: int = 0,
    key_added: str = _keys.COUPLING,
) -> pd.DataFrame:
    """Correlation between gene co-expression and connectivity across pairs of units.

    Cells are pooled into connectivity units (``unit_key``; or each observation is a unit, e.g.
    one row per brain region); unit x unit matrices are dense, so at most 5,000 units. Each unit
    gets its mean expression and the centroid of its cells. For every pair of units (each
    unordered pair once if the matrix is symmetric, every ordered pair otherwise), co-expression
    is the Pearson r of the two profiles across genes (genes z-scored over units), connectivity
    is the matrix entry, distance is between centroids. Reported per scope (all pairs, and with
    ``groupby`` the pairs that touch each group's units, a unit belonging to the group of most
    of its cells):

    - ``r``: correlation of co-expression with connectivity;
    - ``r_partial``: the same controlling for distance, since both usually fall with it (both
      regressed on a line within each of 20 distance quantile bins, which removes any smooth
      trend with distance);
    - ``p_spatial`` / ``p_partial_spatial``: two-sided permutation p-values against surrogate
      expression maps that keep every gene's spatial autocorrelation (Moran spectral
      randomisation, one sign draw for all genes). They hold their level where every gene
      is its own smooth map, and are liberal where genes share a few smooth programs, as
      real expression does: with expression simulated independently of the human HCP
      connectome on its 66 regions (``benchmarks/coupling_null_calibration.py``), p < 0.05
      came in 2-18 % of simulations for independent gene maps (symmetric across
      hemispheres or not), but in 12-55 % (``p_spatial``) and 15-72 %
      (``p_partial_spatial``) where 40 genes mixed 10 shared programs. Read a small
      p-value as a lead, not as proof; a large one does say that smooth maps explain the
      coupling;
    - ``p_mantel``: the same for ``r`` with unit labels shuffled freely (the classical Mantel
      test, which ignores spatial autocorrelation), for comparison.

    Parameters
    ----------
    adata
        Log-normalised expression (``X`` or ``layers[layer]``) and ``obsm[spatial_key]``.
    connectivity
        :class:`spacon.io.Connectivity` between units (or between observations), a path
        :func:`spacon.io.read_connectivity` reads, or a square array.
    unit_key
        ``obs`` column mapping cells to the matrix's units.
    groupby
        ``obs`` column of domains (e.g. ``"spacon_domain_alpha1"``) for per-domain rows.
    pairs
        ``"all"`` off-diagonal pairs, or only ``"connected"`` ones (entry > 0).
    method
        ``"spearman"`` (ranks; default) or ``"pearson"``.
    n_perm
        Surrogates (and label shuffles) for the p-values; 0 skips them.
    spatial_key
        ``obsm`` key of coordinates (2-D, or 3-D for stacked sections and whole brains).
    layer
        Use ``layers[layer]`` instead of ``X``.
    min_pairs
        Scopes with fewer pairs get NaN.
    seed
        Seed of the surrogates and shuffles.
    key_added
        ``uns`` key of the table.

    Returns
    -------
    A table with columns ``scope, n_units, n_pairs, r, p_spatial, p_mantel, r_partial,
    p_partial_spatial``; also in ``uns[key_added]``. ``n_pairs`` counts the pairs compared:
    unordered pairs of units for a symmetric connectome, ordered ones (each pair both ways,
    the same co-expression with each direction's connectivity) for a directed one; the
    permutations move units, not pairs, so the p-values do not count a pair twice.
    """
    check_anndata(adata, "spacon.tl.coupling")
    from ..io import as_connectivity
    from ..pp import unit_codes
    from ..pp._normalize import check_cells_and_values
    from ._predict import profile_rows

    adata = writable(adata, False, "spacon.tl.coupling")
    if method not in ("spearman", "pearson"):
        raise SpaconInputError(f"method must be 'spearman' or 'pearson', got {method!r}.")
    if pairs not in ("all", "connected"):
        raise SpaconInputError(f"pairs must be 'all' or 'connected', got {pairs!r}.")
    _check_integer("n_perm", n_perm, 0)
    _check_integer("min_pairs", min_pairs, 3)
    if groupby is not None:
        labels_column(adata, groupby, "groups to group units by")  # missing, or measurements
    if groupby is not None and adata.obs[groupby].isna().any():
        raise SpaconInputError(f"{int(adata.obs[groupby].isna().sum())} cells have no value in "
                               f"adata.obs[{groupby!r}]; give every cell a group.")
    if layer is not None and layer not in adata.layers:
        raise SpaconInputError(f"adata.layers has no {layer!r}.")
    check_cells_and_values(adata, layer)  # repeated names would pool two units silently
    warn_if_counts(adata, layer, "co-expression of counts follows the units' depth")
    coords = spatial_coordinates(adata, spatial_key)
    connectivity = as_connectivity(connectivity)
    if unit_key is not None:
        cell_unit, used = unit_codes(adata, unit_key, connectivity)
    else:
        rows = profile_rows(adata, connectivity, None)
        used, cell_unit = np.unique(rows, return_inverse=True)
    n = len(used)
    if n < 4:
        raise SpaconInputError(f"coupling needs at least 4 units with cells; the data have {n}.")
    if n > MAX_UNITS:
        raise SpaconInputError(
            f"coupling compares every pair of units and the data have {n} units (more than "
            f"{MAX_UNITS}); pool cells into regions or voxels with unit_key=.")
    check_memory(12.0 * n * n * 8, f"coupling over {n} units",
                 "pool cells into fewer, larger units (unit_key=).")

    profiles, centroids = _unit_profiles(adata, cell_unit, n, layer, coords)

    matrix = connectivity.matrix[used][:, used].toarray().astype(np.float64)
    scale = np.abs(matrix).max()
    symmetric = np.allclose(matrix, matrix.T, rtol=1e-6, atol=1e-9 * scale)
    i, j = np.triu_indices(n, 1) if symmetric else np.nonzero(~np.eye(n, dtype=bool))
    if pairs == "connected":
        keep = matrix[i, j] > 0
        i, j = i[keep], j[keep]
    distance = cdist(centroids, centroids)[i, j]
    conn = matrix[i, j]

    scopes = [("all", np.ones(len(i), dtype=bool), n)]
    if groupby is not None:
        column = adata.obs[groupby]
        table = pd.crosstab(cell_unit, column.astype(str).to_numpy())
        group = table.columns.to_numpy()[table.to_numpy().argmax(axis=1)]
        # rows in the column's own order (domains 0, 1, 2, ..., 10, not as text: 0, 1, 10, ...)
        order = ([str(c) for c in column.cat.categories if str(c) in table.columns]
                 if isinstance(column.dtype, pd.CategoricalDtype) else list(table.columns))
        for g in order:
            members = group == g
            scopes.append((str(g), members[i] | members[j], int(members.sum())))

    prepared = [_Scope(name, mask, units, conn, distance, method, min_pairs)
                for name, mask, units in scopes]
    rank = method == "spearman"
    observed = _Ordered(coexpression(profiles)[i, j], rank)
    for s in prepared:
        s.observe(observed)
    if n_perm:
        rng = np.random.default_rng(seed)
        surrogates = MoranSurrogates(profiles, centroids)
        for _ in range(int(n_perm)):
            spatial = _Ordered(coexpression(surrogates.draw(rng))[i, j], rank)
            mantel = _Ordered(coexpression(profiles[rng.permutation(n)])[i, j], rank)
            for s in prepared:
                s.compare(spatial, mantel)
    result = pd.DataFrame([s.row(n_perm) for s in prepared], columns=COLUMNS)
    adata.uns[key_added] = result
    return result


def _unit_profiles(adata, cell_unit, n: int, layer, coords):
    """Mean expression (genes that vary between units) and centroid of each unit's cells."""
    pool = sp.csr_matrix((np.ones(adata.n_obs), (cell_unit, np.arange(adata.n_obs))),
                         shape=(n, adata.n_obs))
    size = np.asarray(pool.sum(axis=1)).ravel()
    pool = sp.diags(1.0 / size) @ pool
    x = expression_matrix(adata, layer)
    values = x.data if sp.issparse(x) else np.asarray(x)
    if not np.isfinite(values).all():
        raise SpaconInputError(f"{'adata.X' if layer is None else f'layer {layer!r}'} has NaN "
                               "or infinite values.")
    profiles = ((pool @ x.astype(np.float64)).toarray() if sp.issparse(x)
                else pool @ np.asarray(x, dtype=np.float64))
    profiles = profiles[:, profiles.std(axis=0) > 0]
    if profiles.shape[1] < 3:
        raise SpaconInputError("coupling needs at least 3 genes that vary between units.")
    return profiles, pool @ coords


def _check_integer(name: str, value, minimum: int) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value < minimum):
        raise SpaconInputError(f"{name} must be an integer >= {minimum}, got {value!r}.")


class _Ordered:
    """Co-expression of all pairs, ranked once so that ranks within any subset cost O(pairs)."""

    def __init__(self, values: np.ndarray, rank: bool):
        self.values = values
        self.order = np.argsort(values) if rank else None

    def within(self, mask: np.ndarray) -> np.ndarray:
        if self.order is None:
            return self.values[mask]
        picked = self.order[mask[self.order]]  # the subset, in increasing order
        ordered = self.values[picked]
        # tied values share the mean of their positions (average ranks, as scipy)
        tie_group = np.concatenate([[0], np.cumsum(ordered[1:] != ordered[:-1])])
        position = np.arange(1, len(picked) + 1, dtype=np.float64)
        average = np.bincount(tie_group, position) / np.bincount(tie_group)
        ranks = np.empty(len(self.values))
        ranks[picked] = average[tie_group]
        return ranks[mask]


class _Scope:
    """Statistics of one set of pairs, with running counts of null values as extreme."""

    def __init__(self, name, mask, n_units, conn, distance, method, min_pairs):
        self.name, self.mask, self.n_units = name, mask, n_units
        self.n_pairs = int(mask.sum())
        self.valid = self.n_pairs >= min_pairs
        self.rank = method == "spearman"
        if not self.valid:
            logger.warning("coupling: %s has %d pairs (< %d); its row is NaN.", name,
                           self.n_pairs, min_pairs)
            return
        self.conn = self._transform(conn[mask])
        self.trend = DistanceTrend(distance[mask])
        self.conn_resid = self.trend.residual(self.conn)
        self.extreme = np.zeros(3)

    def _transform(self, v):
        return stats.rankdata(v) if self.rank else np.asarray(v, dtype=np.float64)

    def _stats(self, coexpr):
        c = coexpr.within(self.mask)
        return _pearson(c, self.conn), _pearson(self.trend.residual(c), self.conn_resid)

    def observe(self, coexpr):
        if self.valid:
            self.r, self.r_partial = self._stats(coexpr)

    def compare(self, spatial, mantel):
        if not self.valid:
            return
        r_null, partial_null = self._stats(spatial)
        r_mantel = self._stats(mantel)[0]
        self.extreme += [abs(r_null) >= abs(self.r), abs(r_mantel) >= abs(self.r),
                         abs(partial_null) >= abs(self.r_partial)]

    def row(self, n_perm):
        if not self.valid:
            return [self.name, self.n_units, self.n_pairs] + [np.nan] * 5
        p = (1 + self.extreme) / (1 + n_perm) if n_perm else np.full(3, np.nan)
        # an undefined statistic (constant connectivity or co-expression) has no p-value
        p[np.isnan([self.r, self.r, self.r_partial])] = np.nan
        return [self.name, self.n_units, self.n_pairs, self.r, p[0], p[1], self.r_partial, p[2]]
