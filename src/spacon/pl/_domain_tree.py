"""The domain tree: which domains merge at each coarser level, with their sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_anndata, labels_column
from ._figures import colours_of
from ._returns_figure import returns_figure

# the domains and the tree's cut of the same cells agree at least this much (ARI; refined
# domains differ in a few cells, reordered cells agree by chance)
MIN_AGREEMENT = 0.5


@returns_figure
def domain_tree(adata, *, key: str = _keys.DOMAIN, figsize: tuple[float, float] | None = None,
                ax=None):
    """Dendrogram of the domain tree stored by :func:`spacon.tl.domains` in ``uns[key]['tree']``.

    Each leaf is a domain of the finest level, labelled with its name in ``obs[key]``, its size
    in cells, and coloured as in :func:`spacon.pl.domains`; the horizontal axis gives the number
    of domains left after each merge, and a dashed line marks the number in ``obs[key]``.

    Parameters
    ----------
    adata
        Annotated data with ``obs[key]`` and ``uns[key]['tree']``.
    key
        Key of the domains (``obs``) and of how they were called (``uns``).
    figsize
        Figure size in inches (default: from the number of leaves).
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    check_anndata(adata, "spacon.pl.domain_tree")
    from scipy.cluster.hierarchy import dendrogram

    from ..tl._domain_selection import adjusted_rand
    from ..tl._mixture_tree import MixtureTree
    from ._figure import figure_and_axes

    stored = adata.uns.get(key)
    if not isinstance(stored, dict) or "tree" not in stored or key not in adata.obs:
        raise SpaconInputError(
            f"adata has no domain tree under {key!r}; call spacon.tl.domains(adata, "
            f"key_added={key!r}) with method='gmm' first.")
    tree = MixtureTree.from_dict(stored["tree"])
    leaves = np.asarray(stored["tree"]["leaves"])
    if len(leaves) != adata.n_obs:
        raise SpaconInputError(
            f"the domain tree in uns[{key!r}] was built on {len(leaves)} cells and adata has "
            f"{adata.n_obs} (a subset keeps the whole data's uns); draw the tree from the data "
            "the domains were called on.")
    domains = pd.Categorical(labels_column(adata, key))
    n_domains = len(pd.unique(domains.dropna()))
    if n_domains > tree.n_leaves:
        raise SpaconInputError(
            f"obs[{key!r}] holds {n_domains} domains, more than the {tree.n_leaves} leaves of "
            f"its tree: n_domains above the leaves fits a mixture of its own, not nested in "
            f"the tree. Draw the tree of a call with at most {tree.n_leaves} domains.")
    labelled = domains.codes >= 0
    # the domains are the tree's cut cell by cell (refined, a few cells differ): not so, by
    # far, once the cells were reordered
    agreement = adjusted_rand(tree.cut(n_domains)[leaves[labelled]],
                              domains.codes[labelled].astype(np.int64)) if n_domains > 1 else 1.0
    if agreement < MIN_AGREEMENT:
        raise SpaconInputError(
            f"obs[{key!r}] is not the cut of the domain tree in uns[{key!r}] cell by cell "
            f"(ARI {agreement:.2f}): the cells were reordered since the domains were called; "
            "draw the tree from the data they were called on, in their order.")
    colours = dict(zip(domains.categories, colours_of(adata, key, len(domains.categories))))
    # the domain (at the level shown in obs[key]) that most of each leaf's cells carry, by
    # category code (unused categories and cells without a domain shift no column)
    counts = np.zeros((tree.n_leaves, len(domains.categories)), dtype=np.int64)
    np.add.at(counts, (leaves[labelled], domains.codes[labelled]), 1)
    leaf_domain = {leaf: domains.categories[row.argmax()]
                   for leaf, row in enumerate(counts) if row.any()}
    size = np.bincount(leaves, minlength=tree.n_leaves)
    names = [f"{leaf_domain.get(i, '-')}  ({size[i]:,} cells)" for i in range(tree.n_leaves)]
    n = tree.n_leaves
    own = ax is None
    fig, ax = figure_and_axes(ax, figsize or (6.0, 1.0 + 0.3 * n))
    if n == 1:
        ax.barh([0], [size[0]], color=colours.get(leaf_domain.get(0), "grey"))
        ax.set_yticks([0], names)
        ax.set_title(f"{key}: one domain", fontsize="small")
        return fig if own else ax
    linkage = _linkage(tree)
    dendrogram(linkage, ax=ax, labels=names, orientation="left", color_threshold=0,
               above_threshold_color="0.3")
    for label in ax.get_yticklabels():
        domain = label.get_text().split("  (")[0]
        label.set_color(colours.get(domain, "black"))
    ax.set_xticks(np.arange(n), [str(n - h) for h in range(n)])
    ax.set_xlabel("domains after the merge")
    shown = n_domains  # (unused categories are no domains)
    if 1 <= shown <= n:
        ax.axvline(n - shown + 0.5, ls="--", color="tab:red", lw=1)
    ax.set_title(f"{key}: domain tree ({shown} domains shown)", fontsize="small")
    if own:
        fig.tight_layout()
    return fig if own else ax


def _linkage(tree) -> np.ndarray:
    """Scipy linkage matrix: merge step s at height s + 1 (counts are leaves, as scipy wants)."""
    n = tree.n_leaves
    count = np.concatenate([np.ones(n), np.zeros(n - 1)])
    rows = []
    for step, (a, b) in enumerate(tree.merges):
        count[n + step] = count[a] + count[b]
        rows.append([a, b, step + 1, count[n + step]])
    return np.array(rows, dtype=np.float64)
