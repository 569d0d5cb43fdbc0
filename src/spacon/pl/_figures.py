"""Figures: domain maps, one domain across sections, the 3-D stack, UMAP, loss, continuity.

Every function returns its :class:`matplotlib.figure.Figure`; save it with ``fig.savefig``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .. import _keys
from .._errors import SpaconInputError
from .._utils import (
    check_anndata,
    check_obsm,
    check_option,
    label_text,
    labels_column,
    spatial_coordinates,
    whole_number,
)
from ._layout import umap_layout
from ._palette import PALETTE_SIZE, distinct_colours
from ._returns_figure import returns_figure
from ._slices import check_section_key, slices


def palette(n: int) -> list:
    """A qualitative palette of ``n`` distinguishable colours.

    tab10's ten first, then each colour the farthest (in CIELAB) from all before it, so that
    no two of the first 16 or 20 are shades of one hue (see ``spacon.pl._palette``); they
    repeat after 72. Every figure colours categories in this order.

    Parameters
    ----------
    n
        Number of colours.

    Returns
    -------
    A list of ``n`` RGB tuples.
    """
    from .._utils import whole_number

    n = whole_number("n", n, minimum=0)
    colours = distinct_colours()
    return [colours[i % len(colours)] for i in range(n)]


def colours_of(adata, key: str, n: int) -> list:
    """The colours of ``obs[key]``'s ``n`` categories: ``uns[f'{key}_colors']`` where scanpy
    (or the user) stored one per category, else :func:`palette`, then stored there as scanpy
    stores the colours it chose; as RGB tuples.

    Categories that are all whole numbers below the palette's 72 colours (the domains of
    :func:`spacon.tl.domains`) take the palette's colour of their number, so a domain keeps
    its colour in a subset of the cells (one section) that lacks some domains.
    """
    import matplotlib.colors as mcolors

    stored = adata.uns.get(f"{key}_colors")
    if stored is not None and len(stored) >= n and all(mcolors.is_color_like(c)
                                                      for c in list(stored)[:n]):
        return [mcolors.to_rgb(c) for c in list(stored)[:n]]
    names = [str(c) for c in pd.Categorical(labels_column(adata, key, "labels to plot")).categories
             ] if key in adata.obs else []
    if len(names) == n and n and all(c.isdigit() and int(c) < PALETTE_SIZE for c in names):
        colours = palette(max(int(c) for c in names) + 1)
        colours = [colours[int(c)] for c in names]
    else:
        colours = palette(n)
    if len(names) == n and n and not adata.is_view:  # kept, as scanpy's plots keep theirs, so
        # that scanpy colours the column as this figure did, whichever plots first
        adata.uns[f"{key}_colors"] = [mcolors.to_hex(c) for c in colours]
    return colours


MISSING_COLOUR = (0.827, 0.827, 0.827)  # light grey, as scanpy draws cells without a label


def categories_and_colours(adata, key):
    """``obs[key]`` as categories and their colours; cells without one (NaN) form a last
    category ``'NA'`` drawn light grey.
    """
    cat = pd.Categorical(labels_column(adata, key, "labels to plot"))
    colours = dict(zip(cat.categories, colours_of(adata, key, len(cat.categories))))
    if (cat.codes < 0).any():
        name = "NA" if "NA" not in colours else "no label"
        cat = cat.add_categories([name]).fillna(name)
        colours[name] = MISSING_COLOUR
    return cat, colours


def _point_size(n_points: int, panel_inches: float = 3.0) -> float:
    """Marker area (pt^2) so that ``n_points`` cover about a quarter of a panel.

    Thousands of cells get small dots; region-level data (tens of parcels) large ones.
    """
    area = (72 * panel_inches) ** 2
    return float(np.clip(0.25 * area / max(n_points, 1), 1.0, 120.0))


def _count_or_all(name: str, value):
    """A whole number >= 1, or ``np.inf`` for all (as it always meant here)."""
    return value if value == np.inf else whole_number(name, value)


def _shown_slices(cuts, max_sections):
    max_sections = _count_or_all("max_sections", max_sections)
    shown = np.unique(np.linspace(0, len(cuts.names) - 1,
                                  min(len(cuts.names), max_sections)).astype(int))
    what = "sections" if cuts.depth == "section" else "slices"
    note = (f"{len(shown)} of {len(cuts.names)} {what} shown" if len(shown) < len(cuts.names)
            else None)
    return shown, note


def _aspect(xy: np.ndarray) -> float:
    """Height over width of the coordinates' extent (shared panels draw it with equal axes),
    kept between 1/4 and 4 so that a strip of cells still gets a readable panel.
    """
    if not len(xy):
        return 1.0
    width, height = np.ptp(xy[:, 0]), np.ptp(xy[:, 1])
    if not (width > 0 and height > 0):
        return 1.0
    return float(np.clip(height / width, 0.25, 4.0))


def _grid(n, size=3.0, max_cols=6, ax=None, aspect: float = 1.0):
    """The figure and ``n`` panels: a grid of shared axes, or ``ax`` when one panel is drawn.

    Panels are ``size`` inches wide and ``aspect`` times as high (the data's height over width:
    a wide slice in a square panel left a band of blank figure above and below it).
    """
    from ._figure import figure_and_axes, subplots

    if ax is not None:
        if n != 1:
            raise SpaconInputError(
                f"ax draws one panel, but there are {n} sections (or slices of 3-D data) to "
                "draw; call without ax, or with a subset of adata holding one section.")
        fig, ax = figure_and_axes(ax, (size, size))
        return fig, [ax]

    cols = min(n, max_cols)
    rows = -(-n // cols)
    # shared axes: sections keep their true relative size and position
    # (height: the panels' titles take about a third of an inch each)
    fig, axes = subplots(rows, cols, figsize=(size * cols + 1.8, (size * aspect + 0.35) * rows
                                              + 0.4), squeeze=False,
                         sharex=True, sharey=True)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _legend(fig, colours: dict, title: str, tight: bool = True, ax=None, inside: bool = False):
    """The domains' legend at the figure's right edge, inside the figure (a plain
    ``fig.savefig`` keeps it), the panels laid out in the rest (``tight``); beside ``ax``
    instead when the caller gave the axes (their figure is theirs to lay out), or in its upper
    left corner (``inside``: a 3-D axes, whose box reaches past its tick labels).
    """
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=c, label=str(k)) for k, c in colours.items()]
    if ax is not None:
        where = ({"loc": "upper left", "bbox_to_anchor": (0.0, 1.0)} if inside else
                 {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)})
        ax.legend(handles=handles, title=title, frameon=False,
                  ncol=1 if len(handles) <= 20 else 2, fontsize="small", **where)
        return
    legend = fig.legend(handles=handles, title=title, loc="center right",
                        bbox_to_anchor=(1.0, 0.5), frameon=False,
                        ncol=1 if len(handles) <= 20 else 2, fontsize="small")
    try:
        box = legend.get_window_extent(fig.canvas.get_renderer())
    except AttributeError:  # a canvas without a renderer: a fixed share
        width = 0.2
    else:
        if box.height > fig.bbox.height:  # a long legend: the figure grows to hold it
            fig.set_size_inches(fig.get_size_inches()[0], box.height / fig.dpi + 0.2)
        width = box.width / fig.bbox.width
    if tight:
        fig.tight_layout(rect=(0, 0, max(0.5, 1 - width - 0.01), 1))
    else:
        fig.subplots_adjust(right=max(0.5, 1 - width - 0.08))  # 3-D tick labels reach out


@returns_figure
def domains(adata, *, key: str = _keys.DOMAIN, section_key: str | None = "section",
            section_order=None, spatial_key: str = _keys.SPATIAL, point_size: float | None = None,
            max_sections: int = 24, title: str | None = None, ax=None):
    """Domain map of each section (at most ``max_sections``, evenly spread).

    Without sections, 3-D data is drawn in slices along its thinnest axis
    (:func:`spacon.pl.slices`). The title says how many sections are shown when not all are.

    Parameters
    ----------
    adata
        Annotated data with ``obs[key]`` and coordinates in ``obsm[spatial_key]``.
    key
        ``obs`` column of the domains.
    section_key
        ``obs`` column of sections, one panel each. The default ``'section'`` is
        ignored when absent; another name that is not a column is refused.
    section_order
        Section labels in order (see :func:`spacon.pp.section_codes`).
    spatial_key
        ``obsm`` key of the 2-D or 3-D coordinates.
    point_size
        Marker area in pt^2 (default: from the number of cells per panel).
    max_sections
        Most panels drawn.
    title
        Figure title, before the note of sections shown.
    ax
        Axes to draw on when there is one panel (2-D data, or one section); default: a new
        figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    check_anndata(adata, "spacon.pl.domains")
    cat, colours = categories_and_colours(adata, key)
    cuts = slices(adata, section_key=section_key, section_order=section_order,
                  spatial_key=spatial_key)
    if cuts.depth is None:  # one 2-D plane: titled by what it shows, as scanpy titles it
        cuts = cuts._replace(names=[key])
    coords = spatial_coordinates(adata, spatial_key)
    xy = coords[:, list(cuts.plane)]
    shown, note = _shown_slices(cuts, max_sections)
    if point_size is None:
        point_size = _point_size(np.bincount(cuts.codes)[shown].max())
    fig, axes = _grid(len(shown), ax=ax, aspect=_aspect(xy[np.isin(cuts.codes, shown)]))
    colour_of = np.array([colours[c] for c in cat.categories])
    for panel, s in zip(axes, shown):
        sel = cuts.codes == s
        panel.scatter(xy[sel, 0], xy[sel, 1], c=colour_of[cat.codes[sel]], s=point_size,
                      linewidths=0)
        panel.set_title(cuts.names[s], fontsize="small")
        panel.set_aspect("equal")
        panel.set_xticks([])
        panel.set_yticks([])
    if not axes[0].yaxis_inverted():  # image convention; shared: once for all panels
        axes[0].invert_yaxis()
    heading = "; ".join(t for t in (title, note) if t)
    if ax is not None:  # one panel: its section and the title above it
        axes[0].set_title("\n".join(t for t in (heading, cuts.names[shown[0]]) if t),
                          fontsize="small")
    elif heading:
        fig.suptitle(heading)
    _legend(fig, colours, key, ax=ax)
    return fig if ax is None else ax


