from __future__ import annotations

import os

# One thread per test process: pytest-xdist runs one process per CPU already (training gives
# the same bits on any count: tests/test_repeatable.py checks that with its own counts).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import spacon  # noqa: E402


@pytest.hookimpl(optionalhook=True)  # pytest runs without pytest-xdist too (with -o addopts=)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's default): one worker per CPU, at most 4.

    Each worker runs one BLAS thread, and its largest tests hold a few GB; beyond 4 workers the
    longest file (the torchrun tests) decides the time anyway.
    """
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


# The files whose tests take longest, longest first (`python -m pytest --durations=0`, summed
# per file, 28 Nov): run first, so that the workers finish together instead of one running a
# long file alone at the end (the others follow in their usual order).
LONGEST_FILES = ["test_domains.py", "test_readme_recipes.py", "test_distributed.py",
                 "test_first_day.py", "test_cli.py", "test_report.py", "test_resume.py",
                 "test_predict_new.py", "test_smooth.py", "test_tl.py", "test_synthetic.py",
                 "test_bad_input.py", "test_training_loop.py", "test_repeatable.py",
                 "test_predict.py", "test_subtypes.py", "test_abc.py"]


def pytest_collection_modifyitems(items):
    """The longest files first (see LONGEST_FILES); the order within a file is kept."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def _brain_session():
    return spacon.datasets.synthetic_brain(
        n_cells=1200, n_genes=120, n_sections=4, n_regions=8, n_modules=2, n_cell_types=4, seed=1
    )


@pytest.fixture
def brain(_brain_session):
    """A small synthetic brain (AnnData, unit-level Connectivity); a fresh copy per test."""
    adata, conn = _brain_session
    return adata.copy(), conn


@pytest.fixture
def brain_with_graph(brain):
    """The small brain normalised, with its spatial graph (the demo's radii); and its
    connectome."""
    adata, conn = brain
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    return adata, conn


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test's figures closed after it: pyplot keeps them open, and a worker running
    several plotting files reached matplotlib's 20-figure warning."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def sim_inputs(tmp_path_factory):
    """A small brain written by ``spacon simulate``: the files ``spacon run`` reads."""
    from spacon.cli import main

    d = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--n-cells", "900", "--n-genes", "80", "--n-sections", "3",
                 "--n-regions", "6", "--n-modules", "2", "--out", str(d)]) == 0
    return d
