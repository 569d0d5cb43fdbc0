"""scanpy's ``show=`` / ``save=`` named when given to a figure function."""

from __future__ import annotations

import functools

from .._errors import SpaconInputError

SCANPY_ONLY = ("show", "save")  # scanpy's plotting keywords that spacon's figures do without


def returns_figure(function):
    """Name scanpy's ``show=`` / ``save=`` when given (a plain ``TypeError`` otherwise): the
    function returns its figure, to save with ``savefig``; a notebook shows it once.
    ``return_fig=True`` is what it does anyway and passes; ``return_fig=False`` is refused.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        given = [f"{k}=" for k in SCANPY_ONLY if k in kwargs]
        if kwargs.pop("return_fig", True) is not True:
            given.append("return_fig=False")
        if given:
            raise SpaconInputError(
                f"spacon.pl.{function.__name__} takes no {' or '.join(given)} (scanpy's): it "
                "returns the matplotlib figure, which a notebook shows; save it with "
                "fig.savefig('name.png').")
        return function(*args, **kwargs)

    return wrapper
