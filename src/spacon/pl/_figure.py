"""The figure every plotting function returns, shown once in a notebook.

The plotting functions return their figure, made through pyplot so that ``plt.show()`` and
interactive backends work as with any matplotlib figure. In Jupyter, the inline backend shows
a cell's open figures when it ends, and a figure returned by the cell's last line is shown
again as its result: every plot appeared twice. This figure, once shown in a notebook with
the inline backend, is closed in pyplot, so that backend does not show it again. Under a
window or widget backend (Qt, ipympl) it leaves the showing to the backend; elsewhere (a
terminal IPython) it stays open for ``plt.show()`` or ``savefig``.
"""

from __future__ import annotations

import matplotlib
import matplotlib.figure

NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}  # matplotlib's own


class Figure(matplotlib.figure.Figure):
    """A matplotlib figure that a notebook shows once (see the module docstring)."""

    def _ipython_display_(self) -> None:
        open_in_pyplot = self.canvas.manager is not None
        if open_in_pyplot and pyplot_shows_figures() and "inline" not in backend():
            return  # a window or widget shows it
        from IPython import get_ipython
        from IPython.display import publish_display_data

        formatter = get_ipython().display_formatter
        hook = formatter.ipython_display_formatter
        enabled, hook.enabled = hook.enabled, False
        try:  # the formats the user chose for figures (png, retina, svg), without this hook
            data, metadata = formatter.format(self)
        finally:
            hook.enabled = enabled
        publish_display_data(data, metadata)
        if open_in_pyplot and "inline" in backend():
            import matplotlib.pyplot as plt

            plt.close(self)  # shown: the inline backend would show it again when the cell ends


def backend() -> str:
    """The name of matplotlib's backend, lower case."""
    return str(matplotlib.get_backend()).lower()


def pyplot_shows_figures() -> bool:
    """Whether pyplot shows open figures by itself: interactive mode, an interactive backend."""
    return matplotlib.is_interactive() and backend() not in NON_INTERACTIVE


def subplots(*args, **kwargs):
    """``plt.subplots`` making a :class:`Figure`."""
    import matplotlib.pyplot as plt

    return plt.subplots(*args, FigureClass=Figure, **kwargs)


def figure(**kwargs) -> Figure:
    """``plt.figure`` making a :class:`Figure`."""
    import matplotlib.pyplot as plt

    return plt.figure(FigureClass=Figure, **kwargs)


def figure_and_axes(ax, figsize: tuple[float, float]):
    """``(figure, axes)`` to draw one panel on: ``ax`` and its figure (the caller lays it
    out), or a new :class:`Figure` of ``figsize`` inches with one axes.
    """
    if ax is None:
        return subplots(figsize=figsize)
    from matplotlib.axes import Axes

    from .._errors import SpaconInputError

    if not isinstance(ax, Axes):
        raise SpaconInputError(f"ax must be a matplotlib Axes, got {type(ax).__name__}.")
    return ax.figure, ax
