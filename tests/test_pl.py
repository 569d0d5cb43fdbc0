import io

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import spacon  # noqa: E402
from spacon import SpaconInputError  # noqa: E402


@pytest.fixture
def result(rng):
    n = 400
    xy = rng.uniform(0, 100, size=(n, 2))
    section = np.repeat(["s0", "s1"], n // 2)
    z = np.where(section == "s0", 0.0, 50.0)
    adata = ad.AnnData(np.zeros((n, 1), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(n)]
    adata.obsm["spatial"] = np.column_stack([xy, z])
    adata.obs["section"] = pd.Categorical(section, ordered=True)
    domain = (xy[:, 0] > 50).astype(int) + 2 * (xy[:, 1] > 50).astype(int)
    adata.obs["spacon_domain"] = pd.Categorical(domain.astype(str))
    adata.obsm["X_spacon"] = np.eye(4)[domain] + rng.normal(0, 0.05, (n, 4))
    adata.uns["spacon"] = {"loss_history": np.array([3.0, 2.0, 1.5])}
    return adata


def pixels(fig, dpi=40):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    buf.seek(0)
    return (plt.imread(buf)[..., :3] * 255).round().astype(int)


def has_colour(img, rgb, tol=40):
    target = np.array(rgb) * 255
    return (np.abs(img - target).sum(-1) < tol).any()


def test_palette_has_enough_distinct_colours():
    colours = spacon.pl.palette(40)
    assert len(set(colours)) == 40


def test_domain_map_shows_every_domain_and_every_section(result):
    fig = spacon.pl.domains(result, point_size=80)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["s0", "s1"]
    assert all(ax.get_aspect() == 1.0 for ax in visible)
    img = pixels(fig)
    for colour in spacon.pl.palette(4):
        assert has_colour(img, colour)


def test_highlight_uses_two_colours(result):
    img = pixels(spacon.pl.highlight(result, "3", point_size=80))
    assert has_colour(img, (0xe4 / 255, 0x57 / 255, 0x2e / 255))
    assert has_colour(img, (0xd3 / 255, 0xd3 / 255, 0xd3 / 255))
    with pytest.raises(SpaconInputError, match="not in adata.obs"):
        spacon.pl.highlight(result, "99")


def test_stack3d_and_errors(result):
    img = pixels(spacon.pl.stack3d(result, point_size=80))
    assert has_colour(img, spacon.pl.palette(4)[0], tol=80)
    flat = result.copy()
    flat.obsm["spatial"] = flat.obsm["spatial"][:, :2]
    with pytest.raises(SpaconInputError, match="3-D"):
        spacon.pl.stack3d(flat)


def test_umap_loss_and_divergence(result):
    img = pixels(spacon.pl.umap(result, point_size=80))
    for colour in spacon.pl.palette(4):
        assert has_colour(img, colour, tol=80)
    fig = spacon.pl.loss(result)
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == [3.0, 2.0, 1.5]
    pixels(fig)
    fig = spacon.pl.section_divergence(result)
    bars = fig.axes[0].patches
    assert len(bars) == 1 and 0 <= bars[0].get_height() <= 1
    pixels(fig)
    with pytest.raises(SpaconInputError, match="no 'spacon' record"):
        spacon.pl.loss(ad.AnnData(np.zeros((2, 1), dtype=np.float32)))
