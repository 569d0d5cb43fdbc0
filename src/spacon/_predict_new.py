"""``spacon predict``: the connectivity of new tissue, predicted by a trained model."""

from __future__ import annotations

import logging
from pathlib import Path

from . import _keys
from ._errors import SpaconInputError
from ._pipeline import (
    RunConfig,
    check_inputs_not_outputs,
    check_out_is_not_the_model,
    prepare_output,
    read_input,
    remove_other_results,
)
from ._utils import resolve_device

logger = logging.getLogger(__name__)

PROFILES = "predicted_connectivity.npz"  # (one of _pipeline.RESULT_FILES)


def predict_new_tissue(config: RunConfig, model: str | Path):
    """Predict the connectivity of ``config.adata`` with the model in ``model``.

    The tissue is prepared as ``spacon embed`` prepares it (raw counts normalised as for
    training, the model's genes kept when it has more, the spatial graph built with the
    training settings unless graph options are given), embedded by the spatial encoder and
    mapped to profiles over the training connectome's targets by the model's connectivity
    map (``connectivity_map.npz``, written by ``spacon run`` with a connectome).

    Returns
    -------
    The annotated data and the profiles (a DataFrame); writes ``OUT/predicted_connectivity.npz``
    (:func:`spacon.io.read_profiles` reads it) and ``OUT/result.h5ad``.
    """
    from ._embed import _model_genes, _spatial_graph, normalize_like_training
    from .io import save_profiles, write_h5ad
    from .model import SpaCon
    from .model._connectivity_map import FILE
    from .model._data import check_genes
    from .model._spacon import model_directory

    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    if config.adata is None:
        raise SpaconInputError("--adata NEW.h5ad is required.")
    if config.threads is not None and config.threads < 1:
        raise SpaconInputError(f"--threads must be >= 1, got {config.threads}.")
    resolve_device(config.device)  # before the data are read
    model_dir = model_directory(model)
    if not (model_dir / FILE).exists():
        raise SpaconInputError(
            f"the model in {str(model_dir)!r} has no connectivity map ({FILE}): spacon run "
            "writes one when it trains with --connectivity (or fit one with "
            "SpaCon.fit_connectivity_map and save the model).")
    check_inputs_not_outputs(config, ("result.h5ad", PROFILES))
    check_out_is_not_the_model(config, model_dir)
    out = prepare_output(config.out, config.overwrite)
    adata = read_input(config.adata, config.layer)
    if config.unit_key is not None and config.unit_key not in adata.obs:
        raise SpaconInputError(
            f"--unit-key {config.unit_key!r} is not a column of adata.obs (it has: "
            f"{', '.join(map(str, adata.obs.columns)) or 'none'}).")
    from .model._spacon import read_model_json

    meta = read_model_json(model_dir)
    normalize_like_training(adata, config, meta.get("preprocessing", {}), meta["var_names"])
    adata = _model_genes(adata, model_dir)
    check_genes(adata, meta["var_names"])
    _spatial_graph(adata, config, meta.get("preprocessing", {}).get("spatial_graph") or {})
    model = SpaCon.load(model_dir, adata)
    profiles = model.predict_connectivity(adata, unit_key=config.unit_key,
                                          device=config.device, threads=config.threads)
    save_profiles(out / PROFILES, profiles.to_numpy(), profiles.index, profiles.columns)
    write_h5ad(adata, out / "result.h5ad")
    remove_other_results(out, ("result.h5ad", PROFILES))
    return adata, profiles


def describe(adata, profiles, out) -> str:
    """What ``spacon predict`` wrote, for the command line."""
    rows = (f"{profiles.shape[0]} units of obs[{profiles.index.name!r}]"
            if profiles.index.name in adata.obs else f"{profiles.shape[0]} cells")
    return (f"wrote {out}/{PROFILES} ({rows} x {profiles.shape[1]} targets) and "
            f"{out}/result.h5ad (obsm['"
            f"{_keys.CONNECTIVITY_CODE}']: each cell's predicted profile on the "
            f"{adata.obsm[_keys.CONNECTIVITY_CODE].shape[1]} top principal axes of the "
            "training profiles)")
