"""The data a report's page draws, gathered from a result and packed compactly for the browser.

Numbers travel as base64 little-endian typed arrays (float32 coordinates, uint16 codes), so a
200,000-cell page stays a few tens of MB; the page builds its plots from them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import _keys
from .._errors import SpaconInputError
from .._utils import spatial_coordinates
from ..pl import slices
from ..pl._domain_scores import shown_domains
from ..pl._figures import categories_and_colours
from ._sample import sample_per_domain

MAX_LABEL_CATEGORIES = 1000  # obs columns with more values are not shown on hover
MAX_LABEL_COLUMNS = 8
TOP_MARKERS = 10


def _typed(values, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _hex(colour) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in colour[:3])


def find_domain_keys(adata, summary: dict | None) -> dict[str, str]:
    """``{alpha: obs key}`` of the result's domains, from the summary or the obs columns."""
    if summary and summary.get("domain_keys"):
        keys = {str(a): k for a, k in summary["domain_keys"].items() if k in adata.obs}
    else:
        found = [(m.group(1), c) for c in adata.obs.columns
                 if (m := re.fullmatch(rf"{_keys.DOMAIN}_alpha([0-9.eE+-]+)", str(c)))]
        keys = dict(sorted(found, key=lambda item: float(item[0])))
    if not keys:  # columns that spacon.tl.domains wrote, under any name
        called = [str(c) for c in adata.obs.columns if _called_domains(adata, c)]
        alphas = [adata.uns[c]["params"].get("alpha") for c in called]
        named = [f"{a:g}" if a is not None and alphas.count(a) == 1 else c
                 for a, c in zip(alphas, called)]
        keys = dict(zip(named, called))
    if not keys and _keys.DOMAIN in adata.obs:
        keys = {"": _keys.DOMAIN}
    if not keys:
        raise SpaconInputError(
            f"adata has no domains: no obs['{_keys.DOMAIN}_alpha...'] (spacon run) and no column "
            "written by spacon.tl.domains; pass domain_keys={'0': 'your_column'} to show others.")
    return keys


def _called_domains(adata, column) -> bool:
    """Whether ``obs[column]`` was written by :func:`spacon.tl.domains` (its ``uns`` record)."""
    record = adata.uns.get(str(column))
    return (isinstance(record, Mapping) and "n_domains" in record
            and isinstance(record.get("params"), Mapping) and "method" in record["params"])


def _label_columns(adata, exclude) -> list[str]:
    chosen = []
    for name in adata.obs.columns:
        col = adata.obs[name]
        if name in exclude or str(name).startswith("spacon_"):
            continue
        if not (isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col)
                or col.dtype == object):
            continue
        if 2 <= col.nunique() <= MAX_LABEL_CATEGORIES:
            chosen.append(str(name))
    return chosen[:MAX_LABEL_COLUMNS]


def _categorical(values, drawn):
    cat = pd.Categorical(np.asarray(values).astype(str))
    return {"categories": [str(c) for c in cat.categories],
            "codes": _typed(cat.codes[drawn], "<u2")}


