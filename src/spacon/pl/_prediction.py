"""Figures of what the embeddings tell: connectivity prediction, marker genes, coupling."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._errors import SpaconInputError
from ._returns_figure import returns_figure


@returns_figure
def connectivity_prediction(result: dict, *, predictor: str | None = None,
                            connected: str | None = None):
    """Mean (over folds) Pearson r, AUROC and squared error per method, with the fold sd.

    SpaCon's bars are red, the other methods' grey; the AUROC panel marks chance (0.5).

    Parameters
    ----------
    result
        What :func:`spacon.tl.predict_connectivity` returns.
    predictor, connected
        The predictor and the rule for connected targets, written in the titles.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`.
    """
    from ._figure import subplots

    if not isinstance(result, Mapping) or not result or not all(
            isinstance(v, Mapping) and "pearson_r" in v for v in result.values()):
        raise SpaconInputError(
            "connectivity_prediction draws what spacon.tl.predict_connectivity returns (a dict "
            f"of each method's scores), got {type(result).__name__}.")
    methods = list(result)
    fig, axes = subplots(1, 3, figsize=(3.0 + 1.6 * len(methods), 3.4))
    for ax, metric, title in ((axes[0], "pearson_r", "Pearson r (profile)"),
                              (axes[1], "auroc", "AUROC (connected targets)"),
                              (axes[2], "mse", "mean squared error")):
        means = [np.nan if result[m].get(metric) is None else result[m][metric] for m in methods]
        sds = [0.0 if result[m].get(f"{metric}_sd") is None else result[m][f"{metric}_sd"]
               for m in methods]
        ax.bar(range(len(methods)), means, yerr=sds, capsize=3,
               color=["#d62728" if m.startswith("spacon") else "#7f7f7f" for m in methods])
        ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
        ax.set_title(title, fontsize=10)
        if metric == "auroc":
            ax.axhline(0.5, color="k", lw=0.6, ls="--")
    title = "connectivity of held-out cells predicted from expression"
    if predictor is not None:
        title += f" ({predictor})"
    if connected is not None:
        title += f"\nconnected: {connected}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


@returns_figure
def marker_genes(table, domain, *, ax=None):
    """Top marker genes of ``domain`` and their PLS coefficients.

    Parameters
    ----------
    table
        What :func:`spacon.tl.marker_genes` returns.
    domain
        The domain whose markers are drawn (compared as a string).
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    from ._figure import figure_and_axes

    columns = {"domain", "gene", "coefficient"}
    if not isinstance(table, pd.DataFrame) or not columns <= set(table.columns):
        raise SpaconInputError(
            f"pl.marker_genes draws the table spacon.tl.marker_genes returns (columns "
            f"{', '.join(sorted(columns))}), got {type(table).__name__}: call table = "
            "spacon.tl.marker_genes(adata, key) first.")
    rows = table[table["domain"] == str(domain)]
    if rows.empty:
        raise SpaconInputError(f"the marker table has no domain {domain!r}.")
    own = ax is None
    fig, ax = figure_and_axes(ax, (3.6, 0.25 * len(rows) + 1.0))
    ax.barh(range(len(rows)), rows["coefficient"], color="#1f77b4")
    ax.set_yticks(range(len(rows)), rows["gene"])
    ax.invert_yaxis()
    ax.set_xlabel("PLS coefficient")
    ax.set_title(f"markers of domain {domain}", fontsize=10)
    if own:
        fig.tight_layout()
    return fig if own else ax


@returns_figure
def coupling(table, alpha: float = 0.05, *, ax=None):
    """Co-expression/connectivity correlation per scope, raw and controlling for distance.

    Parameters
    ----------
    table
        What :func:`spacon.tl.coupling` returns.
    alpha
        Bars whose spatial-null p-value is below this are marked with a star.
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    from ._figure import figure_and_axes

    needed = {"r", "r_partial", "p_spatial", "p_partial_spatial"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise SpaconInputError(
            "coupling draws the table spacon.tl.coupling returns (columns r, r_partial, "
            f"p_spatial, p_partial_spatial, ...), got {type(table).__name__}.")
    x = np.arange(len(table))
    own = ax is None
    fig, ax = figure_and_axes(ax, (1.6 + 0.45 * len(table), 3.2))
    for offset, col, p_col, colour, label in (
            (-0.2, "r", "p_spatial", "#7f7f7f", "r"),
            (0.2, "r_partial", "p_partial_spatial", "#d62728", "r controlling for distance")):
        values = table[col].to_numpy(dtype=float)
        ax.bar(x + offset, values, width=0.4, color=colour, label=label)
        significant = table[p_col].to_numpy(dtype=float) < alpha
        ax.plot(x[significant] + offset, values[significant] + 0.02 * np.sign(values[significant]),
                "k*", ms=5, ls="none")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, table["scope"].astype(str), rotation=45, ha="right")
    ax.set_ylabel("correlation with connectivity")
    ax.set_title(f"co-expression vs connectivity (* spatial-null p < {alpha:g})", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    if own:
        fig.tight_layout()
    return fig if own else ax
