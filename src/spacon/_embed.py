"""``spacon embed``: a trained model on new tissue, with or without its connectome."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from . import _keys
from ._errors import SpaconInputError, SpaconWarning
from ._pipeline import (
    DOMAINS_CSV,
    MARKERS_CSV,
    RunConfig,
    call_domains,
    check_inputs_not_outputs,
    check_normalize_options,
    check_out_is_not_the_model,
    check_truth,
    checked,
    domain_table,
    drop_domain_calls,
    prepare_output,
    read_input,
    remove_other_results,
    write_marker_table,
)
from .model._data import check_genes, normalize_as_trained
from .pp._normalize import looks_like_counts

logger = logging.getLogger(__name__)


def embed_new_tissue(config: RunConfig, model_dir: str | Path):
    """Embed ``config.adata`` with the model in ``model_dir`` and call its domains.

    The tissue is preprocessed as the training data were: raw counts normalised the same way
    over all genes (unless ``no_normalize``), then restricted to the model's genes when it holds
    more; the spatial graph built with the training settings, each graph option given in
    ``config`` overriding (keys, radius or neighbours, sections). It is embedded by the spatial
    encoder alone unless a connectivity file is given.

    Returns
    -------
    The annotated data and what :func:`~spacon._pipeline.call_domains` returns; writes
    ``OUT/result.h5ad``
    and ``OUT/domains.csv``.
    """
    from . import pp
    from .io import read_connectivity, write_h5ad, write_text
    from .model import SpaCon
    from .model._spacon import model_directory, read_model_json

    model_dir = model_directory(model_dir)
    if config.connectivity is None and any(a > 0 for a in config.alpha or []):
        raise SpaconInputError(
            "without --connectivity new tissue is embedded by the spatial encoder alone: use "
            "--alpha 0 (or give its connectivity).")
    config = checked(config.updated({"no_connectivity": config.connectivity is None}))
    check_inputs_not_outputs(config, ("result.h5ad", DOMAINS_CSV, MARKERS_CSV))
    check_out_is_not_the_model(config, model_dir)
    out = prepare_output(config.out, config.overwrite)
    adata = read_input(config.adata, config.layer)
    check_truth(adata, config.truth)
    meta = read_model_json(model_dir)
    preprocessing = meta.get("preprocessing", {})
    normalize_like_training(adata, config, preprocessing, meta["var_names"])
    adata = _model_genes(adata, model_dir)
    _spatial_graph(adata, config, preprocessing.get("spatial_graph") or {})
    _drop_earlier_embeddings(adata, connectivity=config.connectivity is not None,
                             truth=config.truth)
    if config.connectivity is None:
        _drop_stored_graph(adata, meta.get("params", {}).get("connectome_key"))
    else:
        pp.connectome_graph(
            adata, read_connectivity(config.connectivity, key=config.connectivity_key),
            unit_key=config.unit_key, spatial_key=config.spatial_key,
            **_connectome_options(config, preprocessing.get("connectome_graph") or {}))
    model = SpaCon.load(model_dir, adata)
    model.embed(adata, device=config.device, threads=config.threads)
    domains = call_domains(adata, config)
    write_h5ad(adata, out / "result.h5ad")
    write_text(domain_table(adata, config, domains).to_csv(), out / DOMAINS_CSV)
    written = ("result.h5ad", DOMAINS_CSV)
    if write_marker_table(adata, config, out):
        written += (MARKERS_CSV,)
    remove_other_results(out, written)
    return adata, domains


def _drop_earlier_embeddings(adata, connectivity: bool, truth: str | None = None) -> None:
    """An input that is a run's result holds its embeddings and domains: all are replaced
    (the connectivity embedding removed when the tissue is embedded without it), so none of
    another model's or data's stays beside the new ones.
    """
    drop_domain_calls(adata, spare=() if truth is None else (truth,))
    fused = re.compile(re.escape(_keys.EMBEDDING_FUSED) + r"(_alpha[0-9.]+)?")
    for key in [k for k in adata.obsm if fused.fullmatch(str(k))]:
        del adata.obsm[key]
    adata.uns.pop(_keys.FUSE, None)
    if not connectivity:
        adata.obsm.pop(_keys.EMBEDDING_CON, None)


def _drop_stored_graph(adata, key: str | None) -> None:
    """Without ``--connectivity`` the spatial encoder alone embeds: a connectome graph the
    input holds (e.g. a previous run's ``result.h5ad``) is left out of the embedding and of
    the result, and said so.
    """
    from .model._data import has_graph

    if key is None or not has_graph(adata, key):
        return
    adata.obsp.pop(_keys.connectivities(key), None)
    adata.obsp.pop(_keys.distances(key), None)
    adata.uns.pop(_keys.neighbors(key), None)
    warnings.warn(f"the input holds a connectome graph ({key!r}) that is not used: without "
                  "--connectivity the spatial encoder alone embeds the tissue.", SpaconWarning,
                  stacklevel=3)


def _connectome_options(config: RunConfig, trained: dict) -> dict:
    """How to cut new tissue's connectome: as given, else as the model's training graph was
    (``--threshold``, ``--top-k``, ``--negative``, ``--symmetrize``; a graph cut otherwise
    is another input: the modules of a brain embedded without the training's threshold
    came out as 2 domains, ARI 0.02, against 4, ARI 1.0 with it).
    """
    given_cut = config.threshold is not None or config.top_k is not None
    options = {"threshold": config.threshold, "top_k": config.top_k,
               "negative": config.negative, "symmetrize": config.symmetrize}
    if not given_cut:
        options.update({k: trained.get(k) for k in ("threshold", "top_k", "top_fraction")})
    if config.negative == "drop" and trained.get("negative"):  # (drop: the default)
        options["negative"] = trained["negative"]
    options["symmetrize"] = bool(config.symmetrize or trained.get("symmetrize"))
    used = {k: v for k, v in options.items() if v is not None}
    if not given_cut and trained:
        logger.info("connectome cut as for training: %s", used)
    return used


def normalize_like_training(adata, config: RunConfig, preprocessing: dict,
                            model_genes) -> None:
    """Raw counts normalised as the model's training data were (each cell's total over the
    genes the training data were totalled over, before the model's were kept, e.g.
    --n-top-genes); with --no-normalize, counts are refused in the command's words when the
    model was trained on normalised expression. Data without all of ``model_genes`` are
    refused first.
    """
    if not set(map(str, adata.var_names)).issuperset(model_genes):
        check_genes(adata, np.asarray(model_genes))  # says which are missing
    norm = preprocessing.get("normalize")
    # counts that are not whole numbers: as the model's training data were, or as asked here
    integer = norm.get("integer_counts", True) and not config.fractional_counts if norm else True
    check_normalize_options(config)
    if not norm or not looks_like_counts(adata, integer=integer):
        return
    if config.no_normalize:
        raise SpaconInputError(
            "adata.X looks like raw counts, but the model was trained on log-normalised "
            f"expression (total counts {norm['target_sum']:g} + log1p): drop --no-normalize to "
            "have it normalised as the training data were.")
    normalize_as_trained(adata, {**norm, "integer_counts": integer})


def _spatial_graph(adata, config: RunConfig, trained: dict) -> None:
    """The spatial graph: the training settings, with every option given here overriding."""
    from . import pp

    given = config.radius is not None or config.n_neighbors is not None
    radius = config.radius if given else trained.get("radius")
    n_neighbors = config.n_neighbors if given else trained.get("n_neighbors")
    if radius is None and n_neighbors is None:
        n_neighbors = 10
    if config.section_key is not None and config.section_key not in adata.obs:
        raise SpaconInputError(f"--section-key {config.section_key}: the data have no such obs "
                               f"column (they have: {', '.join(map(str, adata.obs.columns))}).")
    # the training data's sections are used where the new tissue has that column too
    section_key = config.section_key or trained.get("section_key")
    section_key = section_key if section_key in adata.obs else None
    z_radius = config.z_radius if config.z_radius is not None else trained.get("z_radius")
    # the key given, else the training's where the new tissue has it (a new file may keep
    # its coordinates under the default key although the training's used another)
    trained_key = trained.get("spatial_key", _keys.SPATIAL)
    spatial_key = (config.spatial_key if config.spatial_key != _keys.SPATIAL
                   or trained_key not in adata.obsm else trained_key)
    pp.spatial_graph(adata, radius=radius, n_neighbors=n_neighbors,
                     spatial_key=spatial_key, section_key=section_key,
                     section_order=config.section_order if section_key else None,
                     z_radius=z_radius if section_key else None)
    if not given:
        from .model._data import warn_if_graph_density_differs

        warn_if_graph_density_differs(
            adata, trained, _keys.SPATIAL_GRAPH, "Rescale the coordinates to the training "
            "data's units, or give the graph in theirs (--radius, --z-radius or --n-neighbors).")


def _model_genes(adata, model_dir: Path):
    """``adata`` restricted to the model's genes, in its order, when it holds them all."""
    from .model._spacon import read_model_json

    genes = read_model_json(model_dir)["var_names"]
    names = list(map(str, adata.var_names))
    if names == list(genes) or not set(names).issuperset(genes):
        return adata  # as the model's, or missing some (check_genes says which)
    if len(genes) < adata.n_vars:
        logger.warning("using the model's %d of the data's %d genes", len(genes), adata.n_vars)
    return adata[:, genes].copy()  # (also the same genes in another order)

