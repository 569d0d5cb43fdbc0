"""``spacon embed``: a trained model on new tissue, with or without its connectome."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ._errors import SpaconInputError
from ._pipeline import (
    DOMAINS_CSV,
    RunConfig,
    call_domains,
    check_truth,
    checked,
    domain_table,
    prepare_output,
    read_input,
)

logger = logging.getLogger(__name__)


def embed_new_tissue(config: RunConfig, model_dir: str | Path):
    """Embed ``config.adata`` with the model in ``model_dir`` and call its domains.

    The tissue is preprocessed as the training data were (raw counts normalised the same
    way, unless ``no_normalize``; the spatial graph built with the training settings unless
    ``radius``/``n_neighbors`` say otherwise), restricted to the model's genes when it holds more,
    and embedded by the spatial encoder alone unless a connectivity file is given.

    Returns
    -------
    The annotated data and ``{"n_domains", "levels", "truth"}``; writes ``OUT/result.h5ad``
    and ``OUT/domains.csv``.
    """
    from . import pp
    from .io import read_connectivity, write_h5ad, write_text
    from .model import SpaCon

    model_dir = Path(model_dir)
    if not (model_dir / "model.json").exists():
        raise SpaconInputError(f"--model {str(model_dir)!r} holds no spacon model (model.json).")
    if config.connectivity is None and any(a > 0 for a in config.alpha or []):
        raise SpaconInputError(
            "without --connectivity new tissue is embedded by the spatial encoder alone: use "
            "--alpha 0 (or give its connectivity).")
    config = checked(config.updated({"no_connectivity": config.connectivity is None}))
    out = prepare_output(config.out, config.overwrite)
    adata = _model_genes(read_input(config.adata), model_dir)
    check_truth(adata, config.truth)
    if config.radius is not None or config.n_neighbors is not None:
        pp.spatial_graph(adata, radius=config.radius, n_neighbors=config.n_neighbors,
                         spatial_key=config.spatial_key, section_key=config.section_key,
                         section_order=config.section_order, z_radius=config.z_radius)
    if config.connectivity is not None:
        pp.connectome_graph(
            adata, read_connectivity(config.connectivity, key=config.connectivity_key),
            unit_key=config.unit_key, threshold=config.threshold, top_k=config.top_k,
            negative=config.negative, symmetrize=config.symmetrize,
            spatial_key=config.spatial_key)
    model = SpaCon.load(model_dir, adata, prepare=not config.no_normalize)
    model.embed(adata, device=config.device, threads=config.threads)
    domains = call_domains(adata, config)
    write_h5ad(adata, out / "result.h5ad")
    write_text(domain_table(adata, config, domains).to_csv(), out / DOMAINS_CSV)
    return adata, domains


def _model_genes(adata, model_dir: Path):
    """``adata`` restricted to the model's genes, in its order, when it holds them all."""
    genes = json.loads((model_dir / "model.json").read_text())["var_names"]
    have = set(map(str, adata.var_names))
    if len(genes) < adata.n_vars and have.issuperset(genes):
        logger.warning("using the model's %d of the data's %d genes", len(genes), adata.n_vars)
        return adata[:, genes].copy()
    return adata

