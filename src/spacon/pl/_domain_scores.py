"""How the number of domains was chosen: the selection's scores over the numbers tried."""

from __future__ import annotations

import numpy as np

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_anndata
from ._returns_figure import returns_figure

FAMILIES = {"mixture": ("tab:blue", "mixtures"), "tree": ("tab:orange", "tree cuts")}


@returns_figure
def domain_scores(adata, *, key: str = _keys.DOMAIN, figsize: tuple[float, float] = (6.0, 3.5),
                  ax=None):
    """Scores behind :func:`spacon.tl.domains`' choice of the number of domains.

    For each family of candidates (mixtures with ``k`` components; cuts of the entropy-merged
    mixture tree) a solid line gives the score, stability x modularity, at every number of
    domains tried, and a dashed line the score charged for each doubling of the number, which
    the rule maximises (the fewest domains within one standard error of the best charged score
    win). A red line marks the chosen number, circles the other numbers where the score also
    peaks (``selection['alternatives']``), and a grey dotted line the number shown in
    ``obs[key]`` when ``n_domains`` asked for another. Results of spacon before the charge
    (chosen within a 5 % margin) have no ``per_doubling``: no dashed lines.

    Parameters
    ----------
    adata
        Annotated data with ``uns[key]['selection']`` from ``spacon.tl.domains(method='gmm')``.
    key
        Key of the domains (``obs``) and of how they were called (``uns``).
    figsize
        Figure size in inches.
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given.
    """
    check_anndata(adata, "spacon.pl.domain_scores")
    from ..tl._domain_selection import charged
    from ._figure import figure_and_axes

    if not isinstance(adata.uns.get(key), dict):
        raise SpaconInputError(f"adata.uns has no domains under {key!r}: call "
                               f"spacon.tl.domains(adata, key_added={key!r}) first.")
    selection = adata.uns[key].get("selection", {})
    families = [f for f in FAMILIES if f in selection]
    if not families:
        why = (f" ({selection['reason']})" if "reason" in selection else
               " (Leiden and Louvain have none)")
        raise SpaconInputError(
            f"uns[{key!r}] holds no selection scores: the number of domains was not chosen "
            f"from scores by spacon.tl.domains(method='gmm') under key_added={key!r}{why}.")
    charge = selection.get("per_doubling")  # (none before the charge: a 5 % margin chose)
    own = ax is None
    fig, ax = figure_and_axes(ax, figsize)
    for family in families:
        colour, name = FAMILIES[family]
        k = np.asarray(selection[family]["k"], dtype=float)
        score = np.asarray(selection[family]["score"], dtype=float)
        ax.plot(k, score, color=colour, lw=1.5, label=f"{name}: stability x modularity")
        if charge is not None:
            ax.plot(k, charged(score, k, float(charge)), color=colour, lw=1,
                    ls="--", label=f"{name}: charged {float(charge):.0%} per doubling")
    chosen = int(selection["chosen"])
    ax.axvline(chosen, color="tab:red", lw=1, label=f"chosen: {chosen}")
    others = selection.get("alternatives", {})
    if len(others.get("k", [])):
        ax.scatter(np.asarray(others["k"]), np.asarray(others["score"]), s=30,
                   facecolors="none", edgecolors="black", zorder=3,
                   label="also peaks: " + ", ".join(str(int(k)) for k in others["k"]))
    shown = shown_domains(adata, key)
    if shown is not None and shown != chosen:
        ax.axvline(shown, color="0.4", ls=":", lw=1, label=f"shown: {shown}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of domains")
    ax.set_ylabel("score")
    ax.set_title(f"{key}: how the number of domains was chosen", fontsize="small")
    ax.legend(fontsize="x-small", frameon=False)
    if own:
        fig.tight_layout()
    return fig if own else ax


def shown_domains(adata, key: str) -> int | None:
    """The number of domains in ``obs[key]`` as called (``uns[key]['n_domains']``: a subset of
    the cells may lack some), else as counted.
    """
    called = adata.uns[key].get("n_domains") if isinstance(adata.uns.get(key), dict) else None
    if called is not None:
        return int(called)
    return int(adata.obs[key].nunique()) if key in adata.obs else None
