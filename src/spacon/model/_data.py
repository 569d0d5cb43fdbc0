"""What the model reads from an AnnData: expression and the two graphs, checked once."""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import expression_matrix
from ..graph import FactoredGraph
from ..graph._stored import connectome_graph_of, spatial_graph_of


@dataclass
class ModelData:
    """Expression and graphs of one AnnData, as the model trains on or embeds them.

    Built by :meth:`from_adata`; the AnnData itself is only read.

    Attributes
    ----------
    adata
        The data the arrays come from (results of :meth:`spacon.SpaCon.embed` go there).
    features
        Expression, cells x genes, float32 (dense or CSR).
    spatial
        Incoming spatial edges of every cell.
    connectome
        Incoming connectivity edges, or ``None`` (spatial encoder alone).
    """

    adata: object
    features: np.ndarray | sp.csr_matrix
    spatial: FactoredGraph
    connectome: FactoredGraph | None

    @classmethod
    def from_adata(
        cls,
        adata,
        var_names: np.ndarray,
        *,
        layer: str | None = None,
        spatial_key: str = _keys.SPATIAL_GRAPH,
        connectome_key: str | None = _keys.CONNECTOME_GRAPH,
        connectome_optional: bool = False,
    ) -> ModelData:
        """Check ``adata`` against the model's genes and read its expression and graphs.

        Parameters
        ----------
        adata
            Annotated data with the model's genes, in the model's order.
        var_names
            The model's genes.
        layer
            Read expression from ``adata.layers[layer]`` instead of ``X``.
        spatial_key, connectome_key
            Keys of the graphs; ``connectome_key=None`` reads the spatial graph alone.
        connectome_optional
            Read the spatial graph alone when ``adata`` has no connectome graph (new tissue).

        Returns
        -------
        The model's view of ``adata``.
        """
        from ..pp import check_expression

        check_genes(adata, var_names)
        if layer is not None and layer not in adata.layers:
            raise SpaconInputError(
                f"adata.layers has no {layer!r} (it has: {', '.join(adata.layers) or 'none'}).")
        check_expression(adata, layer=layer)
        x = expression_matrix(adata, layer)
        features = (sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x)
                    else np.asarray(x, dtype=np.float32))
        if connectome_key is not None and connectome_optional and not has_graph(
                adata, connectome_key):
            connectome_key = None
        graphs, missing = [], []  # both graphs' problems said at once
        for read, key in ((spatial_graph_of, spatial_key), (connectome_graph_of, connectome_key)):
            try:
                graphs.append(None if key is None else read(adata, key))
            except SpaconInputError as err:
                missing.append(str(err))
        if missing:
            raise SpaconInputError(" And ".join(missing))
        return cls(adata, features, *graphs)

    def fingerprint(self) -> str:
        """Identifies the training data: the expression's shape and sum, each graph's shape,
        degrees and summed weights (cheap at whole-brain scale). A checkpoint records it, so
        that training is not resumed on other data or graphs.
        """
        import hashlib

        h = hashlib.sha1()
        x = self.features
        total = x.data.sum(dtype=np.float64) if sp.issparse(x) else x.sum(dtype=np.float64)
        h.update(f"expression {x.shape} {float(total)!r}".encode())
        for name, graph in (("spatial", self.spatial), ("connectome", self.connectome)):
            if graph is None:
                h.update(f"{name} none".encode())
                continue
            m = graph.unit_in
            h.update(f"{name} {m.shape} {m.nnz} {float(m.data.sum(dtype=np.float64))!r}".encode())
            h.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(graph.cell_unit, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.features.shape[0]

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return self.features.shape[1]

    def expression(self, cells: np.ndarray | None = None, device="cpu") -> torch.Tensor:
        """Dense float32 expression of ``cells`` (default: all) on ``device``."""
        x = self.features if cells is None else self.features[cells]
        if sp.issparse(x):
            x = x.toarray()
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def has_graph(adata, key: str) -> bool:
    """Whether ``adata`` holds a graph under ``key`` (cell level or a factored connectome)."""
    return _keys.connectivities(key) in adata.obsp or _keys.neighbors(key) in adata.uns


def check_genes(adata, var_names: np.ndarray) -> None:
    """Refuse data whose genes are not the model's, in the model's order."""
    genes = np.asarray(adata.var_names).astype(str)
    if len(genes) == len(var_names) and (genes == var_names).all():
        return
    missing = sorted(set(var_names) - set(genes))
    extra = sorted(set(genes) - set(var_names))
    if missing:
        raise SpaconInputError(
            f"the data's genes differ from the model's: {len(missing)} missing (e.g. "
            f"{', '.join(missing[:5])})"
            + (f", {len(extra)} extra (e.g. {', '.join(extra[:5])})" if extra else "")
            + "; the model needs its genes (listed under 'var_names' in the model directory's "
            "model.json).")
    detail = f"{len(extra)} more" if extra else "in another order"
    raise SpaconInputError(
        f"the data hold the model's genes ({detail}): select them in the model's order first, "
        "adata[:, genes].copy() with genes = the model's var_names (SpaCon.var_names, or "
        "'var_names' in the model directory's model.json).")


def preprocessing_of(adata, spatial_key: str, connectome_key: str | None,
                     layer: str | None = None) -> dict:
    """How ``adata`` was preprocessed: normalisation, whether the expression the model reads
    (``X`` or ``layers[layer]``) looked like raw counts, and both graphs' parameters.
    """
    from ..pp._normalize import holds_integers, looks_like_counts

    def params(key):
        stored = adata.uns.get(_keys.neighbors(key)) if key is not None else None
        return dict(stored["params"]) if stored and "params" in stored else None

    norm = adata.uns.get(_keys.NORMALIZE)
    return {"normalize": None if norm is None else dict(norm),
            "expression": {"looks_like_counts": looks_like_counts(adata, layer),
                           "integers": holds_integers(adata, layer)},
            "spatial_graph": params(spatial_key), "connectome_graph": params(connectome_key)}


def prepare_like(adata, preprocessing: dict, *, spatial_key: str = _keys.SPATIAL_GRAPH,
                 normalize: bool = True) -> list[str]:
    """Preprocess new tissue as the training data were; returns what was done.

    Raw counts are normalised as the training data were (unless ``normalize=False``) and the
    spatial graph is built with the training data's settings when ``adata`` has none (the
    section column is used when ``adata`` has it; the section order is the new tissue's).
    """
    from .. import pp
    from ..pp._normalize import looks_like_counts

    done = []
    norm = preprocessing.get("normalize")
    if (normalize and norm and _keys.NORMALIZE not in adata.uns
            and looks_like_counts(adata, integer=norm.get("integer_counts", True))):
        normalize_as_trained(adata, norm, stacklevel=5)
        done.append(f"normalised (total counts {norm['target_sum']:g} + log1p)")
    graph = preprocessing.get("spatial_graph")
    if graph and _keys.connectivities(spatial_key) not in adata.obsp:
        section_key = graph.get("section_key")
        section_key = section_key if section_key in adata.obs else None
        radius = graph.get("radius")
        # squidpy records its n_neighbors default beside a radius it built the graph with
        pp.spatial_graph(
            adata, radius=radius, n_neighbors=graph.get("n_neighbors") if radius is None else None,
            spatial_key=graph.get("spatial_key", _keys.SPATIAL), section_key=section_key,
            z_radius=graph.get("z_radius") if section_key else None, key_added=spatial_key)
        warn_if_graph_density_differs(
            adata, graph, spatial_key, "Rescale obsm['spatial'] to the training data's units, "
            "or build the graph yourself (spacon.pp.spatial_graph) before preparing.",
            stacklevel=5)
        how = (f"radius {graph['radius']:g}" if graph.get("radius") is not None
               else f"{graph.get('n_neighbors')} nearest neighbours")
        done.append(f"spatial graph built as for training ({how})")
    return done


DENSITY_RATIO = 3.0  # a graph this many times denser or sparser than training's is suspect


def normalize_as_trained(adata, norm: dict, stacklevel: int = 3) -> None:
    """Normalise raw counts as a model's training data were (``norm``: their record): each
    cell's total over the genes the training data were totalled over, so that genes the file
    holds beyond those change nothing; a warning when it lacks some of them.
    """
    from .. import pp

    genes = norm.get("genes")
    pp.normalize(adata, target_sum=norm["target_sum"], genes=genes,
                 integer_counts=bool(norm.get("integer_counts", True)))
    if genes is None:  # a model saved before genes were recorded
        return
    held = int(np.asarray(adata.var_names.isin(np.asarray(genes, dtype=str))).sum())
    if held < len(genes):
        warnings.warn(
            f"the training data's cells were normalised over the total counts of "
            f"{len(genes):,} genes; these data hold {held:,} of them, so each cell's total, "
            "and with it the embedding, shifts. Normalise the cells with all their genes "
            "first, as the training data were, then keep the model's: spacon.pp.normalize("
            "adata, genes=model.preprocessing['normalize']['genes']) (spacon embed and "
            "predict do it when given the whole file).",
            SpaconWarning, stacklevel=stacklevel)


def warn_if_graph_density_differs(adata, trained: dict, key: str, advice: str,
                                  stacklevel: int = 3) -> None:
    """Warn when the spatial graph built for new tissue with the training settings has far
    more or fewer neighbours per cell than the training data's: coordinates in other units
    (mm against um) give a radius graph of hundreds of neighbours, or of none.
    """
    built = (adata.uns.get(_keys.neighbors(key)) or {}).get("params", {})
    new, old = built.get("mean_neighbors"), trained.get("mean_neighbors")
    if not new or not old or 1 / DENSITY_RATIO <= new / old <= DENSITY_RATIO:
        return
    warnings.warn(
        f"the spatial graph built with the training settings has {new:.1f} neighbours per cell "
        f"here against {old:.1f} in the training data: are the coordinates in the same units "
        f"(e.g. um, not mm)? {advice}", SpaconWarning, stacklevel=stacklevel)


def check_preprocessing(adata, preprocessing: dict, layer: str | None = None) -> None:
    """Refuse raw counts when the model was trained on normalised expression."""
    from ..pp._normalize import looks_like_counts, warn_if_unlogged

    norm = preprocessing.get("normalize")
    if (norm and _keys.NORMALIZE not in adata.uns
            and looks_like_counts(adata, integer=norm.get("integer_counts", True))):
        raise SpaconInputError(
            "adata.X looks like raw counts, but the model was trained on log-normalised "
            f"expression (total counts {norm['target_sum']:g} + log1p): normalise it first with "
            "spacon.pp.normalize(adata), or let SpaCon.load(..., prepare=True) do it.")
    # normalised outside spacon (scanpy's normalize_total + log1p): nothing records how, so
    # counts can only be refused (models saved before this record skip the check)
    expression = preprocessing.get("expression") or {}
    # counts of low depth (none above 20) do not look like counts, but are whole numbers
    trained_on_counts = expression.get("looks_like_counts") or expression.get("integers")
    if (not norm and trained_on_counts is False
            and (layer is None or layer in adata.layers) and looks_like_counts(adata, layer)):
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        raise SpaconInputError(
            f"{where} looks like raw counts, but the model was trained on expression that did "
            "not (normalised outside spacon, e.g. scanpy.pp.normalize_total + log1p): "
            "normalise the new tissue as the training data were first.")
    if norm and layer is None and _first_check(adata):  # load, embed and predict all check
        if warn_if_unlogged(adata, None, stacklevel=4):
            return
        total = (adata.uns.get(_keys.NORMALIZE) or {}).get("target_sum") or normalized_total(adata)
        if not total and _keys.NORMALIZE not in adata.uns and log1p_of_counts(adata):
            warnings.warn(
                "adata.X looks like log1p of raw counts (expm1(X) holds whole numbers whose "
                "totals differ from cell to cell): it was not normalised per cell, but the "
                f"model's training data were (to {norm['target_sum']:g} counts per cell before "
                "log1p), so the embedding mixes depth with expression. Give the raw counts "
                "(spacon embed / predict and SpaCon.load(..., prepare=True) normalise them), or "
                "normalise them first: adata.X = numpy.expm1(adata.X), then "
                "spacon.pp.normalize(adata).", SpaconWarning, stacklevel=3)
        if total and not 1 / TOTAL_RATIO <= total / norm["target_sum"] <= TOTAL_RATIO:
            counts = (f" The raw counts look to be in layers[{_keys.COUNTS!r}]: read those "
                      f"instead (spacon embed / predict: --layer {_keys.COUNTS}; in Python, "
                      f"normalise them: spacon.pp.normalize(adata, layer={_keys.COUNTS!r}))."
                      if _keys.COUNTS in adata.layers and looks_like_counts(
                          adata, _keys.COUNTS, integer=norm.get("integer_counts", True))
                      else "")
            warnings.warn(
                f"adata.X was normalised to {total:.4g} counts per cell, but the model's "
                f"training data to {norm['target_sum']:g} (before log1p): the embedding shifts "
                f"with the scale. Normalise the raw counts to {norm['target_sum']:g} per cell "
                "before log1p, as the training data were (spacon.pp.normalize does it, and "
                f"spacon embed / predict when given counts).{counts}", SpaconWarning,
                stacklevel=3)


_SCALE_CHECKED: dict[int, weakref.ref] = {}  # the data whose scale was checked already


def _first_check(adata) -> bool:
    """Whether ``adata`` is checked for the first time (AnnData cannot be hashed: by id)."""
    seen = _SCALE_CHECKED.get(id(adata))
    if seen is not None and seen() is adata:
        return False
    key = id(adata)
    _SCALE_CHECKED[key] = weakref.ref(adata, lambda _: _SCALE_CHECKED.pop(key, None))
    return True


TOTAL_RATIO = 1.5  # counts per cell this many times those of training are another scale


def log1p_of_counts(adata, n_cells: int = 2000) -> bool:
    """Whether ``X`` is ``log1p`` of raw counts: ``expm1(X)`` whole numbers, among them ones
    and some above 1 (normalised values are whole only where a cell's total divides the
    target, and then no count of 1 stays 1 unless the cell holds exactly the target).
    """
    x = expression_matrix(adata, None)
    rows = np.linspace(0, adata.n_obs - 1, min(n_cells, adata.n_obs)).astype(np.int64)
    sample = x[rows]
    values = (sample.data if sp.issparse(sample) else np.asarray(sample).ravel()).astype(
        np.float64)
    values = values[values != 0]
    if not len(values) or not np.isfinite(values).all() or values.min() < 0:
        return False
    with np.errstate(over="ignore"):
        counts = np.expm1(values)
    if not np.isfinite(counts).all():
        return False
    whole = np.abs(counts - np.round(counts)) <= 1e-2  # float32's log1p holds counts to 1e-3
    return bool(whole.all() and counts.max() > 1.5 and (np.round(counts) == 1).any())


def normalized_total(adata, n_cells: int = 2000) -> float | None:
    """The counts per cell that log-normalised ``X`` was scaled to (``sum(expm1(x))`` is the
    same in every cell after ``normalize_total`` + ``log1p``), or ``None`` where the totals
    differ (raw counts; genes selected after normalising).
    """
    x = expression_matrix(adata, None)
    rows = np.linspace(0, adata.n_obs - 1, min(n_cells, adata.n_obs)).astype(np.int64)
    sample = x[rows]
    sample = sample.toarray() if sp.issparse(sample) else np.asarray(sample)
    with np.errstate(over="ignore"):
        totals = np.expm1(sample.astype(np.float64)).sum(axis=1)
    totals = totals[totals > 0]  # cells without counts stay empty after normalising
    if not len(totals) or not np.isfinite(totals).all():
        return None
    mean = totals.mean()
    return None if totals.std() > 0.01 * mean else float(mean)
