"""A map from the spatial embedding to connectivity profiles, fit on the training cells.

It is what predicts the connectivity of tissue that has none: new tissue is embedded by the
spatial encoder alone, and each cell's embedding is mapped to a profile over the training
connectome's targets (:meth:`spacon.SpaCon.predict_connectivity`, ``spacon predict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import SpaconInputError
from .._utils import label_strings, no_obs_column
from ..tl import _ridge

FILE = "connectivity_map.npz"  # in the model directory, beside model.pt
MAX_ALPHA_CELLS = 20_000  # cells the ridge penalty's inner cross-validation reads at most


@dataclass
class ConnectivityMap:
    """Ridge regression from standardised spatial embeddings to connectivity profiles.

    Attributes
    ----------
    weights, intercept
        ``profile = (z - centre) / scale @ weights + intercept`` (``d x targets``, ``targets``).
    centre, scale
        Standardisation of the embedding, from the training cells.
    targets
        Labels of the profile's columns: the training connectome's rows.
    components, profile_mean
        The top principal axes (``k x targets``) and mean of the training cells' profiles: a
        profile's low-rank code is ``(profile - profile_mean) @ components.T``.
    alpha
        The ridge penalty, chosen by spatial cross-validation inside the training cells.
    params
        How it was fit (``unit_key``, ``n_cells``, ``negative``, ``inner_folds``).
    """

    weights: np.ndarray
    intercept: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    targets: np.ndarray
    components: np.ndarray
    profile_mean: np.ndarray
    alpha: float
    params: dict = field(default_factory=dict)

    @property
    def n_targets(self) -> int:
        """Columns of a predicted profile."""
        return len(self.targets)

    def predict(self, embedding: np.ndarray) -> np.ndarray:
        """Predicted profiles of the cells (float32, ``cells x targets``)."""
        z = (np.asarray(embedding, dtype=np.float64) - self.centre) / self.scale
        return (z @ self.weights + self.intercept).astype(np.float32)

    def code(self, embedding: np.ndarray) -> np.ndarray:
        """The low-rank code of each cell's predicted profile, without forming the profile."""
        z = (np.asarray(embedding, dtype=np.float64) - self.centre) / self.scale
        return (z @ (self.weights @ self.components.T)
                + (self.intercept - self.profile_mean) @ self.components.T)

    def save(self, path: str | Path) -> None:
        """Write the map to ``path`` (``.npz``) atomically."""
        import json

        from ..io import atomic_path

        arrays = {k: getattr(self, k) for k in ("weights", "intercept", "centre", "scale",
                                                "components", "profile_mean")}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays, targets=self.targets.astype(str),
                                alpha=np.float64(self.alpha),
                                params=np.array(json.dumps(self.params)))

    @classmethod
    def load(cls, path: str | Path) -> ConnectivityMap:
        """Read a map written by :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k not in ("alpha", "params")}
            return cls(**arrays, alpha=float(f["alpha"]), params=json.loads(str(f["params"])))


def fit_connectivity_map(embedding: np.ndarray, profiles, targets, groups: np.ndarray, *,
                         n_components: int = 10, seed: int = 0,
                         params: dict | None = None) -> ConnectivityMap:
    """Fit the ridge map from the training cells' embeddings to their profiles.

    Parameters
    ----------
    embedding
        Spatial embedding of the training cells (``cells x d``).
    profiles
        Their connectivity profiles (sparse ``cells x targets``).
    targets
        Labels of the targets.
    groups
        Inner fold of each cell, for the penalty (at least two values; spatially contiguous).
    n_components
        Principal axes of the profiles kept for the low-rank code.
    seed
        Seed of the cells the penalty is chosen on (when there are more than 20,000).
    params
        Recorded in :attr:`ConnectivityMap.params`.

    Returns
    -------
    The fitted map.
    """
    z = np.asarray(embedding, dtype=np.float64)
    centre, sd = z.mean(axis=0), z.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    x = (z - centre) / scale
    profiles = sp.csr_matrix(profiles, dtype=np.float64)
    rows = np.arange(len(x))
    chosen = rows
    if len(rows) > MAX_ALPHA_CELLS:
        chosen = np.sort(np.random.default_rng(seed).choice(rows, MAX_ALPHA_CELLS,
                                                            replace=False))
    alpha = _ridge.choose_alpha(x, profiles[chosen], chosen, np.asarray(groups)[chosen])
    weights, intercept = _ridge.ridge_weights(_ridge.ridge_fit(x, profiles, rows), alpha)
    components, mean = principal_axes(profiles, n_components)
    return ConnectivityMap(weights, intercept, centre, scale, np.asarray(targets).astype(str),
                           components, mean, alpha,
                           {**(params or {}), "n_cells": len(rows),
                            "inner_folds": int(len(np.unique(groups)))})


def principal_axes(profiles, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_components`` principal axes (``k x targets``) and the mean of sparse profiles.

    Computed without centring the matrix densely; each axis's sign is fixed (its largest
    entry positive) so that the same data give the same axes.
    """
    from scipy.sparse.linalg import LinearOperator, svds

    y = sp.csr_matrix(profiles, dtype=np.float64)
    n, t = y.shape
    mean = np.asarray(y.mean(axis=0)).ravel()
    k = int(min(n_components, min(n, t) - 1))
    if k < 1:
        raise SpaconInputError("the connectivity profiles need at least two cells and targets.")
    centred = LinearOperator(
        (n, t), dtype=np.float64,
        matvec=lambda v: y @ np.ravel(v) - mean @ np.ravel(v),
        rmatvec=lambda u: y.T @ np.ravel(u) - mean * np.ravel(u).sum())
    from scipy.sparse.linalg import ArpackError

    try:
        _, s, vt = svds(centred, k=k, v0=np.ones(min(n, t)) / np.sqrt(min(n, t)))
    except ArpackError:  # the flat start lies in the centred profiles' null space (an
        # identity connectome): a fixed, seeded start instead
        v0 = np.random.default_rng(0).standard_normal(min(n, t))
        _, s, vt = svds(centred, k=k, v0=v0 / np.linalg.norm(v0))
    vt = vt[np.argsort(-s)]
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    return vt * signs[:, None], mean


