"""Predicting connectivity from expression on held-out cells, with folds that respect space."""

from __future__ import annotations

import logging
import numbers
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import (
    check_anndata,
    check_memory,
    check_option,
    expression_matrix,
    label_strings,
    no_obs_column,
    spatial_coordinates,
    whole_number,
)
from ..io import as_connectivity
from ..io._connectivity import cell_rows
from ..pp._normalize import check_cells_and_values
from . import _ridge
from ._expression_pca import expression_pcs

logger = logging.getLogger(__name__)

METHODS = ("spacon", "smoothed", "expression", "genes", "position", "expression+position",
           "distance", "distance+mean", "mean", "null")
# predicted without features (see _baseline_predictors)
PROFILE_BASELINES = ("distance", "distance+mean", "mean")
FIT_ELEMENTS = 2**23  # most training profile entries the distance decay is fitted on
POSITION_CENTRES = 64  # Gaussian bumps of the "position" features for ridge
SMOOTHING_HOPS = 3  # the "smoothed" baseline: as tl.smoothed_expression and spacon run's
# smoothing encoder
PREDICTORS = ("ridge", "knn")
Predictor = Literal["ridge", "knn"]
INNER_FOLDS = 4  # inner cross-validation folds of the ridge penalty
MAX_GENES = 2000  # the "genes" feature space's cap


