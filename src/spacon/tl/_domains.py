"""Domains from the fused embedding: a domain tree from a Gaussian mixture (default), or
Leiden/Louvain.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import check_numbers, check_obsm, check_option, writable

logger = logging.getLogger(__name__)

Method = Literal["gmm", "leiden", "louvain"]
PARALLEL_CELLS = 2000  # selection on fewer cells runs in this process
MAX_DEFAULT_JOBS = 8  # worker processes by default (each holds ~100 MB)
RESOLUTIONS = (0.01, 5.0)  # Leiden/Louvain resolutions searched for n_domains
MAX_MERGE_CELLS = 5000  # soft assignments of this many cells describe the components' overlaps
MERGED_SHARE = 0.5  # Leiden/Louvain cluster merged points only where they are this share of
# the cells or fewer (a connectivity embedding); else the cells themselves, on scanpy's graph


def domains(
    adata,
    *,
    method: Method = "gmm",
    n_domains: int | None = None,
    resolution: float | None = None,
    alpha: float | None = None,
    n_runs: int = 8,
    n_neighbors: int = 40,
    use_rep: str | None = None,
    max_fit_cells: int = 20_000,
    merge_radius: float = 0.02,
    seed: int = 0,
    n_jobs: int | None = None,
    tree_key: str | None = None,
    spatial_key: str = _keys.SPATIAL_GRAPH,
    connectome_key: str = _keys.CONNECTOME_GRAPH,
    key_added: str = _keys.DOMAIN,
    copy: bool = False,
):
    """Call spatial domains on the fused embedding, choosing their number from the data.

    The default (``method="gmm"``) fits Gaussian mixtures with one shared covariance (R
    mclust's "EEE" model). Without ``n_domains`` the number of domains is chosen among
    ``1, 2, ...`` (20 at first, more while the choice is near the top: no fixed ceiling) from
    two kinds of candidates, mixtures with ``k`` components and cuts at ``k`` of a larger
    mixture whose components are merged pairwise by entropy (Baudry et al. 2010), so that
    non-Gaussian domains can be several components. Each is fitted ``n_runs`` times on
    subsamples and scored by stability (mean pairwise ARI of the runs) x coherence (modularity
    on the spatial graph at ``alpha`` 0, on the connectome at 1, weighted in between; on the
    embedding's kNN graph when ``adata`` has neither). The score is charged 3 % for each
    doubling of the number of domains, and the fewest domains within one standard error of the
    best charged score win (see :mod:`spacon.tl._domain_selection`). The winner
    is refitted on up to ``max_fit_cells`` cells from 8 starts (of which the most likely one
    whose partition agrees with the stability runs within 0.01 ARI of the start that agrees
    most), labels every cell, and its components are
    merged by entropy (clusters under 2 % of the cells first) into the domain tree, down to one
    domain.

    ``n_domains=k`` is the tree's cut at ``k``: it cuts the tree already stored in
    ``uns[tree_key]['tree']`` (``tree_key`` defaults to ``key_added``) when that tree was built
    from the same embedding and options and judged on the same graphs, without refitting; a
    ``tree_key`` given whose tree was built from another embedding, options, cells or graphs
    is an error. Without ``tree_key`` and no
    matching tree under ``key_added``, it builds the tree as the default call does and cuts it;
    so a fixed-``k`` call always equals the default tree cut at ``k``. A ``k`` above the
    tree's leaves (the chosen number, or the larger mixture of a tree cut) fits a mixture with
    ``k`` components, not nested in the tree. Entropy merging joins the components that
    overlap most, so a cut far below the leaves can be lopsided (on 600 cells of 16 regions,
    a 60-leaf tree cut at 16 put half the cells in one domain): look at
    ``obs[key_added].value_counts()``, and where the tree is much finer than ``k``,
    ``method="leiden"`` with ``n_domains`` is the alternative.

    ``method="leiden"``/``"louvain"`` cluster a ``n_neighbors``-nearest-neighbour graph of the
    embedding at ``resolution``; with ``n_domains`` the resolution is searched to match it.
    Where merging near-identical cells (see ``merge_radius``) leaves half the points or
    fewer (cells of a connectivity unit at high alpha), the graph is the cells' kNN graph
    summed over points, so a point weighs as the cells it stands for; otherwise the cells
    are clustered on scanpy's kNN graph, as ``sc.tl.leiden`` would.

    Parameters
    ----------
    adata
        Data with ``obsm[use_rep]`` (see :func:`spacon.tl.fuse`); ``obsp['spatial_connectivities']``
        and the connectome graph, where present, judge the candidate numbers of domains.
    method
        ``"gmm"``, ``"leiden"`` or ``"louvain"``.
    n_domains
        Number of domains wanted (optional).
    resolution
        Leiden/Louvain resolution (default 1.0); not with ``method="gmm"`` (which chooses
        the number itself) nor with ``n_domains`` (which searches it).
    alpha
        The alpha the embedding was fused at, which sets the weight of the connectome against
        the spatial graph when judging domains (as :func:`spacon.tl.fuse` weights the
        embeddings). ``None``: the alpha :func:`spacon.tl.fuse` recorded for ``use_rep``
        (``uns['spacon_fuse']['alphas']``), or :func:`spacon.tl.smoothed_expression` (its
        graph's); 0 for ``'X_spacon_spa'``, 1 for ``'X_spacon_con'``; otherwise both graphs
        count equally.
    n_runs
        Mixtures fitted per candidate number of domains (each on 2,000 random cells, best of
        3 starts) to measure stability; the standard error of their agreement decides ties.
    n_neighbors
        Neighbours of the kNN graph (Leiden/Louvain, and the fallback judging graph).
    use_rep
        ``obsm`` key of the embedding. ``None``: ``'X_spacon'`` (:func:`spacon.tl.fuse`'s),
        else the one embedding spacon wrote there: ``'X_smoothed'``
        (:func:`spacon.tl.smoothed_expression`'s), ``'X_spatial_pca'``
        (:func:`spacon.tl.spatial_pca`'s) or ``'X_spacon_spa'`` (of a model trained without a
        connectome). A dual model's two embeddings are not fused here: call
        :func:`spacon.tl.fuse` first (the call says so); where several of these are present,
        name one.
    max_fit_cells
        The mixture is fitted on at most this many randomly chosen cells (components are merged
        on at most 5,000), then every cell is assigned; keeps whole-brain data fast.
    merge_radius
        Cells whose embeddings lie within ``merge_radius`` times the embedding's overall scale
        (root of the summed variances) of each other, directly or through a chain, are
        clustered as one point. At ``alpha = 1`` this merges the cells of one connectivity
        unit, so neither the mixture nor the kNN graph fits single units; distinct cells at
        low alpha lie much farther apart and are left alone. ``0`` merges only cells with
        identical embeddings (smoothing can give two cells with the same neighbourhood the
        same values).
    seed
        Random seed, a whole number from 0 to 2**32 - 1; the same seed gives the same domains.
    n_jobs
        Processes for the candidates' fits; -1: every CPU (default: the CPUs other processes
        leave idle, at most 8; one for fewer than 2,000 cells). The result does not depend
        on it.
    tree_key
        ``uns`` key whose stored tree ``n_domains`` cuts (default: ``key_added``).
    spatial_key, connectome_key
        ``key_added`` of :func:`spacon.pp.spatial_graph` and :func:`spacon.pp.connectome_graph`:
        the graphs that judge the candidates (``obsp[f'{key}_connectivities']``).
    key_added
        ``obs`` column written.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obs[key_added]`` (categorical, ``'0'`` the
    largest domain) and ``uns[key_added]`` with ``'params'``, ``'n_domains'`` and
    ``'n_merged_points'``, and ``uns[f'{key_added}_colors']`` (the domains' colours in spacon's
    figures, where scanpy's plots find them too); for ``method="gmm"`` also ``'selection'``
    (``'rule'``, ``'chosen'``,
    ``'family'`` (``'mixture'`` or ``'tree'``), ``'best_score_family'``, ``'best_score_k'``,
    ``'n_tree_leaves'``, ``'weights'`` of the graphs, ``'n_runs'``, ``'at_limit'``, a one-line
    ``'reason'`` (with ``n_domains``: that it was asked, then the data's own ``'choice'``),
    ``'labelling'`` (which start labels the cells, and why), ``'alternatives'`` (other
    numbers of domains where the score also peaks, at 80 % of the chosen one's or more, at
    most three: arrays ``'k'``, ``'family'``, ``'score'`` and ``'ratio'`` to the chosen score;
    ``n_domains=`` gives any of them: below the stored tree's leaves a cut of it, above them a
    mixture with that many components), and per family, ``'mixture'`` and
    ``'tree'``, the arrays ``'k'``,
    ``'stability'``, ``'stability_se'``, ``'modularity'`` (weighted; ``'modularity_<graph>'``
    each) and ``'score'``) and ``'tree'`` (``'merges'``: the two clusters joined at each step, scipy
    linkage numbering; ``'overlap'``: each merge's normalised entropy drop; ``'leaf_size'``;
    ``'leaves'``: every cell's leaf; ``'fingerprint'``: embedding and options it was built from;
    ``'embedding'`` and ``'cells'``: digests of the embedding and of the cell names, so that a
    key fused over since is noticed (a warning here, an error in :func:`spacon.pl.umap`);
    ``'graphs'``: the judging graphs, so that a tree is not reused once they change).
    ``'selection'`` also holds ``'margin'``: which of one standard error and 0.01 set how
    far below the best charged score fewer domains may win, and its value, and
    ``'per_doubling'``, the charge.
    """
    adata = writable(adata, copy, "spacon.tl.domains")
    check_option("method", method, ("gmm", "leiden", "louvain"))
    use_rep = _default_embedding(adata) if use_rep is None else use_rep
    check_obsm(adata, use_rep)
    _check_options(adata, method=method, n_domains=n_domains, resolution=resolution,
                   n_runs=n_runs, n_neighbors=n_neighbors, max_fit_cells=max_fit_cells,
                   merge_radius=merge_radius, seed=seed, n_jobs=n_jobs, tree_key=tree_key)
    alpha = _checked_alpha(adata, use_rep, alpha)
    z = _embedding(adata, use_rep)
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(axis=1).sum())
        raise SpaconInputError(f"adata.obsm[{use_rep!r}] has NaN or infinite values in {bad} "
                               f"cell{'s' if bad > 1 else ''}; domains need a finite embedding.")
    info: dict = {"params": {"method": method, "use_rep": use_rep, "seed": seed,
                             "merge_radius": merge_radius}}
    # cells sharing a connectivity unit nearly coincide at high alpha: cluster one point per
    # group of near-identical cells, then give every cell its group's label
    group, points = merge_near_identical(z, merge_radius)
    info["n_merged_points"] = int(len(points))
    if method == "gmm":
        options = {"alpha": alpha, "n_runs": n_runs, "max_fit_cells": max_fit_cells}
        # graphs under other keys than the defaults are named (trees built before these
        # options existed keep their fingerprints)
        options.update({name: key for name, key, default in (
            ("spatial_key", spatial_key, _keys.SPATIAL_GRAPH),
            ("connectome_key", connectome_key, _keys.CONNECTOME_GRAPH)) if key != default})
        info["params"].update({k: v for k, v in options.items() if v is not None})
        # many small fits on subsamples: threads only contend (alpha 0 of the demo brain: 4 s
        # on one thread against 39 s on two busy cores, 38 s on 16 cores beside torch's pool)
        # the limit covers the thread pools loaded when it is set: scikit-learn's OpenMP (its
        # k-means) and BLAS load with its first import, so import it first (900 cells beside two
        # busy processes, in a fresh process: 41 s with its 2 OpenMP threads, 8-9 s limited)
        import sklearn.cluster  # noqa: F401
        import sklearn.mixture  # noqa: F401

        with threadpool_limits(limits=1):
            labels = _tree_domains(adata, z, group, points, n_domains, n_neighbors, seed,
                                   tree_key or key_added, {**info["params"], **options}, info,
                                   n_jobs, given_tree=tree_key is not None)
    else:
        if len(points) > MERGED_SHARE * len(z):  # few cells merged: the cells, as scanpy
            labels, _ = _community(z, method, n_domains, resolution, n_neighbors, seed, info)
        else:  # connectivity units and modules: the points, each weighing as its cells
            labels, _ = _community(points, method, n_domains, resolution, n_neighbors, seed,
                                   info, sizes=np.bincount(group, minlength=len(points)))
            labels = labels[group]
    chosen = len(np.unique(labels))
    info["n_domains"] = int(chosen)
    reason = info.get("selection", {}).get("reason")  # the number chosen, and why
    logger.info("domains on obsm[%r]: %s", use_rep, reason or f"{method} gave {chosen} domains")
    _warn_tiny_domains(adata, labels, n_domains, key_added, alpha)
    adata.obs[key_added] = _categorical(labels)
    if alpha is not None and alpha >= UNCONNECTED_ALPHA:
        _warn_unconnected_domains(adata, key_added, alpha, connectome_key)
    adata.uns[key_added] = info
    adata.uns[f"{key_added}_colors"] = domain_colours(chosen)
    return adata if copy else None


TINY_DOMAIN = 2  # cells: a domain of this many or fewer is an outlier, named in a warning


def _check_options(adata, *, method, n_domains, resolution, n_runs, n_neighbors, max_fit_cells,
                   merge_radius, seed, n_jobs, tree_key) -> None:
    """:func:`domains`' options checked, each error naming the option and what it takes."""
    if tree_key is not None and method != "gmm":
        raise SpaconInputError(f"tree_key is for method='gmm' (a domain tree to cut); "
                               f"{method} has no tree.")
    if method == "gmm" and tree_key is not None and "tree" not in _stored(adata, tree_key):
        raise SpaconInputError(f"adata.uns has no domain tree under {tree_key!r}; call "
                               f"tl.domains(adata, method='gmm', key_added={tree_key!r}) first.")
    check_numbers(resolution=resolution, n_runs=n_runs, n_neighbors=n_neighbors,
                  max_fit_cells=max_fit_cells, merge_radius=merge_radius, n_jobs=n_jobs)
    for name, value in (("n_domains", n_domains), ("n_runs", n_runs),
                        ("n_neighbors", n_neighbors), ("max_fit_cells", max_fit_cells),
                        ("n_jobs", n_jobs)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, (int, np.integer))):
            raise SpaconInputError(f"{name} must be a whole number, got {value!r}.")
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 0 <= seed < 2**32):
        raise SpaconInputError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r} "
                               "(domains are repeatable for a seed).")
    if resolution is not None and not (np.isfinite(resolution) and resolution > 0):
        raise SpaconInputError(f"resolution must be a positive number, got {resolution!r}.")
    if resolution is not None and method == "gmm":
        raise SpaconInputError("resolution is Leiden's and Louvain's; method='gmm' chooses the "
                               "number of domains itself (or takes n_domains=).")
    if resolution is not None and n_domains is not None:
        raise SpaconInputError(f"give n_domains or resolution, not both: with n_domains "
                               f"{method} searches the resolution that gives that many.")
    for name, value, least in (("n_neighbors", n_neighbors, 1), ("max_fit_cells",
                                                                 max_fit_cells, 1)):
        if value < least:
            raise SpaconInputError(f"{name} must be at least {least}, got {value}.")
    if not (merge_radius >= 0 and np.isfinite(merge_radius)):
        raise SpaconInputError(f"merge_radius must be a finite number >= 0, got {merge_radius}.")
    if n_domains is not None and not (1 <= n_domains <= adata.n_obs):
        raise SpaconInputError(f"n_domains must be between 1 and the number of cells "
                               f"({adata.n_obs}), got {n_domains}.")
    if n_runs < 2:
        raise SpaconInputError(f"n_runs must be at least 2 to measure stability, got {n_runs}.")
    if n_jobs is not None and (int(n_jobs) == 0 or int(n_jobs) < -1):
        raise SpaconInputError(f"n_jobs must be >= 1, or -1 for every CPU, got {n_jobs}.")


def _checked_alpha(adata, use_rep: str, alpha: float | None) -> float | None:
    """The alpha of ``use_rep``'s domains: the fused embedding's own, or the one given (kept as
    given: stored trees' fingerprints hash it), which must be the embedding's.
    """
    if alpha is None:
        from ._fuse import alpha_of

        alpha = alpha_of(adata, use_rep)
    else:
        from ._fuse import alpha_of, check_alpha

        check_alpha(alpha)
        fused = alpha_of(adata, use_rep)
        if fused is not None and not np.isclose(float(alpha), fused):
            raise SpaconInputError(
                f"alpha={alpha:g}, but adata.obsm[{use_rep!r}] holds the embedding at alpha "
                f"{fused:g}: leave alpha unset to call its domains at alpha {fused:g}, or call "
                f"them on an embedding at alpha {alpha:g}: {_embedding_at(adata, use_rep, alpha)}.")
    return alpha


def _warn_tiny_domains(adata, labels: np.ndarray, n_domains: int | None, key: str,
                       alpha: float | None) -> None:
    """Warn when domains of ``TINY_DOMAIN`` cells or fewer were found among many more cells:
    a mixture gives outlying cells components of their own (spots of the olfactory bulb with
    a few counts, or without smoothing), and they count as domains.
    """
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    sizes = np.bincount(codes)
    tiny = np.flatnonzero(sizes <= TINY_DOMAIN)
    if not len(tiny) or len(labels) < 20 * TINY_DOMAIN or len(tiny) == len(sizes):
        return
    cells = np.asarray(adata.obs_names)[np.isin(codes, tiny)]
    shown = ", ".join(map(str, cells[:5])) + (", ..." if len(cells) > 5 else "")
    count = "asked for" if n_domains is not None else "found"
    at = "" if alpha is None else f" at alpha {alpha:g}"
    warnings.warn(
        f"{len(tiny)} of the {len(sizes)} domains {count} in obs[{key!r}]{at} "
        f"hold{'s' if len(tiny) == 1 else ''} "
        f"only {TINY_DOMAIN} cells or fewer ({shown}): outlying cells rather than domains. "
        "Check their counts and quality (filter them, e.g. scanpy.pp.filter_cells), or "
        "smooth the embedding over more neighbours"
        + ("" if not alpha else "; at high alpha, also their connections (a cell left "
           "without any by the connectome graph's threshold stands apart)")
        + ".", SpaconWarning, stacklevel=3)


UNCONNECTED_SHARE = 0.8  # a domain of cells at least this much without connections is said
UNCONNECTED_ALPHA = 0.5  # from this alpha the connectome's embedding weighs at least half


def _warn_unconnected_domains(adata, key: str, alpha: float, connectome_key: str) -> None:
    """Say which domains are made of cells without an incoming edge in the connectome graph
    (none in the data, or none kept by its threshold): their embeddings at high alpha agree
    because nothing connects them (11 of the 66 human regions at the ENIGMA recipe's threshold
    made one such domain).
    """
    from ..graph._stored import unconnected_cells

    alone = unconnected_cells(adata, connectome_key)
    if alone is None or not alone.any():
        return
    domains = adata.obs[key].to_numpy()
    for domain in pd.unique(domains):
        members = domains == domain
        if members.sum() > 1 and alone[members].mean() >= UNCONNECTED_SHARE:
            names = ", ".join(map(str, adata.obs_names[members & alone][:4]))
            n_alone = int((members & alone).sum())
            warnings.warn(
                f"at alpha {alpha:g}, domain {domain!r} ({int(members.sum())} cells) is made of "
                f"cells with no incoming connection in the connectome graph ({n_alone} of "
                f"them; e.g. {names}): it groups the unconnected, not cells that connect "
                "alike. Where the data connect them, keep more connections when building the "
                "graph (a lower threshold=, or top_k= with symmetrize=True).", SpaconWarning,
                stacklevel=3)


def _default_embedding(adata) -> str:
    """``use_rep=None``: the fused embedding, else the one other embedding spacon wrote (not
    a dual model's spatial one: its embeddings are to be fused at an alpha first).
    """
    if _keys.EMBEDDING_CON in adata.obsm:
        return _keys.EMBEDDING_FUSED
    written = [k for k in (_keys.EMBEDDING_FUSED, _keys.SMOOTHED, _keys.SPATIAL_PCA,
                           _keys.EMBEDDING_SPA) if k in adata.obsm]
    if len(written) > 1 and written[0] != _keys.EMBEDDING_FUSED:
        raise SpaconInputError(
            f"adata.obsm holds {' and '.join(map(repr, written))}: say which embedding to call "
            f"domains on with use_rep=, or run spacon.tl.fuse for {_keys.EMBEDDING_FUSED!r}.")
    if not written:
        held = ", ".join(repr(k) for k in adata.obsm) or "nothing"
        raise SpaconInputError(
            f"adata.obsm holds no embedding of spacon's ({held}): train a model and fuse its "
            "embeddings (spacon.SpaCon(adata).train().embed(); spacon.tl.fuse(adata, alpha)), "
            "or, without a connectome, smooth the expression over the spatial graph "
            "(spacon.tl.smoothed_expression(adata), obsm['X_smoothed']), or name an embedding "
            "of your own with use_rep= (e.g. use_rep='X_pca').")
    return written[0]


def _embedding(adata, use_rep: str) -> np.ndarray:
    """``obsm[use_rep]`` as a float64 cells x dimensions array (a sparse one made dense),
    refused when it is not numbers, has no dimensions or does not match the cells.
    """
    import scipy.sparse as sp

    value = adata.obsm[use_rep]
    if sp.issparse(value):
        value = value.toarray()
    try:
        z = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SpaconInputError(f"adata.obsm[{use_rep!r}] must hold numbers: {err}.") from None
    if z.ndim != 2 or len(z) != adata.n_obs or z.shape[1] == 0:
        raise SpaconInputError(f"adata.obsm[{use_rep!r}] must be cells x dimensions (at least "
                               f"one), got shape {z.shape} for {adata.n_obs} cells.")
    return z


def embedding_digest(z: np.ndarray) -> str:
    """SHA-1 of an embedding as :func:`_embedding` reads it (float64, C order)."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(z, dtype=np.float64).tobytes()).hexdigest()


def cells_digest(adata) -> str:
    """SHA-1 of the cell names in order: which cells an embedding's digest is of."""
    import hashlib

    return hashlib.sha1("\0".join(map(str, adata.obs_names)).encode()).hexdigest()


def embedding_changed(adata, key: str, use_rep: str, z: np.ndarray | None = None) -> str | None:
    """Why the domains in ``uns[key]`` were not called on what ``obsm[use_rep]`` holds now,
    or ``None`` (not called on that key, or nothing recorded to tell).

    The README's loop over alphas fused every alpha into ``obsm['X_spacon']``: the alpha-0
    domains then sat beside the alpha-1 embedding under the key they were called on. The
    embedding is compared only on the same cells in the same order (a subset of the cells,
    or a copy of a subset, keeps its domains and their embedding rows); a new alpha is told
    on any cells.
    """
    from ._fuse import alpha_of

    called = adata.uns.get(key, {})
    params = called.get("params", {}) if isinstance(called, dict) else {}
    if params.get("use_rep") != use_rep or use_rep not in adata.obsm:
        return None
    then, now = params.get("alpha"), alpha_of(adata, use_rep)
    new_alpha = then is not None and now is not None and float(then) != float(now)
    tree = called.get("tree", {})
    if not new_alpha:
        if tree.get("embedding") is None or tree.get("cells") != cells_digest(adata):
            return None  # nothing to compare (another set of cells, or an older tree)
        if tree["embedding"] == embedding_digest(_embedding(adata, use_rep) if z is None else z):
            return None
    alphas = f" (alpha {float(then):g} then, {float(now):g} now)" if new_alpha else ""
    return (f"obsm[{use_rep!r}] has changed since the domains in obs[{key!r}] were called on "
            f"it{alphas}")


def domain_colours(n: int) -> list[str]:
    """The colours of ``n`` domains as hex strings, stored as scanpy stores a column's colours
    (``uns[f'{key}_colors']``), so that scanpy's plots colour the domains as spacon's do.
    """
    from matplotlib.colors import to_hex

    from ..pl import palette

    return [to_hex(c) for c in palette(n)]


def start_selection_workers(n_cells: int, n_jobs: int | None = None):
    """Start the processes that :func:`domains` of ``n_cells`` cells with ``n_jobs`` will
    use, in the background (see :func:`~spacon.tl._domain_selection.start_workers`); returns
    the thread to join before calling it, or ``None``.
    """
    from ._domain_selection import start_workers

    return start_workers(_n_jobs(n_jobs, n_cells))


def _n_jobs(n_jobs: int | None, n_cells: int) -> int:
    """Processes for domain selection: ``n_jobs``, else the idle CPUs (at most
    ``MAX_DEFAULT_JOBS``) on 2,000 cells or more (below that, starting the processes costs
    more than the fits).
    """
    from .._utils import available_cpus, choose_threads

    if n_jobs is not None:
        return available_cpus() if int(n_jobs) == -1 else int(n_jobs)
    return min(choose_threads(), MAX_DEFAULT_JOBS) if n_cells >= PARALLEL_CELLS else 1


def _tree_domains(adata, z, group, points, n_domains, n_neighbors, seed, tree_key, options,
                  info, n_jobs: int | None = 1, given_tree: bool = False) -> np.ndarray:
    """Labels of every cell from the domain tree (stored, or chosen and built here; a tree the
    caller named, ``given_tree``, must have been built from this embedding and options).
    """
    stored = _stored(adata, tree_key or "")
    # the same embedding under another obsm key (spacon run's X_spacon_alpha0 and X_spacon)
    # is the same tree
    built_on = stored.get("params", {}).get("use_rep", options["use_rep"])
    fingerprint, *same = _fingerprints(z, options, built_on)
    judged_on = _graphs_fingerprint(adata, options, n_neighbors)
    stored_tree = stored.get("tree", {})
    if not given_tree and stored_tree.get("fingerprint") not in (fingerprint, *same):
        changed = embedding_changed(adata, tree_key or "", options["use_rep"], z)
        if changed:
            warnings.warn(f"{changed}; the domains are called afresh on it (to keep one set "
                          "of domains per alpha, fuse each alpha into its own obsm key: "
                          "tl.fuse(adata, alpha, key_added=f'X_spacon_alpha{alpha}')).",
                          SpaconWarning, stacklevel=3)
    if (stored_tree.get("fingerprint") in (fingerprint, *same)
            and stored_tree.get("graphs", judged_on) == judged_on):  # (older trees: no graphs)
        tree, leaves, selection = _stored_tree(stored, tree_key)
    elif given_tree:  # a tree named by the caller is cut, never silently replaced
        built = stored.get("params", {})
        raise SpaconInputError(
            f"the domain tree in uns[{tree_key!r}] was built from another embedding or options, "
            f"or judged on other graphs (obsm[{built.get('use_rep')!r}] at alpha "
            f"{built.get('alpha')}, seed "
            f"{built.get('seed')}, {len(stored['tree']['leaves'])} cells; here obsm"
            f"[{options['use_rep']!r}] at alpha {options['alpha']}, seed {options['seed']}, "
            f"{len(z)} cells). Call with the use_rep, alpha and options it was built with, on "
            "the same cells and graphs, or leave tree_key out to build a tree for this "
            "embedding.")
    else:
        tree, leaves, selection = _new_tree(adata, z, group, points, n_domains, n_neighbors,
                                            seed, options, n_jobs)
    # 'choice': the data's own choice, which the tree keeps; 'reason': this column's
    choice = selection.get("choice", selection["reason"])
    k = int(selection["chosen"]) if n_domains is None else n_domains
    capped = k > len(points) and k > tree.n_leaves  # more asked than distinct points
    selection["choice"] = choice
    asked = (f"{k} domain{'s' if k > 1 else ''} as asked (n_domains={k})" if not capped else
             f"{len(points)} domains, one per distinct point of the embedding ({k} asked, "
             f"n_domains={k})")
    selection["reason"] = choice if n_domains is None else (
        f"{asked}; the data's own choice: {choice}")
    info["selection"] = selection
    info["tree"] = {**tree.to_dict(), "leaves": leaves.astype(np.int32),
                    "fingerprint": fingerprint, "graphs": judged_on,
                    "embedding": embedding_digest(z), "cells": cells_digest(adata)}
    if k <= tree.n_leaves:
        return tree.cut(k)[leaves]
    return _beyond_the_tree(k, tree, group, points, seed, options, selection, capped)


def _stored_tree(stored: dict, tree_key: str):
    """The tree, every cell's leaf and the selection kept in ``uns[tree_key]``."""
    from ._mixture_tree import MixtureTree

    tree = MixtureTree.from_dict(stored["tree"])
    leaves = np.asarray(stored["tree"]["leaves"], dtype=np.int64)
    selection = dict(stored["selection"])
    if "alternatives" not in selection:  # a tree stored before they were recorded
        selection["alternatives"] = _alternative_arrays(_stored_alternatives(selection))
    logger.info("domains: cutting the tree stored in uns[%r]", tree_key)
    return tree, leaves, selection


def _new_tree(adata, z, group, points, n_domains, n_neighbors, seed, options, n_jobs):
    """The number of domains chosen (:mod:`._domain_selection`), the labelling mixture's tree,
    every cell's leaf and the selection's record; a warning where the choice sat at the most
    domains the cells allow.
    """
    from ._domain_selection import (
        MIN_POINTS_PER_DOMAIN,
        assign,
        coherence_graphs,
        select_n_domains,
    )
    from ._mixture_tree import MixtureTree

    if len(points) < 2:  # one cell, or every cell at one point: nothing to choose
        tree = MixtureTree(np.zeros((0, 2), dtype=np.int64), np.zeros(0), np.array([len(z)]))
        return tree, np.zeros(len(z), dtype=np.int64), {
            "rule": "a single point", "chosen": 1,
            "reason": "1 domain: every cell has the same embedding",
            "labelling": "every cell at one point: nothing to fit",
            "alternatives": _alternative_arrays([])}
    graphs = coherence_graphs(adata, options["alpha"], group, points, n_neighbors,
                              options.get("spatial_key", _keys.SPATIAL_GRAPH),
                              options.get("connectome_key", _keys.CONNECTOME_GRAPH))
    scores = select_n_domains(points, group, graphs, seed, options["n_runs"],
                              _n_jobs(n_jobs, len(z)))
    gmm, tree, labelling = _final_mixture(points, group, scores, seed, options["max_fit_cells"])
    leaves = assign(gmm, points)[group]
    tree.leaf_size = np.bincount(leaves, minlength=tree.n_leaves)
    selection = {**_selection_record(scores), "labelling": labelling}
    if scores["at_limit"] and n_domains is None:
        top = scores["families"][scores["family"]]["k"][-1]
        chosen, best_k = selection["chosen"], scores["best_score"][1]
        near = (f"{chosen} domain{'s' if chosen > 1 else ''} is" if chosen > 0.75 * top else
                f"the best score ({best_k} domains; {chosen} chosen within its margin) is")
        at = "" if options.get("alpha") is None else f"at alpha {options['alpha']:g}, "
        warnings.warn(
            f"{at}{near} near the most these {len(z)} cells allow ({top}: the candidates "
            f"stop where domains would average fewer than {MIN_POINTS_PER_DOMAIN} cells), "
            "so the data did not choose the number: more domains may exist, or none (an "
            "embedding without domains, e.g. smoothed noise, is also split as finely as "
            "the cells allow); set it with n_domains= if you know it.", SpaconWarning,
            stacklevel=4)
    return tree, leaves, selection


def _beyond_the_tree(k, tree, group, points, seed, options, selection, capped) -> np.ndarray:
    """Labels of every cell where ``k`` domains, more than the tree's leaves, were asked: one
    per distinct point where there are no more (``capped``), else a mixture of ``k``
    components (its reason in ``selection`` where it leaves some empty).
    """
    from ._domain_selection import assign, mixture

    if capped:
        warnings.warn(
            f"{k} domains asked"
            + ("" if options.get("alpha") is None else f" at alpha {options['alpha']:g}")
            + f", but adata.obsm"
            f"[{options['use_rep']!r}] has only {len(points)} distinct points ({_why_merged()}): "
            f"{len(points)} domains, one per point.", SpaconWarning, stacklevel=4)
        return np.arange(len(points))[group]
    logger.info("domains: %d domains asked, above the tree's %d leaves; fitting %d components",
                k, tree.n_leaves, k)
    labels = assign(mixture(points, k, seed, options["max_fit_cells"], group=group), points)
    found = len(np.unique(labels))
    if found < k:  # components left empty or sharing their points with others
        selection["reason"] = (f"{found} domains: a mixture with the {k} components asked "
                               f"(n_domains={k}) left {k - found} without cells; the data's "
                               f"own choice: {selection['choice']}")
        warnings.warn(f"{k} domains asked, but the mixture with {k} components gives only "
                      f"{found} (adata.obsm[{options['use_rep']!r}] has {len(points)} "
                      "distinct points, too few or too close for more).", SpaconWarning,
                      stacklevel=4)
    return labels[group]


def _final_mixture(points, group, scores, seed, max_fit_cells):
    """The mixture that labels the cells, its domain tree, and how it was chosen.

    Of the final fit's starts, the most likely one whose partition at the chosen number
    agrees with the stability runs' (mean ARI on the same cells) within 0.01 of the start
    that agrees most: the partition reported is the reproducible one that stability measured,
    where the most likely start found another (the human lobes at seed 2: ARI 0.32 against
    the lobes, where the runs' partition has 0.51).
    """
    from ._domain_selection import (
        MIN_DOMAIN_SHARE,
        assign,
        mixture,
        most_reproducible,
    )
    from ._mixture_tree import merge_by_entropy

    k, family, evaluation = scores["chosen"], scores["family"], scores["evaluation"]
    n_leaves = k if family == "mixture" else scores["n_tree_leaves"]
    merge_on = np.sort(np.random.default_rng(seed).permutation(len(group))[:MAX_MERGE_CELLS])

    def tree_of(model):
        return merge_by_entropy(model.predict_proba(points[group[merge_on]]),
                                min_size=MIN_DOMAIN_SHARE)

    def partition(model):
        labels = assign(model, points[evaluation])
        return labels if family == "mixture" else tree_of(model).cut(k)[labels]

    starts = mixture(points, n_leaves, seed, max_fit_cells, group=group).starts()
    best, agreement = most_reproducible(starts, partition, scores["run_partitions"])
    labelling = (f"start {best + 1} of {len(starts)} by likelihood, mean ARI "
                 f"{agreement[best]:.3f} with the runs at {_n(k, 'domain')} "
                 f"(the most likely: {agreement[0]:.3f})")
    return starts[best], tree_of(starts[best]), labelling


def _selection_record(scores: dict) -> dict:
    """What was chosen and why, for ``uns[key]['selection']``."""
    from ._domain_selection import ALTERNATIVE_SHARE, PER_DOUBLING, alternatives, charged

    best, family = int(scores["chosen"]), scores["family"]
    table = scores["families"][family]
    top_family, top_k = scores["best_score"]
    i = best - 1
    graphs = " + ".join(f"{w:.2g} x {name}" for name, w in scores["weights"].items())
    what = ("mixture" if family == "mixture" else
            f"cut of a {scores['n_tree_leaves']}-component entropy-merged mixture tree")
    which, margin = scores["margin"]
    best_score = scores["families"][top_family]["score"][top_k - 1]
    charge = f"charged {PER_DOUBLING:.0%} per doubling of the domains"
    if top_k == best:  # (the same number in both families scores alike: a tie)
        why = f"the best score once {charge} ({float(charged(table['score'][i], best)):.3f})"
    else:  # within the margin of the best: fewer domains win
        why = (f"the fewest domains within {which} ({margin:.3f}) of the best score once "
               f"{charge} ({_n(top_k, 'domain')}, {top_family}: {best_score:.3f}, charged "
               f"{float(charged(best_score, top_k)):.3f}; this one "
               f"{float(charged(table['score'][i], best)):.3f})")
    reason = (f"{_n(best, 'domain')} ({what}): stability x modularity "
              f"{table['stability'][i]:.3f} x {table['modularity'][i]:.3f} = "
              f"{table['score'][i]:.3f}, {why} among 1..{table['k'][-1]}; stability = mean "
              f"ARI of {scores['n_runs']} fits on subsamples, modularity on {graphs}")
    if scores["at_limit"]:
        reason += (" (at the most domains the data allow: more may exist)" if best > 0.75 * table[
            "k"][-1] else f" (the best score, at {_n(top_k, 'domain')}, is near the most "
            "domains the data allow: more may exist)")
    others = alternatives(scores["families"], best)
    if others:
        reason += (f"; the score (not charged) also peaks, at {ALTERNATIVE_SHARE:.0%} of this "
                   "one or more, at "
                   + ", ".join(f"{_n(o['k'], 'domain')} ({o['score']:.3f})" for o in others))
    return {"rule": "stability x modularity, charged per doubling, one-standard-error",
            "chosen": best, "per_doubling": PER_DOUBLING,
            "alternatives": _alternative_arrays(others),
            "family": family, "best_score_family": top_family, "best_score_k": top_k,
            "n_tree_leaves": scores["n_tree_leaves"], "weights": scores["weights"],
            "n_runs": scores["n_runs"], "at_limit": scores["at_limit"], "reason": reason,
            "margin": {"which": scores["margin"][0], "value": scores["margin"][1]},
            **scores["families"]}


def _alternative_arrays(others: list[dict]) -> dict:
    """:func:`~spacon.tl._domain_selection.alternatives` as arrays, as ``uns`` stores them."""
    return {"k": np.array([o["k"] for o in others], dtype=np.int64),
            "family": np.array([o["family"] for o in others], dtype=str),
            "score": np.array([o["score"] for o in others], dtype=np.float64),
            "ratio": np.array([o["ratio"] for o in others], dtype=np.float64)}


def _stored_alternatives(selection: dict) -> list[dict]:
    """The alternatives of a stored selection that predates them, from its score tables."""
    from ._domain_selection import alternatives

    families = {f: selection[f] for f in ("mixture", "tree") if f in selection}
    return alternatives(families, int(selection["chosen"])) if families else []


def _n(count: int, noun: str) -> str:
    """``1 domain``, ``2 domains``."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _fingerprints(z: np.ndarray, options: dict, built_on: str | None = None) -> list[str]:
    """The fingerprint of the embedding and ``options`` (the first, which a new tree stores),
    then those of the same options written otherwise: ``alpha=1`` and ``1.0``, NumPy and
    Python numbers, and the embedding under ``built_on``, its ``obsm`` key when stored.
    """
    import hashlib
    import itertools

    def forms(value):
        if isinstance(value, np.generic):  # np.int64(0) is written 0, as a tree built with it
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [value]
        number = float(value)
        out = [value, number] + ([int(number)] if number.is_integer() else [])
        return list({repr(v): v for v in out}.values())  # 1 and 1.0 are both kept

    embedding = hashlib.sha1(np.ascontiguousarray(z).tobytes())
    keys = sorted(options)
    variants = [forms(options[k]) for k in keys]
    reps = [options.get("use_rep")] + ([built_on] if built_on not in (None,
                                                                       options.get("use_rep"))
                                       else [])
    out = []
    for rep in reps:
        for values in itertools.product(*variants):
            chosen = dict(zip(keys, values))
            if "use_rep" in chosen:
                chosen["use_rep"] = rep
            h = embedding.copy()
            h.update(repr(sorted(chosen.items())).encode())
            if h.hexdigest() not in out:
                out.append(h.hexdigest())
    return out


def _graphs_fingerprint(adata, options: dict, n_neighbors: int) -> str:
    """Identifies the graphs that would judge the candidates (those with a weight above 0 at
    the options' alpha, see :func:`~spacon.tl._domain_selection.coherence_graphs`), from their
    shapes, degrees and summed weights (cheap at whole-brain scale): a tree judged on a graph
    since rebuilt or removed is not reused; a graph of no weight may change.
    """
    import hashlib

    import scipy.sparse as sp

    from ._domain_selection import graph_weights

    def matrix(m):
        m = sp.csr_matrix(m)
        h.update(f"{m.shape} {m.nnz} {float(m.data.sum())!r}".encode())
        h.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())

    spatial = _keys.connectivities(options.get("spatial_key", _keys.SPATIAL_GRAPH))
    connectome_key = options.get("connectome_key", _keys.CONNECTOME_GRAPH)
    cell_level = _keys.connectivities(connectome_key)
    stored = adata.uns.get(_keys.neighbors(connectome_key), {})
    found = ([] if spatial not in adata.obsp else ["spatial"]) + (
        ["connectome"] if cell_level in adata.obsp or "unit_connectivities" in stored else [])
    weights = graph_weights(found, options.get("alpha"))
    h = hashlib.sha1()
    if "spatial" in found and weights["spatial"] > 0:
        h.update(b"spatial")
        matrix(adata.obsp[spatial])
    if "connectome" in found and weights["connectome"] > 0:
        h.update(b"connectome")
        if cell_level in adata.obsp:
            matrix(adata.obsp[cell_level])
        else:
            matrix(stored["unit_connectivities"])
            unit_key = stored.get("params", {}).get("unit_key")
            h.update(repr(unit_key).encode())
            if unit_key in adata.obs:
                units = adata.obs[unit_key].astype(str)
                h.update(pd.util.hash_pandas_object(units, index=False).to_numpy().tobytes())
    if not any(weights.values()):  # judged on the embedding's kNN graph
        h.update(f"embedding knn {n_neighbors}".encode())
    return h.hexdigest()


def merge_near_identical(z: np.ndarray, radius: float, max_neighbors: int = 32):
    """Group points within ``radius`` x scale of each other (single linkage, KD-tree).

    Each point is linked to at most ``max_neighbors`` of its nearest points within the radius,
    so memory stays ``n x max_neighbors`` when many points coincide (a whole-brain
    connectivity embedding gave a pair list that did not fit in 24 GB); the groups are exact
    single linkage whenever no point has more neighbours than that within the radius, and a
    clump of coinciding points stays one group either way.

    Returns each point's group and the group means.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(z)
    if n < 2:
        return np.arange(n), z
    if radius <= 0:  # identical rows only, numbered in order of first appearance
        _, first, inverse = np.unique(z, axis=0, return_index=True, return_inverse=True)
        if len(first) == n:
            return np.arange(n), z
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        group = rank[inverse.ravel()]
        return group, z[np.sort(first)]
    scale = float(np.sqrt(z.var(axis=0).sum())) or 1.0
    # only points with a neighbour within the radius can be linked: find them with one
    # bounded nearest-neighbour query (fast), then link those alone
    dist, _ = cKDTree(z).query(z, k=2, distance_upper_bound=radius * scale)
    close = np.flatnonzero(np.isfinite(dist[:, 1]))
    if len(close) == 0:
        return np.arange(n), z
    k = min(max_neighbors + 1, len(close))
    dist, nearest = cKDTree(z[close]).query(z[close], k=k, distance_upper_bound=radius * scale)
    linked = np.isfinite(dist[:, 1:])
    rows = np.repeat(close, k - 1).reshape(len(close), k - 1)[linked]
    cols = close[nearest[:, 1:][linked]]
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    sizes = np.bincount(group)
    means = np.column_stack([np.bincount(group, weights=c) for c in z.T]) / sizes[:, None]
    return group, means


def _categorical(labels: np.ndarray) -> pd.Categorical:
    """Domains renumbered by size (0 = largest)."""
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.argsort(-counts, kind="stable")]
    rank = np.empty(uniq.max() + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[labels]
    return pd.Categorical.from_codes(codes, [str(i) for i in range(len(order))])


def _embedding_at(adata, use_rep: str, alpha: float) -> str:
    """How to make the embedding of ``use_rep``'s kind at ``alpha`` (for the error above)."""
    smoothed = adata.uns.get(use_rep)
    if isinstance(smoothed, dict) and "graph" in smoothed.get("params", {}):
        return (f"spacon.tl.smoothed_expression(adata, graph='both', alpha={alpha:g}), then "
                f"use_rep={_keys.SMOOTHED!r}")
    if use_rep == _keys.EMBEDDING_FUSED:
        return f"spacon.tl.fuse(adata, {alpha:g}) first"
    key = _keys.fused_for_alpha(alpha)
    return f"spacon.tl.fuse(adata, {alpha:g}, key_added={key!r}), then use_rep={key!r}"


def _why_merged() -> str:
    """Why an embedding holds fewer distinct points than cells (for the warnings)."""
    return ("cells with the same or near-identical embedding count as one, tl.domains' "
            "merge_radius: e.g. the cells of one connectivity unit at high alpha, or cells "
            "whose smoothed neighbourhoods coincide")


def _stored(adata, key: str) -> dict:
    """``adata.uns[key]`` where it is a dict (domains called under that key), else ``{}``."""
    value = adata.uns.get(key, {})
    return value if isinstance(value, dict) else {}


def _community(z, method, n_domains, resolution, n_neighbors, seed, info, sizes=None):
    """Leiden or Louvain on the points ``z``, each standing for ``sizes`` cells.

    Without merged points (``sizes`` None or all 1): on scanpy's kNN graph of the cells
    (``sc.pp.neighbors``' UMAP weights, from exact neighbours and without umap-learn's
    compilation: :mod:`._fuzzy_knn`), as scanpy clusters. With merged points: on the cells' kNN graph
    summed over points (the
    cell pairs linked between two points, and within one: a self-loop), so that a point of
    10,000 cells weighs as those cells do; on the bare points, a handful of clumps form one
    complete graph and fall into one or two communities.
    """
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    info["params"]["n_neighbors"] = n_neighbors
    single = sizes is None or (np.asarray(sizes) == 1).all()
    if len(z) < 2 or (single and len(z) < 3):  # one point, or two cells: no graph to cluster
        labels = np.arange(len(z)) if n_domains == len(z) else np.zeros(len(z), dtype=np.int64)
        info["params"]["resolution"] = None
        found = len(np.unique(labels))
        if n_domains is not None and found != n_domains:
            why = (f"adata.obsm[{info['params']['use_rep']!r}] has only {len(z)} distinct "
                   f"point{'s' if len(z) > 1 else ''} ({_why_merged()})" if len(z) < 2 else
                   f"{len(z)} cells make no graph to cluster")
            warnings.warn(f"{method} found {found} domain{'s' if found > 1 else ''}, not the "
                          f"{n_domains} asked for: {why}.", SpaconWarning, stacklevel=3)
        return labels, found
    tmp = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(len(z))]), obsm={"z": z})
    if single:
        from ._fuzzy_knn import fuzzy_connectivities

        k = max(2, min(n_neighbors, len(z) - 1))
        tmp.obsp["connectivities"] = fuzzy_connectivities(z, k, seed)
    else:
        from ._domain_selection import _knn_graph

        weight = sp.diags(np.asarray(sizes, dtype=np.float64))
        tmp.obsp["connectivities"] = (weight @ _knn_graph(z, n_neighbors, sizes) @ weight).tocsr()
    tmp.uns["neighbors"] = {"connectivities_key": "connectivities", "params": {}}

    def run(res):
        if method == "leiden":
            sc.tl.leiden(tmp, resolution=res, random_state=seed, flavor="igraph",
                         n_iterations=2, directed=False)
            return tmp.obs["leiden"].cat.codes.to_numpy()
        import random

        import igraph as ig

        g = ig.Graph.Weighted_Adjacency(tmp.obsp["connectivities"], mode="undirected")
        # igraph's Louvain draws from the generator igraph is given: a private one, seeded,
        # then igraph's default (Python's random module) put back, as scanpy's leiden does;
        # igraph has no getter, so a generator a user had set is replaced by that default
        ig.set_random_number_generator(random.Random(seed))
        try:
            return np.asarray(g.community_multilevel(weights="weight", resolution=res).membership)
        finally:
            ig.set_random_number_generator(random)

    if n_domains is None:
        res = 1.0 if resolution is None else resolution
        labels = run(res)
    else:
        # bisection on the resolution; keep the closest count if none matches exactly
        lo, hi = RESOLUTIONS
        best = None
        for _ in range(20):
            res = (lo + hi) / 2
            labels = run(res)
            k = len(np.unique(labels))
            if best is None or abs(k - n_domains) < abs(best[2] - n_domains):
                best = (res, labels, k)
            if k == n_domains:
                break
            lo, hi = (res, hi) if k < n_domains else (lo, res)
        res, labels, k = best
        if k != n_domains:
            points = info["n_merged_points"]
            where = f"adata.obsm[{info['params']['use_rep']!r}]"
            advice = (f" method='gmm' gives any number of domains up to {where}'s {points} "
                      "distinct points." if min(n_domains, points) > k else
                      f" {where} has only {points} distinct points ({_why_merged()}), so no "
                      "method gives more domains." if n_domains > points else "")
            warnings.warn(
                f"{method} found {k} domains, not the {n_domains} asked for, on {where} at the "
                f"resolutions tried between {RESOLUTIONS[0]:g} and {RESOLUTIONS[1]:g}; the "
                f"closest is kept (obs holds {k} domains).{advice}", SpaconWarning,
                stacklevel=3)
        info["params"]["resolution_search"] = True
    info["params"]["resolution"] = float(res)
    return labels, len(np.unique(labels))