def fit_on_training_data(adata, connectivity, embedding: np.ndarray, *, unit_key=None,
                         section_key=None, spatial_key: str = "spatial",
                         negative: str = "drop", n_components: int = 10,
                         seed: int = 0) -> ConnectivityMap:
    """:func:`fit_connectivity_map` on the training cells of ``adata``, their profiles being
    their rows (their units' rows) of ``connectivity``; the penalty's inner folds are runs of
    sections (k-means blocks of ``spatial_key`` without ``section_key``), units kept whole.
    """
    from ..tl._predict import _inner_groups

    profiles, targets = training_profiles(adata, connectivity, unit_key, negative)
    if section_key is not None and section_key not in adata.obs:
        section_key = None
    groups = _inner_groups(adata, np.ones(adata.n_obs, dtype=bool), section_key, None,
                           spatial_key, unit_key, seed)
    return fit_connectivity_map(
        embedding, profiles, targets, groups, n_components=n_components, seed=seed,
        params={"unit_key": unit_key, "negative": negative, "section_key": section_key})


def training_profiles(adata, connectivity, unit_key: str | None = None,
                      negative: str = "drop") -> tuple[sp.csr_matrix, np.ndarray]:
    """Each cell's connectivity row (its unit's, with ``unit_key``), negative values dropped
    (``negative="absolute"``: their magnitude), and the targets' labels.
    """
    from .._utils import check_memory
    from ..io import as_connectivity
    from ..tl._predict import profile_rows

    connectivity = as_connectivity(connectivity)
    rows = profile_rows(adata, connectivity, unit_key)
    matrix = connectivity.matrix.tocsr()
    nnz = int(np.diff(matrix.indptr)[rows].sum())
    check_memory(nnz * 12 * 3, "each training cell's connectivity row (sparse)",
                 "use a sparser connectome (a threshold or top-k) or coarser units.")
    if negative == "error" and (matrix.data < 0).any():
        raise SpaconInputError(
            f"connectivity has {int((matrix.data < 0).sum())} negative values (signed data "
            "such as functional correlations); choose negative='drop' or 'absolute'.")
    matrix = abs(matrix) if negative == "absolute" else matrix.maximum(0)
    if matrix[rows].nnz == 0:
        raise SpaconInputError(
            "the training cells' connectivity rows are all zero (after dropping negative "
            "values): there is no connectivity to predict.")
    targets = (connectivity.labels if connectivity.labels is not None
               else np.arange(connectivity.n).astype(str))
    return matrix[rows], targets


def predicted_profiles(cmap: ConnectivityMap, adata, embedding: np.ndarray,
                       unit_key: str | None = None):
    """Each cell's predicted profile (or each unit's: the mean over its cells), labelled.

    Returns
    -------
    A :class:`pandas.DataFrame`, rows = cells (units), columns = ``cmap.targets``.
    """
    import pandas as pd

    from .._utils import check_memory

    if unit_key is None:
        n_rows, labels = adata.n_obs, np.asarray(adata.obs_names).astype(str)
    else:
        if unit_key not in adata.obs:
            raise SpaconInputError(no_obs_column(adata, unit_key, "connectivity units", "unit column "))
        column = adata.obs[unit_key]
        if column.isna().any():
            raise SpaconInputError(f"adata.obs[{unit_key!r}] has missing values.")
        labels, unit = _units_in_order(column)
        n_rows = len(labels)
    check_memory(n_rows * cmap.n_targets * 4 * 2, "the predicted connectivity profiles",
                 "predict per unit (unit_key=) or for fewer cells at a time.")
    if unit_key is None:
        values = cmap.predict(embedding)
    else:
        counts = np.bincount(unit.ravel(), minlength=n_rows)
        mean = sp.csr_matrix((1.0 / counts[unit.ravel()], (unit.ravel(), np.arange(len(unit)))),
                             shape=(n_rows, len(unit)))
        values = cmap.predict(mean @ np.asarray(embedding, dtype=np.float64))
    return pd.DataFrame(values, index=pd.Index(labels, name=unit_key or "cell"),
                        columns=pd.Index(cmap.targets, name="target"))


def _units_in_order(column) -> tuple[np.ndarray, np.ndarray]:
    """The units of an ``obs`` column as text, in the column's own order (a categorical's
    categories, numbers by value, text alphabetically: units 2 before 10), and each cell's.
    """
    import pandas as pd

    column = pd.Series(column)
    if isinstance(column.dtype, pd.CategoricalDtype):
        values = column.cat.remove_unused_categories().cat.categories
    else:
        values = pd.Index(pd.unique(column))
        try:
            values = values.sort_values()
        except TypeError:  # mixed types: as they first occur
            pass
    labels = label_strings(pd.Series(np.asarray(values, dtype=object)))
    position = pd.Index(values).get_indexer(column)
    return labels, position