def spatial_folds(
    adata,
    n_folds: int = 5,
    *,
    section_key: str | None = None,
    section_order=None,
    spatial_key: str = "spatial",
    unit_key: str | None = None,
    mirror_axis: int | None = None,
    midline: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Assign cells to ``n_folds`` spatially contiguous folds.

    With ``section_key``: runs of consecutive sections (in section order), so a test section's
    in-plane neighbours are all in the test fold. Without: k-means blocks of the coordinates.
    With ``unit_key`` every connectivity unit goes whole into the fold of most of its cells,
    so no unit's connectivity is seen in training and tested.

    Parameters
    ----------
    adata
        Annotated data with coordinates (or sections).
    n_folds
        Number of folds (>= 2).
    section_key, section_order
        Fold by runs of sections (see :func:`spacon.pp.section_codes`).
    spatial_key
        ``obsm`` key of coordinates for k-means blocks.
    unit_key
        ``obs`` column of connectivity units, kept whole.
    mirror_axis
        For both hemispheres: the coordinate (column of ``obsm[spatial_key]``, e.g. 0 for x)
        across which the brain is mirrored. It is reflected about ``midline`` before the
        k-means blocks, so a region and its mirror region in the other hemisphere fall in the
        same fold: their expression is much alike, and with one in training the other is not
        really held out. Folds by sections are left as they are, with a warning (a coronal
        section holds both hemispheres).
    midline
        Where ``mirror_axis`` crosses the midline (0 in MNI or fsaverage coordinates; about
        5,700 µm on the Allen CCF's left-right axis). Default: the middle of the coordinate's
        range, right only when both hemispheres reach equally far out.
    seed
        Seed of the k-means blocks.

    Returns
    -------
    The fold (``0..n_folds-1``) of each cell.
    """
    check_anndata(adata, "spacon.tl.spatial_folds")
    n_folds = whole_number("folds", n_folds, 2)
    if section_key is not None:
        from ..pp import section_codes

        if mirror_axis is not None:
            warnings.warn(_MIRROR_BY_SECTION, SpaconWarning, stacklevel=2)
        codes, order = section_codes(adata, section_key, section_order)
        if len(order) < n_folds:
            raise SpaconInputError(
                f"{n_folds} folds by section need at least {n_folds} sections; the data have "
                f"{len(order)}. Use fewer folds or folds by spatial blocks (without section_key=)."
            )
        fold = (codes * n_folds) // len(order)
    else:
        from sklearn.cluster import KMeans

        coords = mirrored(spatial_coordinates(adata, spatial_key), mirror_axis, midline)
        if adata.n_obs < n_folds:
            raise SpaconInputError(f"{n_folds} folds need at least {n_folds} cells.")
        # on the points sorted by their coordinates, so that the blocks do not depend on the
        # order of the rows (k-means++ draws its first centres by row)
        by_place = np.lexsort(coords.T[::-1])
        km = KMeans(n_folds, n_init=4, random_state=seed).fit(coords[by_place])
        # fold ids ordered along the first coordinate, for readable output
        rank = np.argsort(np.argsort(km.cluster_centers_[:, 0]))
        fold = np.empty(len(coords), dtype=np.int64)
        fold[by_place] = rank[km.labels_]
    if unit_key is not None:
        if unit_key not in adata.obs:
            raise SpaconInputError(no_obs_column(adata, unit_key, "connectivity units", "unit column "))
        units = label_strings(adata.obs[unit_key])
        table = pd.crosstab(units, fold)
        majority = dict(zip(table.index, table.columns[table.to_numpy().argmax(axis=1)]))
        fold = np.array([majority[u] for u in units])
        n_left = len(np.unique(fold))
        if n_left < n_folds:
            warnings.warn(
                f"with whole connectivity units ({unit_key!r}) only {n_left} of {n_folds} folds "
                "hold cells: a unit goes whole to the fold of most of its cells, and some units "
                "span more than a fold. Use fewer folds or finer units.", SpaconWarning,
                stacklevel=2)
    return np.asarray(fold, dtype=np.int64)


_MIRROR_BY_SECTION = (
    "mirror_axis is not applied to folds by section (section_key=): a coronal or horizontal "
    "section holds both hemispheres, so mirror regions already share its fold. For sagittal "
    "sections fold by spatial blocks instead (leave out section_key).")


def mirrored(coords: np.ndarray, axis: int | None, midline: float | None = None) -> np.ndarray:
    """``coords`` with column ``axis`` reflected about ``midline`` (default: the middle of its
    range; unchanged when ``axis`` is None): mirror-image positions of the two hemispheres
    coincide.
    """
    if axis is None:
        return coords
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) \
            or not 0 <= axis < coords.shape[1]:
        raise SpaconInputError(f"mirror_axis must be a coordinate column from 0 to "
                               f"{coords.shape[1] - 1} (e.g. 0 for x), got {axis!r}.")
    out = np.array(coords, dtype=np.float64)
    if midline is None:
        midline = (out[:, axis].min() + out[:, axis].max()) / 2
    elif isinstance(midline, (bool, np.bool_)) or not isinstance(midline, numbers.Real) \
            or not np.isfinite(midline):
        raise SpaconInputError(f"midline must be a coordinate (a finite number), got "
                               f"{midline!r}.")
    out[:, axis] = np.abs(out[:, axis] - midline)
    return out


def profile_rows(adata, connectivity, unit_key: str | None) -> np.ndarray:
    """The connectivity row of each cell (its unit's, with ``unit_key``)."""
    if unit_key is not None:
        from ..pp import unit_codes

        cell_unit, used = unit_codes(adata, unit_key, connectivity)
        return used[cell_unit]
    return cell_rows(adata.obs_names, connectivity, stacklevel=4)


def pearson_rows(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows: 0 where the prediction is constant and the truth is
    not (a flat row tells nothing; left out, it would leave a method that abstains scored on
    its confident rows only), NaN where the truth is constant (no method can be judged there).
    """
    p = pred - pred.mean(axis=1, keepdims=True)
    t = true - true.mean(axis=1, keepdims=True)
    p_norm, t_norm = (p**2).sum(axis=1), (t**2).sum(axis=1)
    denom = np.sqrt(p_norm * t_norm)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (p * t).sum(axis=1) / denom, np.nan)
    r[(t_norm > 0) & (p_norm == 0)] = 0.0
    return r


def auroc_rows(score: np.ndarray, connected: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of ``score`` for ``connected`` per row (ties count half).

    NaN for rows with no connected or no unconnected target.
    """
    ranks = stats.rankdata(score, axis=1)
    n_pos = connected.sum(axis=1)
    n_neg = connected.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * connected).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _standardise(f: np.ndarray, train: np.ndarray) -> np.ndarray:
    mu, sd = f[train].mean(axis=0), f[train].std(axis=0)
    return (f - mu) / np.where(sd > 0, sd, 1.0)


def _knn_predictor(features, train, test, targets, k):
    """Held-out rows -> mean target row of their ``k`` nearest training cells."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, int(train.sum()))
    nn = NearestNeighbors(n_neighbors=k).fit(features[train])
    _, idx = nn.kneighbors(features[test])

    def predict(positions):
        b = len(positions)
        mean = sp.csr_matrix((np.full(b * k, 1.0 / k), (np.repeat(np.arange(b), k),
                                                         idx[positions].ravel())),
                             shape=(b, targets.shape[0]))
        return _ridge.dense_rows(mean @ targets, np.arange(b))

    return predict


def _expression_genes(adata, train) -> np.ndarray:
    """The highly variable genes (``var['highly_variable']``, else all), at most
    ``MAX_GENES`` of them: the most variable in the training cells.
    """
    x = expression_matrix(adata)
    if "highly_variable" in adata.var:
        x = x[:, adata.var["highly_variable"].to_numpy(dtype=bool)]
    if x.shape[1] > MAX_GENES:  # choose on the (sparse) matrix, densify only what is kept
        xt = x[np.flatnonzero(train)]
        mean = np.asarray(xt.mean(axis=0)).ravel()
        square = np.asarray((xt.multiply(xt) if sp.issparse(xt) else xt**2).mean(axis=0)).ravel()
        x = x[:, np.sort(np.argsort(-(square - mean**2))[:MAX_GENES])]
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def _check_kwargs(model_kwargs: dict, train_kwargs: dict) -> None:
    """Unknown keys of ``model_kwargs`` / ``train_kwargs``, said before any fold trains."""
    import inspect

    from ..model import SpaCon

    for name, kwargs, function, taken in (
            ("model_kwargs", model_kwargs, SpaCon.__init__, {"adata"}),
            ("train_kwargs", train_kwargs, SpaCon.train, {"auxiliary"})):
        parameters = inspect.signature(function).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            continue  # takes any keyword (wrapped)
        known = set(parameters) - {"self"} - taken
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise SpaconInputError(
                f"{name} has {', '.join(map(repr, unknown))}, which "
                f"{function.__qualname__.replace('.__init__', '')}() does not take; it takes "
                f"{', '.join(sorted(known))}.")


def _spacon_embedding(adata, connectivity, rows, test, unit_key, graph_kwargs, model_kwargs,
                      train_kwargs, connectivity_code=None):
    """Train with the test cells' connectivity hidden; embed everyone by the spatial encoder.

    ``connectivity_code`` (``{"n_components", "weight"}``) adds the auxiliary objective
    (:class:`spacon.model.ConnectivityCodeObjective`) on the training cells' masked rows.
    """
    from .. import pp
    from ..io import Connectivity
    from ..model import ConnectivityCodeObjective, SpaCon

    hidden = np.zeros(connectivity.n, dtype=bool)
    hidden[np.unique(rows[test])] = True
    keep = sp.diags((~hidden).astype(np.float32))
    masked = Connectivity(keep @ connectivity.matrix @ keep, connectivity.labels)
    a = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpaconWarning)  # held-out cells are isolated on purpose
        pp.connectome_graph(a, masked, unit_key=unit_key, **graph_kwargs)
    model = SpaCon(a, **model_kwargs)
    auxiliary = None
    if connectivity_code:
        profiles = masked.matrix.tocsr()
        profiles = abs(profiles) if graph_kwargs.get("negative") == "absolute" else \
            profiles.maximum(0)
        auxiliary = ConnectivityCodeObjective(
            profiles[rows], ~test, connectivity_code["n_components"],
            model.params["hidden_dims"][-1], weight=connectivity_code.get("weight", 1.0),
            seed=model_kwargs.get("seed") or 0)
    model.train(**{"progress": False, **train_kwargs}, auxiliary=auxiliary)
    view = a.copy()
    for key in list(view.obsp):
        if key.startswith("connectome"):
            del view.obsp[key]
    view.uns.pop("connectome_neighbors", None)
    model.embed(view)  # no connectome on the data: the spatial encoder alone
    return view.obsm["X_spacon_spa"]


def position_basis(coords: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """The coordinates and ``POSITION_CENTRES`` Gaussian bumps over them, for ridge.

    The bumps sit at k-means centres of the training cells, each as wide as the median
    distance from a centre to its nearest other: a linear model of these fits a smooth surface
    over space (a kernel smoother), where the coordinates alone fit a plane.
    :func:`fold_features` gives the bumps, together, the weight of the coordinates, so that
    ridge's penalty keeps the plane and bends it where the data ask.
    """
    from scipy.spatial.distance import cdist
    from sklearn.cluster import KMeans

    # k-means on distinct points (as many centres as asked), sorted: the same bumps whatever
    # the order of the rows
    fit = np.unique(coords[train], axis=0)
    if len(fit) > 20_000:
        fit = fit[np.sort(np.random.default_rng(seed).choice(len(fit), 20_000, replace=False))]
    k = min(POSITION_CENTRES, len(fit) // 2)
    if k < 2:
        return coords
    centres = KMeans(k, n_init=1, random_state=seed).fit(fit).cluster_centers_
    gaps = cdist(centres, centres)
    np.fill_diagonal(gaps, np.inf)
    width = float(np.median(gaps.min(axis=1)))
    bumps = np.exp(-cdist(coords, centres, "sqeuclidean") / (2 * width**2))
    return np.hstack([coords, bumps])


def fold_features(adata, methods, train, *, coords, n_pcs, seed, spacon=None,
                  predictor: str = "ridge") -> dict:
    """The feature spaces of one fold, each standardised on the training cells.

    ``spacon`` is the spatial embedding of a model trained with this fold's connectivity
    hidden (needed for ``"spacon"``). For ridge, position is ``spacon.tl._predict.position_basis``.
    """
    raw = {}
    if "spacon" in methods:
        raw["spacon"] = spacon
    if {"smoothed", "expression", "expression+position"} & set(methods):
        raw["expression"] = expression_pcs(adata, train, n_pcs, seed)
    if "smoothed" in methods:
        from ._smooth import _spatial_graph, average_over_graph

        # the training cells' PCs of every cell, averaged over the spatial graph: no
        # connectivity and no training, the baseline SpaCon's spatial encoder has to beat
        raw["smoothed"] = average_over_graph(raw["expression"],
                                             _spatial_graph(adata, _keys.SPATIAL_GRAPH),
                                             SMOOTHING_HOPS)
    if "genes" in methods:
        raw["genes"] = _expression_genes(adata, train)
    raw["position"] = (position_basis(coords, train, seed) if predictor == "ridge"
                       and {"position", "expression+position"} & set(methods) else coords)
    feats = {m: _standardise(f, train) for m, f in raw.items()}
    d = coords.shape[1]
    if feats["position"].shape[1] > d:  # the bumps weigh as much as the coordinates, together
        feats["position"][:, d:] *= np.sqrt(d / (feats["position"].shape[1] - d))
    if "expression+position" in methods:  # each block scaled to unit total variance
        blocks = [feats[k] for k in ("expression", "position")]
        feats["expression+position"] = np.hstack(
            [b / np.sqrt(max(b[train].var(axis=0).sum(), 1e-12)) for b in blocks])
    return {m: feats[m] for m in methods if m != "null" and m not in PROFILE_BASELINES}


def predict_fold(feats: dict, predictor: str, train, test, y_train, groups,
                 n_neighbors: int, inner: dict | None = None) -> tuple[dict, dict]:
    """Predictors of held-out profiles from each feature space: ``(predict, ridge_alphas)``.

    ``predict[method](positions)`` gives the predicted profiles (dense) of the held-out cells
    at ``positions`` (indices into ``np.flatnonzero(test)``), so that a fold is scored a block
    of cells at a time. ``y_train`` (sparse) holds the training cells' profiles; ``groups``
    each training cell's inner fold, for the ridge penalty; ``inner[method][group]`` the
    features to choose it on when that group is held out (a nested penalty), where given.
    """
    predict, alphas = {}, {}
    fit_rows, predict_rows = np.flatnonzero(train), np.flatnonzero(test)
    for m, f in feats.items():
        if predictor == "knn":
            predict[m] = _knn_predictor(f, train, test, y_train, n_neighbors)
            continue
        alphas[m] = _ridge.choose_alpha(f, y_train, fit_rows, groups,
                                        (inner or {}).get(m))
        fit = _ridge.ridge_fit(f, y_train, fit_rows)
        predict[m] = (lambda positions, fit=fit, f=f, a=alphas[m]:
                      _ridge.ridge_predict(fit, f, predict_rows[positions], a))
    return predict, alphas


def spatial_null_order(coords_test: np.ndarray, units_test: np.ndarray | None = None):
    """The spatially-aware null's permutation of the held-out cells.

    Held-out cell ``i`` gets the prediction of cell ``perm[i]``: a half-length circular shift
    along the first coordinate, as spatially smooth as the predictions, no longer tied to the
    cell. With ``units_test`` (each held-out cell's connectivity unit, whose profile is its
    truth) a cell must land in another unit: where the cells' shift would leave one in its own
    unit (a fold of few, large units), whole units are shifted instead, by their mean first
    coordinate, each cell taking the cell of the same rank along it in its new unit. ``None``
    where the held-out cells are all of one unit: no shift breaks their link to the truth.
    """
    perm = _half_shift(coords_test[:, 0])
    if units_test is None:
        return perm
    _, unit = np.unique(units_test, return_inverse=True)
    n_units = int(unit.max()) + 1 if len(unit) else 0
    if n_units < 2:
        return None
    if not (unit[perm] == unit).any():
        return perm
    size = np.bincount(unit, minlength=n_units)
    centre = np.bincount(unit, weights=coords_test[:, 0], minlength=n_units) / size
    moved = _half_shift(centre)  # unit u takes the cells of unit moved[u]
    members = np.lexsort((coords_test[:, 0], unit))  # by unit, then along the axis
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.empty(len(unit), dtype=np.int64)
    rank[members] = np.arange(len(unit)) - start[unit[members]]
    target = moved[unit]
    return members[start[target] + rank % size[target]]


def _half_shift(values: np.ndarray) -> np.ndarray:
    """Item ``i`` takes item ``perm[i]``, half the items away in the order of ``values``."""
    order = np.argsort(values, kind="stable")
    perm = np.empty_like(order)
    perm[order] = np.roll(order, len(order) // 2)
    return perm


def _inner_groups(adata, train, section_key, section_order, spatial_key, unit_key, seed,
                  mirror_axis=None, midline=None):
    """Inner folds of the training cells for the ridge penalty: runs of sections (k-means
    blocks when fewer than ``INNER_FOLDS`` training sections), connectivity units whole.
    """
    sub = adata[train]
    n_inner = min(INNER_FOLDS, sub.n_obs)
    if section_key is not None and sub.obs[section_key].nunique() < n_inner:
        section_key = None
    if section_key is not None:  # predict_connectivity has said so once
        mirror_axis = None
    with warnings.catch_warnings():  # an inner fold left empty only narrows the penalty's search
        warnings.filterwarnings("ignore", "with whole connectivity units", SpaconWarning)
        groups = spatial_folds(sub, n_inner, section_key=section_key,
                               section_order=section_order, spatial_key=spatial_key,
                               unit_key=unit_key, mirror_axis=mirror_axis, midline=midline,
                               seed=seed)
    if len(np.unique(groups)) < 2:
        raise SpaconInputError(
            "the ridge predictor's penalty needs training cells in at least two connectivity "
            "units; use predictor='knn' (--predictor knn) or more units.")
    return groups


def connected_targets(connectivity, *, threshold: float | None = None,
                      top_k: int | None = None, negative: str = "drop",
                      symmetrize: bool = False) -> tuple[sp.csr_matrix, dict]:
    """Which targets count as connected, by the rule that builds the connectome graph.

    Entries kept by :func:`spacon.pp.sparsify` with the same ``threshold`` (value above it,
    or above 0), ``top_k`` (each row's strongest), ``negative`` handling and ``symmetrize``
    (an entry kept in either direction).

    Returns
    -------
    ``(kept, rule)``: the kept entries (sparse, same shape as the matrix) and the rule stated
    as ``{"threshold", "top_k", "negative", "symmetrize", "description"}``.
    """
    from ..pp import sparsify

    kept = sparsify(connectivity.matrix.tocsr(), threshold=threshold, top_k=top_k,
                    negative=negative, symmetrize=symmetrize)
    cut = 0.0 if threshold is None else threshold
    text = f"value > {cut:g}" + (f", then the {top_k} strongest targets of each row"
                                 if top_k is not None else "")
    text += ", kept in either direction" if symmetrize else ""
    return kept, {"threshold": threshold, "top_k": top_k, "negative": negative,
                  "symmetrize": symmetrize,
                  "description": text + " (the rule that builds the connectome graph)"}


def _score_fold(predict: dict, y_test, connected, own: np.ndarray) -> dict:
    """Per method: mean over held-out cells of Pearson r, AUROC and squared error over every
    target but the cell's own (``own``: each held-out cell's column), computed a block of
    cells at a time (``y_test`` and ``connected`` are sparse).
    """
    n, n_targets = y_test.shape
    r = {m: [] for m in predict}
    auc = {m: [] for m in predict}
    sq = dict.fromkeys(predict, 0.0)
    for block in _ridge.row_blocks(n, n_targets, 2**23):
        others = np.ones((len(block), n_targets), dtype=bool)
        others[np.arange(len(block)), own[block]] = False

        def drop_own(values, others=others):
            return values[others].reshape(len(others), n_targets - 1)

        truth = drop_own(_ridge.dense_rows(y_test, block))
        hit = drop_own(_ridge.dense_rows(connected, block) > 0)
        for m, fn in predict.items():
            p = drop_own(fn(block))
            r[m].append(pearson_rows(p, truth))
            auc[m].append(auroc_rows(p, hit))
            sq[m] += float(((p - truth) ** 2).sum())
    out = {}
    for m in predict:
        a = np.concatenate(auc[m])
        out[m] = {"pearson_r": float(np.nanmean(np.concatenate(r[m]))),
                  "auroc": float(np.nanmean(a)) if np.isfinite(a).any() else None,
                  "mse": sq[m] / (n * max(n_targets - 1, 1))}
    return out


def _baseline_predictors(methods, coords, rows, train, test, y_train, n_targets: int,
                         seed: int) -> dict:
    """``predict[method](positions)`` of the baselines without features: ``"distance"``
    (distance decay fitted on training profiles, one intercept), ``"distance+mean"`` (the
    same on each target's training mean) and ``"mean"`` (the training mean profile).
    """
    if not methods:
        return {}
    mean = _mean_profile(y_train, rows[train], n_targets)
    predict = {}
    if "mean" in methods:
        predict["mean"] = lambda positions: np.broadcast_to(mean, (len(positions), n_targets))
    centres = _target_centres(coords, rows, n_targets)
    held = coords[test]
    located = np.isfinite(centres[:, 0])
    for method, level in (("distance", np.zeros_like(mean)), ("distance+mean", mean)):
        if method not in methods:
            continue
        decay, a, c, b = _fit_distance_decay(coords, centres, rows, np.flatnonzero(train),
                                             y_train, level, seed)

        def distance(positions, decay=decay, a=a, c=c, b=b, level=level):
            d = _distances(held[positions], centres)
            out = a * np.exp(-d / decay) + c * level + b
            out[:, ~located] = mean[~located]
            return out

        predict[method] = distance
    return predict


def _mean_profile(y_train, own: np.ndarray, n_targets: int) -> np.ndarray:
    """The training rows' mean of each target, each row's own target left out (as scored)."""
    y = sp.csr_matrix(y_train)
    total = np.asarray(y.sum(axis=0), dtype=np.float64).ravel()
    diagonal = np.asarray(y[np.arange(y.shape[0]), own], dtype=np.float64).ravel()
    total -= np.bincount(own, weights=diagonal, minlength=n_targets)
    count = y.shape[0] - np.bincount(own, minlength=n_targets)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _target_centres(coords: np.ndarray, rows: np.ndarray, n_targets: int) -> np.ndarray:
    """Each target's position: the centroid of the cells whose profile is its row (NaN for a
    target without cells in the data).
    """
    counts = np.bincount(rows, minlength=n_targets).astype(np.float64)
    sums = np.column_stack([np.bincount(rows, weights=c, minlength=n_targets)
                            for c in coords.T])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distances, points x centres (NaN centres give NaN)."""
    squared = ((points**2).sum(axis=1)[:, None] + (centres**2).sum(axis=1)[None]
               - 2 * points @ np.nan_to_num(centres).T)
    squared[:, ~np.isfinite(centres[:, 0])] = np.nan
    return np.sqrt(np.maximum(squared, 0.0))


def _fit_distance_decay(coords, centres, rows, fit_rows, y_train, mean, seed: int):
    """``(lambda, a, c, b)`` of ``a exp(-d / lambda) + c mean_j + b`` (``mean_j``: target
    ``j``'s training mean, :func:`_mean_profile`) with the least squared error on (a sample
    of) the training profiles, own targets and targets without cells left out; ``lambda``
    from 24 values spaced evenly in log between the 1st and 99th percentiles of the
    distances.

    ``mean`` of zeros gives the decay with one shared intercept (``c = 0``): the
    ``"distance"`` baseline. With the targets' means (``"distance+mean"``) the decay sits on
    each target's own level, as every ridge model's per-target intercept does; a target
    strong from everywhere (a hub in functional connectivity) is otherwise fitted by the decay
    alone (human FC: r 0.33 with one intercept, 0.65 with the levels). Neither form wins
    everywhere, so both are scored.
    """
    n_targets = centres.shape[0]
    take = min(len(fit_rows), max(1, FIT_ELEMENTS // max(n_targets, 1)))
    sample = np.sort(np.random.default_rng(seed).choice(len(fit_rows), take, replace=False))
    d = _distances(coords[fit_rows[sample]], centres)
    y = np.asarray(_ridge.dense_rows(y_train, sample), dtype=np.float64)
    use = np.isfinite(d)
    use[np.arange(len(sample)), rows[fit_rows[sample]]] = False
    level = np.broadcast_to(np.asarray(mean, dtype=np.float64), d.shape)[use]
    d, y = d[use], y[use]
    positive = d[d > 0]
    if len(positive) < 2:  # every target in one place: no decay to fit
        return 1.0, 0.0, 0.0, float(y.mean()) if len(y) else 0.0
    best = None
    m_mean, y_mean = level.mean(), y.mean()
    m_c, y_c = level - m_mean, y - y_mean
    for decay in np.geomspace(*np.percentile(positive, [1, 99]), 24):
        x = np.exp(-d / decay)
        a, c = _two_slopes(x - x.mean(), m_c, y_c)
        b = float(y_mean - a * x.mean() - c * m_mean)
        error = float(((a * x + c * level + b - y) ** 2).sum())
        if best is None or error < best[0]:
            best = (error, float(decay), a, c, b)
    return best[1:]


def _two_slopes(x: np.ndarray, m: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, c)`` of ``y ~ a x + c m`` (all three centred), on columns scaled to
    unit spread so that tiny connectivity values keep their slope; a column without spread
    gets slope 0 (targets alike: the mean adds nothing).
    """
    scale = np.array([x.std(), m.std()])
    use = scale > 0
    slopes = np.zeros(2)
    if use.any():
        cols = np.column_stack([x, m])[:, use] / scale[use]
        gram, rhs = cols.T @ cols, cols.T @ y
        slopes[use] = np.linalg.lstsq(gram, rhs, rcond=None)[0] / scale[use]
    return float(slopes[0]), float(slopes[1])


def _summarise(per_fold: dict) -> dict:
    result = {}
    for m, scores in per_fold.items():
        row = {}
        for metric in ("pearson_r", "auroc", "mse"):
            v = np.array(scores[metric], dtype=float)
            ok = np.isfinite(v).any()
            row[metric] = float(np.nanmean(v)) if ok else None
            row[f"{metric}_sd"] = float(np.nanstd(v)) if ok else None
        result[m] = row | {"per_fold": scores}
    return result


def predict_connectivity(
    adata,
    connectivity,
    *,
    unit_key: str | None = None,
    folds: int = 5,
    holdout_key: str | None = None,
    section_key: str | None = None,
    section_order=None,
    spatial_key: str = "spatial",
    methods=METHODS,
    predictor: Predictor = "ridge",
    n_neighbors: int = 15,
    n_pcs: int = 30,
    threshold: float | None = None,
    top_k: int | None = None,
    negative: str = "drop",
    symmetrize: bool = False,
    model_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    connectivity_code: int = 0,
    connectivity_code_weight: float = 1.0,
    mirror_axis: int | None = None,
    midline: float | None = None,
    nested_penalty: bool = False,
    seed: int = 0,
) -> dict:
    """Predict held-out cells' connectivity profiles from expression, and score them.

    For each fold the held-out cells' connectivity is hidden: their rows and columns (their
    units', with ``unit_key``) are zeroed before the connectome graph is built, SpaCon is
    trained, and every cell is embedded by the spatial encoder alone. Each held-out cell's
    profile (its row of the connectivity: what it sends to every unit) is then predicted from
    the training cells' profiles in each feature space, all standardised on training cells:

    * ``"spacon"``: the spatial encoder's embedding;
    * ``"smoothed"``: the ``"expression"`` PCs averaged over the spatial graph 3 times
      (:func:`spacon.tl.smoothed_expression`, the smoothing encoder of ``spacon run``): no
      connectivity and no training, the simplest spatially aware baseline;
    * ``"expression"``: ``n_pcs`` principal components of expression (fit on training cells);
    * ``"genes"``: the expression of every highly variable gene (``var['highly_variable']``
      when present, else all genes; at most 2,000, the most variable in training cells);
    * ``"position"``: the coordinates; for ridge with 64 Gaussian bumps over them
      (``spacon.tl._predict.position_basis``), so that ridge fits a smooth surface, not a plane;
    * ``"expression+position"``: PCs and coordinates, each block scaled to unit total variance;
    * ``"distance"``: connectivity that decays with distance, ``a exp(-d / lambda) + b`` of
      the distance ``d`` from the cell to each target (its unit's cells' centroid), the three
      numbers fitted by least squares on training profiles (``lambda`` on a grid);
      ``"distance+mean"`` the same on each target's training mean, ``a exp(-d / lambda) + c
      mean_j + b`` (``c`` fitted too: a target strong from everywhere, a hub, sits on its own
      level, as in ridge's per-target intercepts); targets
      without cells get their training mean. Connection strength falls with distance in every
      connectome: the baseline a reviewer tries first;
    * ``"mean"``: the training cells' mean profile for every held-out cell (how well the
      typical profile, e.g. hub targets, predicts any one);
    * ``"null"``: SpaCon's predictions moved to other held-out cells by a circular shift
      along the held-out cells' spatial order, which keeps the predictions' spatial smoothness
      but breaks their link to the cell (a spatially-aware permutation null); where that
      would leave a cell in its own connectivity unit, whole units are shifted, and a fold of
      one unit has no null (left out, with a warning).

    Predictors: ``"ridge"``, multi-output ridge regression whose penalty minimises the squared
    error of a 4-fold cross-validation inside the training cells only (runs of training
    sections, or k-means blocks; units kept whole), or ``"knn"``, the mean profile of the
    ``n_neighbors`` nearest training cells.

    Scores per held-out cell, over every target but its own (the diagonal: a region's
    connection to itself is no prediction, and is 0 in many connectomes): Pearson r between
    predicted and true profile, the AUROC of the prediction for the connected targets, and
    the mean squared error. "Connected" follows the rule that builds the connectome graph
    (``spacon.tl._predict.connected_targets``: above ``threshold`` or 0, then each row's
    ``top_k`` strongest). Means over cells per fold, then mean and standard deviation over
    folds.

    Parameters
    ----------
    adata
        Log-normalised expression with a spatial graph (:func:`spacon.pp.spatial_graph`).
    connectivity
        :class:`~spacon.io.Connectivity` (or path / square matrix): rows = sources.
    unit_key
        ``obs`` column mapping cells to connectivity units.
    folds, holdout_key
        ``folds`` spatially contiguous folds (:func:`spatial_folds`), or the folds given by
        ``obs[holdout_key]``: each distinct value is a fold; a boolean column is one fold
        (``True`` = held out).
    section_key, section_order, spatial_key
        Sections and coordinates (folds by runs of sections when ``section_key`` is given).
    methods
        Which of the feature spaces above to compare.
    predictor
        ``"ridge"`` (default) or ``"knn"``.
    n_neighbors, n_pcs
        Neighbours of the k-NN predictor; principal components for ``"expression"``.
    threshold, top_k, negative, symmetrize
        Passed to :func:`spacon.pp.connectome_graph`; they also define "connected".
    model_kwargs, train_kwargs
        Passed to :class:`spacon.SpaCon` and :meth:`spacon.SpaCon.train`.
    connectivity_code, connectivity_code_weight
        When above 0, SpaCon is trained with an auxiliary objective
        (:class:`spacon.model.ConnectivityCodeObjective`): its spatial embedding also
        predicts the top ``connectivity_code`` principal components of the training cells'
        connectivity rows (computed on the fold's training rows, held-out rows and columns
        removed), weighted by ``connectivity_code_weight``. Off by default.
    mirror_axis, midline
        Both hemispheres: mirror regions go into the same outer and inner folds (see
        :func:`spatial_folds`; the default midline is the middle of all cells' range, the
        same for the inner folds).
    nested_penalty
        Choose ridge's penalty for SpaCon's embedding on embeddings trained with each inner
        fold's connectivity hidden as well (one more model per inner fold, so SpaCon's part
        takes about five times as long). Without it the penalty is chosen on the fold's one
        embedding, whose training saw the inner folds' connectivity, so the inner
        cross-validation favours a weaker penalty than held-out data would. The feature
        spaces without training need no nesting (with ``predictor="knn"`` or without
        ``"spacon"`` it does nothing, and a warning says so).
    seed
        Seed of folds, PCA and training.

    Returns
    -------
    ``{method: {"pearson_r", "pearson_r_sd", "auroc", "auroc_sd", "mse", "mse_sd",
    "per_fold": {...}}}`` (``per_fold`` holds each fold's scores and, for ridge, its
    ``ridge_alpha``). Also stored in ``adata.uns['spacon_connectivity_prediction']``:
    ``metrics`` (without ``per_fold``), ``folds`` (each cell's), ``predictor``,
    ``n_neighbors`` and ``connected`` (the rule, see ``spacon.tl._predict.connected_targets``).
    """
    check_anndata(adata, "spacon.tl.predict_connectivity")
    methods, n_pcs = _checked_methods(methods, n_pcs, predictor, negative, connectivity_code)
    connectivity = as_connectivity(connectivity)
    if _keys.connectivities(_keys.SPATIAL_GRAPH) not in adata.obsp:
        raise SpaconInputError("adata has no spatial graph; run spacon.pp.spatial_graph first.")
    check_cells_and_values(adata)
    rows = profile_rows(adata, connectivity, unit_key)
    if connectivity.n < 3:
        raise SpaconInputError(
            f"the connectivity has {connectivity.n} targets; scoring a held-out profile leaves "
            "its own target out, so at least 3 are needed.")
    if nested_penalty and (predictor != "ridge" or "spacon" not in methods):
        warnings.warn("nested_penalty only changes how ridge's penalty is chosen for SpaCon's "
                      f"embedding; with predictor={predictor!r} and methods {list(methods)} "
                      "it does nothing.", SpaconWarning, stacklevel=2)
    if mirror_axis is not None:  # checked before any training; one midline for every fold
        midline = _midline(adata, spatial_key, mirror_axis, midline, section_key)
    fold = _folds(adata, folds, holdout_key, section_key, section_order, spatial_key, unit_key,
                  seed, mirror_axis, midline)
    matrix = _predicted_values(connectivity, negative)
    kept, rule = connected_targets(connectivity, threshold=threshold, top_k=top_k,
                                   negative=negative, symmetrize=symmetrize)
    # profiles stay sparse; ridge keeps features x targets numbers, scoring blocks of cells
    check_memory((max(n_pcs, MAX_GENES if "genes" in methods else 0) + 3) * matrix.shape[1]
                 * 8 * 3, "ridge coefficients (features x connectivity targets)",
                 "use coarser units (unit_key=) or predictor='knn'.")
    coords = spatial_coordinates(adata, spatial_key)
    graph_kwargs = {"threshold": threshold, "top_k": top_k, "negative": negative,
                    "symmetrize": symmetrize}
    model_kwargs = {"seed": seed, **(model_kwargs or {})}
    train_kwargs = {"seed": seed, **(train_kwargs or {})}
    if "spacon" in methods:
        _check_kwargs(model_kwargs, train_kwargs)

    named = (np.unique(adata.obs[holdout_key].astype(str).to_numpy())
             if holdout_key is not None
             and not pd.api.types.is_bool_dtype(adata.obs[holdout_key].dtype) else None)
    for f in np.unique(fold[fold >= 0]):  # every fold, before any is trained
        _check_fold(f if named is None else f"{named[f]!r} of adata.obs[{holdout_key!r}]",
                    rows, fold == f, fold != f)
    spacon_kwargs = {"connectivity": connectivity, "rows": rows, "unit_key": unit_key,
                     "graph_kwargs": graph_kwargs, "model_kwargs": model_kwargs,
                     "train_kwargs": train_kwargs, "connectivity_code": (
                         {"n_components": connectivity_code, "weight": connectivity_code_weight}
                         if connectivity_code else None)}
    inner_kwargs = {"section_key": section_key, "section_order": section_order,
                    "spatial_key": spatial_key, "unit_key": unit_key, "seed": seed,
                    "mirror_axis": mirror_axis, "midline": midline}
    per_fold = {m: {"pearson_r": [], "auroc": [], "mse": []} for m in methods}
    no_null = []
    for f in np.unique(fold[fold >= 0]):
        test = fold == f
        train = ~test
        y_train, y_test = matrix[rows[train]], matrix[rows[test]]
        embedding = (_spacon_embedding(adata, test=test, **spacon_kwargs)
                     if "spacon" in methods else None)
        feats = fold_features(adata, methods, train, coords=coords, n_pcs=n_pcs, seed=seed,
                              spacon=embedding, predictor=predictor)
        groups = (_inner_groups(adata, train, **inner_kwargs)
                  if predictor == "ridge" and feats else None)
        inner = (_inner_embeddings(adata, train, test, groups, spacon_kwargs)
                 if nested_penalty and groups is not None and "spacon" in feats else None)
        predict, alphas = predict_fold(feats, predictor, train, test, y_train, groups,
                                       n_neighbors, inner)
        predict.update(_baseline_predictors(
            [m for m in methods if m in PROFILE_BASELINES], coords, rows, train, test,
            y_train, matrix.shape[1], seed))
        perm = spatial_null_order(coords[test], rows[test]) if "null" in methods else None
        if perm is not None:
            predict["null"] = (lambda positions, fn=predict["spacon"], perm=perm:
                               fn(perm[positions]))
        scores = _score_fold(predict, y_test, kept[rows[test]], rows[test])
        if "null" in methods and perm is None:  # one unit held out: no null to draw
            scores["null"] = dict.fromkeys(("pearson_r", "auroc", "mse"))  # None: not scored
            no_null.append(f)
        for m in methods:
            for metric, value in scores[m].items():
                per_fold[m][metric].append(value)
            if m in alphas:
                per_fold[m].setdefault("ridge_alpha", []).append(alphas[m])
        logger.info("fold %s: %s", f, {m: None if scores[m]["pearson_r"] is None
                                        else round(scores[m]["pearson_r"], 3) for m in methods})
    if no_null:
        warnings.warn(
            f"the spatial null is left out of {len(no_null)} of the "
            f"{len(per_fold['null']['mse'])} folds: their held-out cells are all of one "
            "connectivity unit, so moving SpaCon's predictions among them keeps each on its "
            "own unit's profile (hold out several units per fold to have it).", SpaconWarning,
            stacklevel=2)
    result = _summarise(per_fold)
    adata.uns[_keys.CONNECTIVITY_PREDICTION] = {
        "metrics": {m: {k: v for k, v in d.items() if k != "per_fold"} for m, d in result.items()},
        "folds": fold, "predictor": predictor, "n_neighbors": n_neighbors, "connected": rule,
    }
    return result


def _midline(adata, spatial_key: str, mirror_axis: int, midline: float | None,
             section_key: str | None) -> float:
    """Where ``mirror_axis`` crosses the midline (checked; the middle of its range when not
    given), with a warning that folds by section are not mirrored.
    """
    if section_key is not None:
        warnings.warn(_MIRROR_BY_SECTION, SpaconWarning, stacklevel=3)
    coords = spatial_coordinates(adata, spatial_key)
    mirrored(coords, mirror_axis, midline)
    if midline is None:
        midline = float(coords[:, mirror_axis].min() + coords[:, mirror_axis].max()) / 2
    return midline


def _predicted_values(connectivity, negative: str) -> sp.csr_matrix:
    """The connectivity values that are predicted and scored: negative ones dropped (with a
    warning) or made positive (``negative="absolute"``).
    """
    matrix = connectivity.matrix.tocsr()
    n_negative = int((matrix.data < 0).sum())
    if n_negative and negative == "drop":
        warnings.warn(
            f"{n_negative:,} negative connectivity values ({n_negative / matrix.nnz:.0%} of the "
            "non-zero ones) are predicted and scored as 0 (negative='drop', as the connectome "
            "graph drops them); negative='absolute' keeps their strength, 'error' refuses "
            "them.", SpaconWarning, stacklevel=3)
    return abs(matrix) if negative == "absolute" else matrix.maximum(0)


def _checked_methods(methods, n_pcs, predictor, negative, connectivity_code):
    """:func:`predict_connectivity`'s methods (a tuple) and ``n_pcs``, its options checked."""
    if isinstance(methods, str):  # one method, not a string's letters
        methods = (methods,)
    n_pcs = whole_number("n_pcs", n_pcs)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SpaconInputError(f"unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if "null" in methods and "spacon" not in methods:
        raise SpaconInputError("the 'null' method permutes SpaCon's predictions: add 'spacon'.")
    check_option("predictor", predictor, PREDICTORS)
    check_option("negative", negative, ("drop", "absolute", "error"))
    if connectivity_code < 0:
        raise SpaconInputError(f"connectivity_code must be >= 0 (0: off), got "
                               f"{connectivity_code}.")
    return tuple(methods), n_pcs


def _inner_embeddings(adata, train, test, groups, spacon_kwargs) -> dict:
    """The nested penalty's SpaCon embeddings: one per inner fold, trained with that fold's
    connectivity hidden as well as the held-out cells', standardised on the rest.
    """
    cells = np.flatnonzero(train)
    inner = {"spacon": {}}
    for g in np.unique(groups):
        held = np.isin(np.arange(adata.n_obs), cells[groups == g])
        inner["spacon"][g] = _standardise(_spacon_embedding(
            adata, test=test | held, **spacon_kwargs), train & ~held)
    return inner


def _check_fold(f, rows, test, train):
    if not train.any():
        raise SpaconInputError(f"fold {f} holds every cell; nothing is left to train on.")
    shared = np.intersect1d(rows[test], rows[train])
    if len(shared):
        raise SpaconInputError(
            f"fold {f}: {len(shared)} connectivity units have cells both held out and in "
            "training, so their connectivity would leak; hold out whole units."
        )


def _folds(adata, folds, holdout_key, section_key, section_order, spatial_key, unit_key, seed,
           mirror_axis=None, midline=None):
    if holdout_key is None:  # mirror folds by section: predict_connectivity has warned
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            fold = spatial_folds(adata, folds, section_key=section_key,
                                 section_order=section_order, spatial_key=spatial_key,
                                 unit_key=unit_key,
                                 mirror_axis=None if section_key is not None else mirror_axis,
                                 midline=midline, seed=seed)
        for w in said:  # (an empty fold) at the line that called predict_connectivity
            warnings.warn(w.message, w.category, stacklevel=3)
        return fold
    if holdout_key not in adata.obs:
        raise SpaconInputError(no_obs_column(adata, holdout_key, "the folds to hold out",
                                             "hold-out column "))
    col = adata.obs[holdout_key]
    if col.isna().any():
        raise SpaconInputError(f"adata.obs[{holdout_key!r}] has missing values.")
    if pd.api.types.is_bool_dtype(col.dtype):  # numpy's bool or pandas' nullable "boolean"
        col = col.astype(bool)
        if not col.any() or col.all():
            raise SpaconInputError(
                f"adata.obs[{holdout_key!r}] must mark some, not all, cells as held out.")
        return np.where(col.to_numpy(), 0, -1)  # one fold (0) is tested; -1 always trains
    _, fold = np.unique(col.astype(str).to_numpy(), return_inverse=True)
    if fold.max() < 1:
        raise SpaconInputError(f"adata.obs[{holdout_key!r}] has one value: no fold to hold out.")
    return fold.ravel()