@returns_figure
def highlight(adata, domain, *, key: str = _keys.DOMAIN, section_key: str | None = "section",
              section_order=None, spatial_key: str = _keys.SPATIAL,
              point_size: float | None = None, max_sections: int = 24, ax=None):
    """One domain in red across the sections (or slices, as in :func:`domains`), the rest grey.

    Parameters
    ----------
    adata
        Annotated data with ``obs[key]`` and coordinates in ``obsm[spatial_key]``.
    domain
        The domain to highlight (compared as a string).
    key
        ``obs`` column of the domains.
    section_key
        ``obs`` column of sections, one panel each. The default ``'section'`` is
        ignored when absent; another name that is not a column is refused.
    section_order
        Section labels in order (see :func:`spacon.pp.section_codes`).
    spatial_key
        ``obsm`` key of the 2-D or 3-D coordinates.
    point_size
        Marker area in pt^2 (default: from the number of cells per panel).
    max_sections
        Most panels drawn, evenly spread.
    ax
        Axes to draw on when there is one panel (2-D data, or one section); default: a new
        figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    check_anndata(adata, "spacon.pl.highlight")
    cat, _ = categories_and_colours(adata, key)
    names = set(map(str, cat.categories))
    name = str(domain) if str(domain) in names else label_text(domain)  # 1, 1.0 or '1'
    if name not in names:
        raise SpaconInputError(f"domain {domain!r} is not in adata.obs[{key!r}].")
    inside = np.asarray(cat.astype(str)) == name
    cuts = slices(adata, section_key=section_key, section_order=section_order,
                  spatial_key=spatial_key)
    xy = spatial_coordinates(adata, spatial_key)[:, list(cuts.plane)]
    shown, note = _shown_slices(cuts, max_sections)
    if point_size is None:
        point_size = _point_size(np.bincount(cuts.codes)[shown].max())
    fig, axes = _grid(len(shown), ax=ax, aspect=_aspect(xy[np.isin(cuts.codes, shown)]))
    for panel, s in zip(axes, shown):
        sel = cuts.codes == s
        panel.scatter(xy[sel & ~inside, 0], xy[sel & ~inside, 1], c="#d3d3d3", s=point_size,
                   linewidths=0)
        panel.scatter(xy[sel & inside, 0], xy[sel & inside, 1], c="#e4572e", s=point_size,
                      linewidths=0)
        panel.set_title(cuts.names[s], fontsize="small")
        panel.set_aspect("equal")
        panel.set_xticks([])
        panel.set_yticks([])
    if not axes[0].yaxis_inverted():
        axes[0].invert_yaxis()
    heading = "; ".join(t for t in (f"{key} = {domain}", note) if t)
    if ax is not None:
        axes[0].set_title(f"{heading}\n{cuts.names[shown[0]]}", fontsize="small")
        return ax
    fig.suptitle(heading)
    fig.tight_layout()
    return fig if ax is None else ax


@returns_figure
def stack3d(adata, *, key: str = _keys.DOMAIN, spatial_key: str = _keys.SPATIAL,
            section_key: str | None = None, point_size: float | None = None,
            max_cells: int = 50_000, seed: int = 0, title: str | None = None, ax=None):
    """The cells in 3-D coloured by domain (a random subset of ``max_cells``).

    The depth axis is called "z (section)" when ``obs[section_key]`` gives sections, else "z".

    Parameters
    ----------
    adata
        Annotated data with ``obs[key]`` and 3-D coordinates in ``obsm[spatial_key]``.
    key
        ``obs`` column of the domains.
    spatial_key
        ``obsm`` key of the coordinates (x, y, z).
    section_key
        ``obs`` column of sections; only names the depth axis.
    point_size
        Marker area in pt^2 (default: from the number of cells drawn).
    max_cells
        Most cells drawn.
    seed
        Seed of the random subset.
    title
        Axes title.
    ax
        3-D axes to draw on (``fig.add_subplot(projection="3d")``); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given.
    """
    check_anndata(adata, "spacon.pl.stack3d")
    from ._figure import figure, figure_and_axes

    own = ax is None
    if not own:
        figure_and_axes(ax, (7, 6))  # checks that it is an Axes
        if getattr(ax, "name", None) != "3d":
            raise SpaconInputError('stack3d draws on 3-D axes: fig.add_subplot(projection="3d").')
    coords = spatial_coordinates(adata, spatial_key)
    if coords.shape[1] != 3:
        raise SpaconInputError("stack3d needs 3-D coordinates (x, y, z).")
    check_section_key(adata, section_key)
    cat, colours = categories_and_colours(adata, key)
    idx = np.arange(adata.n_obs)
    max_cells = _count_or_all("max_cells", max_cells)
    if len(idx) > max_cells:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_cells, replace=False))
    if point_size is None:
        point_size = _point_size(len(idx), panel_inches=5.0)
    colour_of = np.array([colours[c] for c in cat.categories])
    if own:
        fig = figure(figsize=(7, 6))
        ax = fig.add_subplot(projection="3d")
    else:
        fig = ax.figure
    ax.scatter(coords[idx, 0], coords[idx, 2], coords[idx, 1], c=colour_of[cat.codes[idx]],
               s=point_size, linewidths=0)
    ax.set_xlabel("x")
    ax.set_ylabel("z (section)" if section_key is not None and section_key in adata.obs else "z")
    ax.set_zlabel("y")
    ax.invert_zaxis()
    if title:
        ax.set_title(title)
    if not own:
        _legend(fig, colours, key, ax=ax, inside=True)
        return ax
    _legend(fig, colours, key, tight=False)  # 3-D axes do not take part in a tight layout
    return fig


@returns_figure
def umap(adata, *, key: str = _keys.DOMAIN, use_rep: str | None = None,
         max_cells: int = 3_000, seed: int = 0, point_size: float | None = None,
         backend: Literal["spacon", "umap-learn"] = "spacon", title: str | None = None,
         ax=None):
    """UMAP of the fused embedding coloured by domain (computed on at most ``max_cells``).

    ``backend="spacon"`` optimises UMAP's objective full-batch in NumPy (seconds,
    :func:`spacon.pl.umap_layout`); ``"umap-learn"`` calls the reference package, whose numba
    kernels compile afresh in each process (minutes on a small CPU).

    Parameters
    ----------
    adata
        Annotated data with ``obs[key]`` and the embedding in ``obsm[use_rep]``.
    key
        ``obs`` column of the domains.
    use_rep
        ``obsm`` key of the embedding; default: the one the domains in ``obs[key]`` were
        called on (``uns[key]['params']['use_rep']``), else ``X_spacon`` (:func:`spacon.tl.fuse`).
    max_cells
        Most cells laid out and drawn (a random subset).
    seed
        Seed of the subset and the layout.
    point_size
        Marker area in pt^2 (default: from the number of cells drawn).
    backend
        ``"spacon"`` or ``"umap-learn"``.
    title
        Axes title, before the note of cells shown.
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    check_anndata(adata, "spacon.pl.umap")
    from ._figure import figure_and_axes

    check_option("backend", backend, ("spacon", "umap-learn"))
    if use_rep is None:
        called_on = adata.uns.get(key, {})
        called_on = called_on.get("params", {}) if isinstance(called_on, dict) else {}
        use_rep = str(called_on.get("use_rep", _keys.EMBEDDING_FUSED))
        check_obsm(adata, use_rep)
        from ..tl._domains import embedding_changed

        changed = embedding_changed(adata, key, use_rep)
        if changed:  # laid out on one embedding, coloured by another's domains
            raise SpaconInputError(f"{changed}: pass use_rep= the embedding they were called "
                                   "on (or call the domains again).")
    check_obsm(adata, use_rep)
    cat, colours = categories_and_colours(adata, key)
    idx = np.arange(adata.n_obs)
    max_cells = _count_or_all("max_cells", max_cells)
    if len(idx) > max_cells:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_cells, replace=False))
    x = np.asarray(adata.obsm[use_rep])[idx]
    if not np.isfinite(x).all():
        raise SpaconInputError(f"adata.obsm[{use_rep!r}] has NaN or infinite values: no layout "
                               "can place those cells; embed them again or leave them out.")
    if backend == "spacon":
        xy = umap_layout(x, seed=seed)
    else:
        import umap as umap_learn

        xy = umap_learn.UMAP(random_state=seed, n_jobs=1).fit_transform(x)
    if point_size is None:
        point_size = _point_size(len(idx), panel_inches=5.0)
    colour_of = np.array([colours[c] for c in cat.categories])
    own = ax is None
    fig, ax = figure_and_axes(ax, (5.5, 5))
    ax.scatter(xy[:, 0], xy[:, 1], c=colour_of[cat.codes[idx]], s=point_size, linewidths=0)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    shown = f"{len(idx):,} of {adata.n_obs:,} cells" if len(idx) < adata.n_obs else None
    heading = "; ".join(t for t in (title, shown) if t)
    if heading:
        ax.set_title(heading, fontsize="small")
    _legend(fig, colours, key, ax=None if own else ax)
    return fig if own else ax


