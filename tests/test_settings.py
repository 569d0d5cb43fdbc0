"""``spacon.settings.verbosity`` shows spacon's notes, as ``sc.settings.verbosity`` does scanpy's."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pytest

import spacon


@pytest.fixture
def restore_verbosity():
    yield
    spacon.settings.verbosity = "warning"


def _graph():
    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.random((50, 3)).astype(np.float32))
    adata.obsm["spatial"] = rng.random((50, 2))
    spacon.pp.spatial_graph(adata, n_neighbors=4)


def test_default_says_no_notes(capsys):
    assert spacon.settings.verbosity == "warning"
    _graph()
    assert "spatial graph" not in capsys.readouterr().err


def test_info_shows_notes_once(capsys, restore_verbosity):
    root = logging.getLogger()
    root.addHandler(seen := logging.StreamHandler())  # a root handler, as basicConfig adds
    try:
        spacon.settings.verbosity = "info"
        _graph()
        err = capsys.readouterr().err
    finally:
        root.removeHandler(seen)
    assert err.count("spacon: spatial graph:") == 1, err
    assert err.count("neighbours per cell") == 1, err  # not repeated through the root


@pytest.mark.parametrize("value, level", [(0, "error"), (2, "info"), (3, "hint"), (4, "debug"),
                                          ("DEBUG", "debug")])
def test_scanpy_numbers_and_names(value, level, restore_verbosity):
    spacon.settings.verbosity = value
    assert spacon.settings.verbosity == level
    expected = logging.INFO if level == "hint" else getattr(logging, level.upper())
    assert logging.getLogger("spacon").getEffectiveLevel() == expected


def test_back_to_default_leaves_logging_untouched(restore_verbosity):
    spacon.settings.verbosity = "info"
    spacon.settings.verbosity = "warning"
    logger = logging.getLogger("spacon")
    assert logger.propagate and not logger.handlers and logger.level == logging.NOTSET


@pytest.mark.parametrize("bad", ["loud", 5, True, None])
def test_bad_verbosity_is_named(bad):
    with pytest.raises(spacon.SpaconInputError, match="verbosity must be one of"):
        spacon.settings.verbosity = bad
    assert spacon.settings.verbosity == "warning"


def test_error_verbosity_hides_the_progress_bar(capsys, restore_verbosity):
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.log1p(rng.poisson(2, (60, 5))).astype(np.float32))
    adata.obsm["spatial"] = rng.random((60, 2))
    spacon.pp.spatial_graph(adata, n_neighbors=4)
    model = spacon.SpaCon(adata, hidden_dims=(4, 3, 2), connectome_key=None)
    model.train(max_steps=2)
    assert "training" in capsys.readouterr().err  # the bar, by default
    spacon.settings.verbosity = "error"
    model.train(max_steps=2)
    assert "training" not in capsys.readouterr().err
    model.train(max_steps=2, progress=True)
    assert "training" in capsys.readouterr().err
