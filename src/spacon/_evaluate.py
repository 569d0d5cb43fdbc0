"""``spacon evaluate``: connectivity predicted on held-out cells, and transcriptome-connectome
coupling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import SpaconInputError
from ._pipeline import (
    RunConfig,
    check_inputs_not_outputs,
    counts_warned_once,
    normalize_and_spatial_graph,
    normalize_unless_asked_not_to,
    prepare_output,
    read_input,
)

METRICS = "metrics.json"
COUPLING = "coupling.csv"
# training steps per fold unless --epochs is given: one model is trained per fold, so each gets
# a short schedule (5 sampled epochs of the default brain; measured in the README's tables)
EVALUATE_STEPS = 120
# the batches that schedule was measured with (spacon's default until 28 Nov): each step covered
# the default brain's training cells; the smaller default batches learn less per step on so
# small a brain, and how many of their steps a fold needs was not measured. Used when neither
# --epochs nor --batch-size is given.
EVALUATE_BATCHES = {"batch_size": 256, "fanouts": (10, 5, 5), "spatial_fanout": 20}


def evaluate_connectivity(config: RunConfig, *, folds: int = 5,
                          holdout_key: str | None = None, predictor: str = "ridge",
                          adata=None, mirror_axis: int | None = None,
                          midline: float | None = None, nested_penalty: bool = False) -> dict:
    """Run :func:`spacon.tl.predict_connectivity` with ``spacon run``'s data options.

    Each fold's model trains ``EVALUATE_STEPS`` steps (of ``EVALUATE_BATCHES`` unless
    ``--batch-size`` is given) unless ``config.epochs`` is set.
    Writes ``OUT/metrics.json`` and ``OUT/connectivity_prediction.png``; returns the metrics:
    ``{"predictor", "folds", "connected", "methods": {method: {"pearson_r", "pearson_r_sd",
    "auroc", "auroc_sd", "mse", "mse_sd", "per_fold"}}, "settings"}`` (``connected`` states the
    rule that defines connected targets for the AUROC: the connectome graph's threshold and
    top-k; ``settings`` the inputs and options it was computed from).
    """
    from ._utils import choose_threads, cpu_threads

    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    with cpu_threads(choose_threads(config.threads)) as threads:
        return _evaluate_connectivity(config, folds, holdout_key, predictor, adata, threads,
                                      {"mirror_axis": mirror_axis, "midline": midline,
                                       "nested_penalty": nested_penalty})


def _evaluate_connectivity(config, folds, holdout_key, predictor, adata, threads,
                           fold_options) -> dict:
    import matplotlib.pyplot as plt

    from . import pl, tl
    from .io import atomic_path, read_connectivity, write_text

    if config.connectivity is None and adata is None:
        raise SpaconInputError("--connectivity FILE is required: it is what is predicted.")
    out = Path(config.out)
    check_inputs_not_outputs(config, (METRICS, "connectivity_prediction.png"))
    if (out / METRICS).exists() and not config.overwrite:
        raise SpaconInputError(f"{out}/{METRICS} exists already; choose another --out or pass "
                               "--overwrite.")
    prepare_output(out, overwrite=True)  # a folder that cannot be written fails before the work
    if adata is None:
        if config.adata is None:
            raise SpaconInputError("--adata IN.h5ad is required.")
        adata = read_input(config.adata, config.layer)
    connectivity = read_connectivity(config.connectivity, key=config.connectivity_key)
    config = normalize_and_spatial_graph(adata, config)
    train = {"mode": config.mode, "batch_size": config.batch_size, "lr": config.lr,
             "device": config.device, "progress": False, "threads": threads}
    if config.epochs is not None:
        train["epochs"] = config.epochs
    else:
        train["max_steps"] = EVALUATE_STEPS
        if config.batch_size == RunConfig.batch_size:  # not chosen by the user
            train.update(EVALUATE_BATCHES)
    with counts_warned_once():  # said once above, in the command's words, not once per fold
        result = tl.predict_connectivity(
            adata, connectivity, unit_key=config.unit_key, folds=folds, holdout_key=holdout_key,
            section_key=config.section_key, section_order=config.section_order,
            spatial_key=config.spatial_key, threshold=config.threshold, top_k=config.top_k,
            negative=config.negative, symmetrize=config.symmetrize, predictor=predictor,
            model_kwargs={"hidden_dims": config.hidden_dims}, train_kwargs=train, seed=config.seed,
            connectivity_code=config.connectivity_code, **fold_options,
        )
    info = adata.uns["spacon_connectivity_prediction"]
    metrics = {"predictor": predictor, "folds": int(len(set(info["folds"][info["folds"] >= 0]))),
               "connected": info["connected"], "methods": result,
               "settings": _settings(config, holdout_key, train) | fold_options}
    fig = pl.connectivity_prediction(result, predictor=predictor,
                                     connected=info["connected"]["description"])
    with atomic_path(out / "connectivity_prediction.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    write_text(json.dumps(_json_numbers(metrics), indent=1, allow_nan=False), out / METRICS)
    return metrics


def _json_numbers(value):
    """``value`` with NaN and infinite numbers as ``None`` (JSON's null: a fold without a
    score), which JSON parsers other than Python's refuse as bare ``NaN``.
    """
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_numbers(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _settings(config, holdout_key, train: dict) -> dict:
    """What a metrics.json was computed from, so that two of them can be told apart."""
    def text(path):
        return None if path is None else str(Path(path).resolve())

    return {
        "adata": text(config.adata), "connectivity": text(config.connectivity),
        "connectivity_key": config.connectivity_key, "spatial_key": config.spatial_key,
        "unit_key": config.unit_key, "section_key": config.section_key,
        "section_order": config.section_order,
        "holdout_key": holdout_key, "radius": config.radius, "z_radius": config.z_radius,
        "n_neighbors": config.n_neighbors, "threshold": config.threshold,
        "top_k": config.top_k, "negative": config.negative, "symmetrize": config.symmetrize,
        "normalize": not config.no_normalize, "hidden_dims": list(config.hidden_dims),
        "connectivity_code": config.connectivity_code, "seed": config.seed,
        "training_per_fold": {k: v for k, v in train.items()
                              if k in ("mode", "batch_size", "fanouts", "spatial_fanout",
                                       "lr", "epochs", "max_steps")},
    }


def evaluate_coupling(config: RunConfig, *, groupby: str | None = None, pairs: str = "all",
                      method: str = "spearman", n_perm: int = 1000) -> pd.DataFrame:
    """Run :func:`spacon.tl.coupling` on a file, with ``spacon run``'s data options.

    Writes ``OUT/coupling.csv`` (one row per scope) and ``OUT/coupling.png``; returns the table.
    """
    import matplotlib.pyplot as plt

    from . import pl, tl
    from .io import atomic_path, read_connectivity, write_text

    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    if config.adata is None or config.connectivity is None:
        raise SpaconInputError("--adata IN.h5ad and --connectivity FILE are required.")
    out = Path(config.out)
    check_inputs_not_outputs(config, (COUPLING, "coupling.png"))
    if (out / COUPLING).exists() and not config.overwrite:
        raise SpaconInputError(f"{out}/{COUPLING} exists already; choose another --out or pass "
                               "--overwrite.")
    prepare_output(out, overwrite=True)  # a folder that cannot be written fails before the work
    adata = read_input(config.adata, config.layer)
    connectivity = read_connectivity(config.connectivity, key=config.connectivity_key)
    normalize_unless_asked_not_to(adata, config,
                                  "co-expression of counts follows each cell's depth")
    with counts_warned_once():
        table = tl.coupling(adata, connectivity, unit_key=config.unit_key, groupby=groupby,
                            pairs=pairs, method=method, n_perm=n_perm,
                            spatial_key=config.spatial_key, seed=config.seed)
    fig = pl.coupling(table)
    with atomic_path(out / "coupling.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    write_text(table.to_csv(index=False), out / COUPLING)
    return table