# what the loss history holds for each of SpaCon.train's loss= options
LOSS_LABELS = {"sum": "reconstruction loss per cell",
               "mean": "mean squared error per cell and gene"}


@returns_figure
def loss(adata_or_history, *, ax=None):
    """Training loss per epoch.

    Parameters
    ----------
    adata_or_history
        Annotated data with ``uns['spacon']['loss_history']`` (written by
        :meth:`spacon.SpaCon.embed`), a trained :class:`spacon.SpaCon` or its ``history``
        (``{"epoch", "loss"}`` per epoch), or a sequence of losses, one per epoch
        (labelled per cell, as ``loss="sum"`` records them; a model or its AnnData says
        which it trained with).
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    from ._figure import figure_and_axes

    kind = "sum"  # the training's loss option, when known
    if hasattr(adata_or_history, "uns"):
        if _keys.MODEL_UNS not in adata_or_history.uns:
            raise SpaconInputError("adata.uns has no 'spacon' record; train and embed first.")
        record = adata_or_history.uns[_keys.MODEL_UNS]
        values = np.asarray(record["loss_history"])
        kind = record.get("train_params", {}).get("loss", kind)
    elif hasattr(adata_or_history, "history"):  # a model
        values = np.asarray([h["loss"] for h in adata_or_history.history], dtype=float)
        kind = (getattr(adata_or_history, "train_params", None) or {}).get("loss", kind)
        if not len(values):
            raise SpaconInputError("the model has no loss history: train it first.")
    else:
        history = list(adata_or_history) if isinstance(adata_or_history, (list, tuple)) else None
        if history and all(isinstance(h, dict) and "loss" in h for h in history):
            adata_or_history = [h["loss"] for h in history]  # model.history: {"epoch", "loss"}
        try:
            values = np.asarray(adata_or_history, dtype=float)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1:
            raise SpaconInputError(
                f"pl.loss takes an AnnData, a SpaCon model or a sequence of losses, got "
                f"{type(adata_or_history).__name__}"
                + ("" if values is None else f" of shape {values.shape}") + ".")
    own = ax is None
    fig, ax = figure_and_axes(ax, (5, 3.5))
    ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(LOSS_LABELS.get(kind, LOSS_LABELS["sum"]))
    if own:
        fig.tight_layout()
    return fig if own else ax


@returns_figure
def section_divergence(adata, *, key: str = _keys.DOMAIN, section_key: str = "section",
                       section_order=None, ax=None):
    """Jensen-Shannon divergence of domain composition between adjacent sections.

    One bar per pair of adjacent sections, from :func:`spacon.tl.section_divergence`.

    Parameters
    ----------
    adata
        Annotated data with domains and sections in ``obs``.
    key
        ``obs`` column of the domains.
    section_key, section_order
        Sections and their order (see :func:`spacon.pp.section_codes`).
    ax
        Axes to draw on (the figure is then the caller's to lay out); default: a new figure.

    Returns
    -------
    The matplotlib :class:`~matplotlib.figure.Figure`; ``ax`` when given (as scanpy
    returns the axes it drew on, so a notebook shows the caller's figure once).
    """
    check_anndata(adata, "spacon.pl.section_divergence")
    from ..tl import section_divergence as compute
    from ._figure import figure_and_axes

    table = compute(adata, key=key, section_key=section_key, section_order=section_order)
    own = ax is None
    # a bar per pair; past 60 pairs (a whole brain's sections) the figure stops widening and
    # every step-th pair is labelled
    fig, ax = figure_and_axes(ax, (min(max(4, 0.25 * len(table) + 2), 17), 3.5))
    ax.bar(np.arange(len(table)), table["js_divergence"], color="#4c72b0")
    step = max(1, -(-len(table) // 60))
    ticks = np.arange(0, len(table), step)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{table['section'].iloc[i]}-{table['next_section'].iloc[i]}"
                        for i in ticks], rotation=90, fontsize="x-small")
    ax.set_ylim(0, 1)
    ax.set_ylabel("JS divergence")
    ax.set_title("domain composition change between adjacent sections", fontsize="small")
    if own:
        fig.tight_layout()
    return fig if own else ax