def payload(adata, summary: dict | None = None, *, domain_keys: dict[str, str] | None = None,
            max_points: int = 200_000, seed: int = 0, section_key: str | None = None,
            spatial_key: str | None = None) -> dict:
    """Everything the page shows, drawn from at most ``max_points`` cells.

    ``domain_keys`` maps alpha labels to ``obs`` columns of domains (default: the summary's, or
    the ``obs['spacon_domain_alpha*']`` columns); ``section_key`` and ``spatial_key`` default
    to the summary's, else ``obs['section']`` when present and ``obsm['spatial']``.
    """
    params = (summary or {}).get("parameters", {})
    spatial_key = spatial_key or params.get("spatial_key") or _keys.SPATIAL
    # the run's section order is of the run's section column, not of another one named here
    section_order = params.get("section_order") if section_key in (
        None, params.get("section_key")) else None
    section_key = section_key or params.get("section_key") or (
        "section" if "section" in adata.obs else None)
    keys = dict(domain_keys) if domain_keys else find_domain_keys(adata, summary)
    missing = [k for k in keys.values() if k not in adata.obs]
    if missing:
        raise SpaconInputError(f"adata.obs has no domain column(s) {', '.join(missing)}.")
    coords = spatial_coordinates(adata, spatial_key)
    cuts = slices(adata, section_key=section_key, section_order=section_order,
                  spatial_key=spatial_key)
    # the categories coloured as the PNG figures colour them (uns[f'{key}_colors'] or palette)
    # (cells without a domain, NaN, as a last category 'NA' in grey)
    labelled = {a: categories_and_colours(adata, k) for a, k in keys.items()}
    domains = {a: cat for a, (cat, _) in labelled.items()}
    joint = np.zeros(adata.n_obs, dtype=np.int64)
    for cat in domains.values():  # strata: the combination of domains at every alpha
        joint = joint * len(cat.categories) + cat.codes
    drawn = sample_per_domain(joint, max_points, seed)
    alphas = []
    for alpha, cat in domains.items():
        colours = [_hex(c) for c in labelled[alpha][1].values()]
        alphas.append({"alpha": alpha, "key": keys[alpha],
                       "categories": [str(c) for c in cat.categories], "colours": colours,
                       "sizes": np.bincount(cat.codes, minlength=len(cat.categories)).tolist(),
                       "codes": _typed(cat.codes[drawn], "<u2"),
                       "selection": _selection(adata, keys[alpha])})
    depth_title = {"section": "z (section)", None: "z"}.get(cuts.depth, "z")
    labels = _label_columns(adata, {section_key, *keys.values()})
    uns = adata.uns.get(_keys.MODEL_UNS, {})
    loss = (summary or {}).get("loss_history")
    loss = np.ravel(uns.get("loss_history", []) if loss is None else loss)
    return {
        "n_cells": int(adata.n_obs), "n_drawn": int(len(drawn)), "max_points": int(max_points),
        "dims": int(coords.shape[1]),
        "coords": [_typed(coords[drawn, a], "<f4") for a in range(coords.shape[1])],
        "axis_titles": ["x", "y", depth_title][: coords.shape[1]],
        "cell_ids": [str(c) for c in np.asarray(adata.obs_names)[drawn]],
        "slices": {"title": "section" if cuts.depth == "section" else "slice",
                   "names": cuts.names, "codes": _typed(cuts.codes[drawn], "<u2"),
                   "plane": list(cuts.plane)},
        "alphas": alphas,
        "labels": [{"name": name, **_categorical(adata.obs[name], drawn)} for name in labels],
        "loss": [float(v) for v in loss],
        "summary": {k: (summary or {}).get(k) for k in
                    ("command", "finished_utc", "working_directory", "parameters", "training",
                     "timings_seconds", "n_domains", "truth_scores", "baselines", "versions")},
        "markers": _markers(adata),
        "connectivity_prediction": _prediction(adata),
    }


def _selection(adata, key: str) -> dict | None:
    """How ``tl.domains`` chose the number of ``obs[key]``'s domains: its reason, the choice,
    the charge per doubling and each family's scores over the numbers tried (``None`` where
    nothing was chosen: Leiden, Louvain, a number given without a tree).
    """
    record = adata.uns.get(key)
    selection = record.get("selection") if isinstance(record, Mapping) else None
    if not isinstance(selection, Mapping) or "chosen" not in selection:
        return None
    families = {f: {"k": np.asarray(selection[f]["k"]).astype(int).tolist(),
                    "score": np.asarray(selection[f]["score"], dtype=float).tolist()}
                for f in ("mixture", "tree") if isinstance(selection.get(f), Mapping)}
    charge = selection.get("per_doubling")
    others = selection.get("alternatives", {})
    return {"reason": str(selection.get("reason", "")),
            "chosen": int(selection["chosen"]), "shown": shown_domains(adata, key),
            "per_doubling": None if charge is None else float(charge), "families": families,
            "alternatives": {"k": np.asarray(others.get("k", []), dtype=int).tolist(),
                             "score": np.asarray(others.get("score", []), dtype=float).tolist()}}


def _markers(adata) -> dict:
    """``{domain key: {domain: top genes}}`` from ``uns['spacon_markers']``."""
    out = {}
    for key, table in dict(adata.uns.get(_keys.MARKERS, {})).items():
        table = pd.DataFrame(table)
        if not {"domain", "rank", "gene"} <= set(table.columns):
            continue
        table = table.sort_values(["domain", "rank"])
        out[str(key)] = {str(d): [str(g) for g in rows["gene"].head(TOP_MARKERS)]
                         for d, rows in table.groupby("domain", sort=True)}
    return out


def _prediction(adata) -> dict:
    """``{method: {metric: value}}`` from ``uns['spacon_connectivity_prediction']``."""
    record = adata.uns.get(_keys.CONNECTIVITY_PREDICTION, {})
    metrics = record.get("metrics", {}) if hasattr(record, "get") else {}
    return {str(m): {str(k): (None if v is None else float(v)) for k, v in dict(values).items()}
            for m, values in dict(metrics).items()}
