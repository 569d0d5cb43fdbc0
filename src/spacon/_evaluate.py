"""``spacon evaluate connectivity``: connectivity predicted from expression on held-out cells."""

from __future__ import annotations

import json
from pathlib import Path

from ._errors import SpaconInputError
from ._pipeline import RunConfig, normalize_and_spatial_graph, prepare_output, read_input

METRICS = "metrics.json"


def evaluate_connectivity(config: RunConfig, *, folds: int = 5,
                          holdout_key: str | None = None, adata=None) -> dict:
    """Run :func:`spacon.tl.predict_connectivity` with ``spacon run``'s data options.

    Writes ``OUT/metrics.json`` (means and standard deviations over folds per method) and
    ``OUT/connectivity_prediction.png``; returns the metrics.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import pl, tl
    from .io import atomic_path, read_connectivity, write_text

    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    if config.connectivity is None and adata is None:
        raise SpaconInputError("--connectivity FILE is required: it is what is predicted.")
    out = Path(config.out)
    if (out / METRICS).exists() and not config.overwrite:
        raise SpaconInputError(f"{out}/{METRICS} exists already; choose another --out or pass "
                               "--overwrite.")
    prepare_output(out, overwrite=True)
    if adata is None:
        if config.adata is None:
            raise SpaconInputError("--adata IN.h5ad is required.")
        adata = read_input(config.adata)
    connectivity = read_connectivity(config.connectivity, key=config.connectivity_key)
    config = normalize_and_spatial_graph(adata, config)
    train = {"mode": config.mode, "batch_size": config.batch_size, "lr": config.lr,
             "device": config.device, "progress": False}
    if config.epochs is not None:
        train["epochs"] = config.epochs
    result = tl.predict_connectivity(
        adata, connectivity, unit_key=config.unit_key, folds=folds, holdout_key=holdout_key,
        section_key=config.section_key, section_order=config.section_order,
        spatial_key=config.spatial_key, threshold=config.threshold, top_k=config.top_k,
        negative=config.negative, model_kwargs={"hidden_dims": config.hidden_dims},
        train_kwargs=train, seed=config.seed,
    )
    metrics = {m: {k: v for k, v in d.items() if k != "per_fold"} | {"per_fold": d["per_fold"]}
               for m, d in result.items()}
    fig = pl.connectivity_prediction(result)
    with atomic_path(out / "connectivity_prediction.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    write_text(json.dumps(metrics, indent=1), out / METRICS)
    return metrics
