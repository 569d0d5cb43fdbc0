import io

import anndata as ad
import matplotlib
import matplotlib.colors

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
    import matplotlib as mpl

    from spacon.pl._palette import srgb_to_lab

    colours = spacon.pl.palette(40)
    assert len(set(colours)) == 40
    assert colours[:10] == [tuple(c) for c in mpl.colormaps["tab10"].colors]
    # no two of the first 30 are shades of one hue (tab20b's four indigos were 14 apart)
    lab = srgb_to_lab(np.array(colours[:30]))
    gaps = np.linalg.norm(lab[:, None] - lab[None], axis=2)[np.triu_indices(30, 1)]
    assert gaps.min() > 25
    # CIELAB of known sRGB colours: white, red
    assert np.allclose(srgb_to_lab(np.array([[1.0, 1, 1], [1, 0, 0]])),
                       [[100, 0, 0], [53.24, 80.09, 67.20]], atol=0.05)
    assert spacon.pl.palette(80)[72] == colours[0]  # repeats after 72


def test_domain_map_shows_every_domain_and_every_section(result):
    fig = spacon.pl.domains(result, point_size=80)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["s0", "s1"]
    assert all(ax.get_aspect() == 1.0 for ax in visible)
    img = pixels(fig)
    for colour in spacon.pl.palette(4):
        assert has_colour(img, colour)


def test_legends_lie_inside_the_figure_beside_the_panels(result):
    for fig in (spacon.pl.domains(result), spacon.pl.stack3d(result)):
        renderer = fig.canvas.get_renderer()
        legend = fig.legends[0].get_window_extent(renderer)
        panels = max(ax.get_window_extent(renderer).x1 for ax in fig.axes if ax.get_visible())
        # a plain savefig (no bbox_inches="tight") keeps the legend, and no panel is under it
        assert 0 <= legend.x0 and legend.x1 <= fig.bbox.width and panels <= legend.x0


def test_a_long_legend_grows_the_figure_to_hold_it():
    """Fifteen cell types on one flat 2-D panel: the legend's ends were cut off."""
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((300, 2), np.float32))
    adata.obsm["spatial"] = rng.uniform(0, [4000, 1000], (300, 2))
    for k in (15, 45):
        adata.obs["cell_type"] = pd.Categorical([f"type {i % k}" for i in range(300)])
        adata.uns.pop("cell_type_colors", None)
        fig = spacon.pl.domains(adata, key="cell_type")
        legend = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
        assert 0 <= legend.y0 and legend.y1 <= fig.bbox.height
        assert len(fig.legends[0].get_texts()) == k
        assert fig.axes[0].get_title() == "cell_type"  # one plane: titled as scanpy titles it


def test_colours_stored_as_scanpy_stores_them_are_used(result):
    n = result.obs["spacon_domain"].nunique()
    chosen = ["#000000", "#ff00ff", "#00ffff", "#808000", "#123456"][:n]
    result.uns["spacon_domain_colors"] = chosen
    img = pixels(spacon.pl.domains(result, point_size=80))
    for colour in chosen:
        assert has_colour(img, matplotlib.colors.to_rgb(colour))
    result.uns["spacon_domain_colors"] = chosen[:1]  # too few for the categories: the palette
    assert has_colour(pixels(spacon.pl.domains(result, point_size=80)), spacon.pl.palette(n)[1])


def test_a_domain_keeps_its_colour_in_a_subset_that_lacks_others(result):
    from spacon.pl._figures import colours_of

    result.obs["spacon_domain"] = result.obs["spacon_domain"].cat.set_categories(
        ["0", "1", "2", "3"])
    part = result[result.obs["spacon_domain"].isin(["1", "3"])].copy()  # drops "0" and "2"
    assert list(part.obs["spacon_domain"].cat.categories) == ["1", "3"]
    whole = dict(zip(["0", "1", "2", "3"], colours_of(result, "spacon_domain", 4)))
    assert colours_of(part, "spacon_domain", 2) == [whole["1"], whole["3"]]
    img = pixels(spacon.pl.domains(part, point_size=80))
    assert has_colour(img, whole["3"]) and not has_colour(img, spacon.pl.palette(2)[0])
    # ids past the palette's length (atlas region ids) are coloured by position: no repeats
    result.obs["ccf"] = pd.Categorical(np.where(np.arange(result.n_obs) % 2, "385", "314"))
    assert len(set(colours_of(result, "ccf", 2))) == 2


def test_cells_without_a_domain_are_grey_not_the_last_domain(result):
    from spacon.pl._figures import MISSING_COLOUR

    domain = result.obs["spacon_domain"].astype(object)
    domain[domain == "3"] = np.nan  # e.g. domains of a subset copied back
    result.obs["partial"] = pd.Categorical(domain, categories=["0", "1", "2"])
    fig = spacon.pl.domains(result, key="partial", point_size=80)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["0", "1", "2", "NA"]
    img = pixels(fig)
    assert has_colour(img, MISSING_COLOUR, tol=10)
    result.obs["depth"] = result.obsm["spatial"][:, 0]
    with pytest.raises(SpaconInputError, match="holds numbers"):
        spacon.pl.domains(result, key="depth")


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
    # on the caller's 3-D axes, which it returns; 2-D axes are refused
    fig = plt.figure()
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    assert spacon.pl.stack3d(result, ax=ax) is ax and len(ax.collections) == 1
    assert ax.get_legend() is not None
    with pytest.raises(SpaconInputError, match="3-D axes"):
        spacon.pl.stack3d(result, ax=fig.add_subplot(1, 2, 2))
    plt.close(fig)


def test_umap_loss_and_divergence(result):
    img = pixels(spacon.pl.umap(result, point_size=80))
    for colour in spacon.pl.palette(4):
        assert has_colour(img, colour, tol=80)
    fig = spacon.pl.loss(result)
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == [3.0, 2.0, 1.5]
    pixels(fig)
    history = [{"epoch": e, "loss": v} for e, v in enumerate([3.0, 2.0], 1)]  # model.history
    assert list(spacon.pl.loss(history).axes[0].lines[0].get_ydata()) == [3.0, 2.0]
    fig = spacon.pl.section_divergence(result)
    bars = fig.axes[0].patches
    assert len(bars) == 1 and 0 <= bars[0].get_height() <= 1
    pixels(fig)
    with pytest.raises(SpaconInputError, match="no 'spacon' record"):
        spacon.pl.loss(ad.AnnData(np.zeros((2, 1), dtype=np.float32)))


def test_section_divergence_of_a_whole_brain_stays_a_readable_size():
    # 400 sections: a bar per pair, but the figure stops widening and labels every 7th pair
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((4000, 1), dtype=np.float32))
    adata.obs["section"] = np.repeat(np.arange(400), 10)
    adata.obs["spacon_domain"] = pd.Categorical(rng.integers(0, 3, 4000).astype(str))
    fig = spacon.pl.section_divergence(adata)
    assert len(fig.axes[0].patches) == 399
    assert fig.get_size_inches()[0] <= 17
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[:2] == ["0-1", "7-8"] and len(labels) == 57


def test_a_section_column_named_and_missing_is_refused(result):
    # the default 'section' may be absent; a misspelt sample column drew every sample overlaid
    for draw in (spacon.pl.domains, spacon.pl.stack3d):
        with pytest.raises(SpaconInputError, match="no section column 'sample_id'; its "
                           "columns: 'section', 'spacon_domain'"):
            draw(result, section_key="sample_id")
    result.obs = result.obs.drop(columns="section")
    fig = spacon.pl.domains(result)  # no sections: drawn in slices of z
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["z = 0", "z = 50"]


def test_3d_without_sections_is_drawn_in_slices_not_flattened(result):
    result.obs = result.obs.drop(columns="section")
    fig = spacon.pl.domains(result, section_key=None)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["z = 0", "z = 50"]
    # a continuous depth is cut into slabs of equal depth
    result.obsm["spatial"][:, 2] = np.linspace(0, 100, result.n_obs)
    cuts = spacon.pl.slices(result)
    assert cuts.depth == "z" and cuts.plane == (0, 1) and 2 <= len(cuts.names) <= 12
    assert np.all(np.diff(cuts.codes) >= 0)  # slabs follow depth
    result.obsm["spatial"][:, 2] -= 150  # negative depths read as a range, not "-150--125"
    assert spacon.pl.slices(result).names[0].startswith("z -150 to -1")


def test_domain_map_says_when_only_some_sections_are_shown(result):
    fig = spacon.pl.domains(result, max_sections=1, title="domains at alpha = 0")
    assert fig._suptitle.get_text() == "domains at alpha = 0; 1 of 2 sections shown"
    plt.close(fig)


def test_region_level_data_gets_large_dots_and_no_section_axis(rng):
    parcels = ad.AnnData(np.zeros((66, 1), dtype=np.float32))
    parcels.obsm["spatial"] = rng.uniform(0, 10_000, (66, 3))
    parcels.obs["spacon_domain"] = pd.Categorical(rng.integers(0, 5, 66).astype(str))
    fig = spacon.pl.stack3d(parcels, section_key="section", title="domains at alpha = 1")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "z" and ax.get_title() == "domains at alpha = 1"
    assert ax.collections[0].get_sizes()[0] >= 50
    plt.close(fig)
    fig = spacon.pl.domains(parcels, section_key=None)
    dots = [ax.collections[0].get_sizes()[0] for ax in fig.axes if ax.collections]
    assert min(dots) >= 50
    plt.close(fig)


def test_umap_layout_separates_clusters(rng):
    from sklearn.metrics import silhouette_score

    labels = np.repeat(np.arange(3), 100)
    x = np.eye(8)[labels] * 5 + rng.normal(0, 0.5, (300, 8))
    layout = spacon.pl.umap_layout(x, seed=0)
    assert layout.shape == (300, 2) and np.isfinite(layout).all()
    assert silhouette_score(layout, labels) > 0.5
    assert np.array_equal(layout, spacon.pl.umap_layout(x, seed=0))
    with pytest.raises(SpaconInputError, match="backend"):
        spacon.pl.umap(ad.AnnData(np.zeros((2, 1), dtype=np.float32)), backend="tsne")


@pytest.mark.parametrize("level, expected", [
    ("none", set()),
    ("basic", {"domains_alpha0", "domains_alpha1", "section_divergence_alpha0",
               "section_divergence_alpha1", "stack3d", "umap", "loss"}),
    ("all", {"domains_alpha0", "domains_alpha1", "section_divergence_alpha0",
             "section_divergence_alpha1", "stack3d", "umap", "stack3d_alpha1", "umap_alpha1",
             "loss"}),
])
def test_figure_levels_of_a_run(result, tmp_path, level, expected):
    from types import SimpleNamespace

    from spacon._pipeline import RunConfig, draw_figures

    for alpha in (0, 1):
        result.obs[f"spacon_domain_alpha{alpha}"] = result.obs["spacon_domain"]
        result.obsm[f"X_spacon_alpha{alpha}"] = result.obsm["X_spacon"]
    config = RunConfig(section_key="section", alpha=[0.0, 1.0], figures=level)
    written = draw_figures(result, config, tmp_path, SimpleNamespace(history=[{"loss": 1.0}]))
    assert {w.removeprefix("figures/").removesuffix(".png") for w in written} == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{e}.png" for e in expected)


NOTEBOOK = r"""
import json
import matplotlib
from IPython.core.displayhook import DisplayHook
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets import Type

results = []  # the formats of each cell's result, as a notebook would show it


class Result(DisplayHook):
    def write_format_data(self, format_dict, md_dict=None):
        results.append(format_dict)


class Shell(InteractiveShell):  # a notebook's shell without a GUI event loop
    displayhook_class = Type(Result)

    def enable_gui(self, gui=None):
        pass


shell = Shell.instance()
shell.run_cell("%matplotlib inline")
shell.run_cell("import spacon\nimport numpy as np\nimport anndata as ad\nimport pandas as pd\n"
               "adata = ad.AnnData(np.zeros((60, 1), dtype=np.float32))\n"
               "adata.obsm['spatial'] = np.random.default_rng(0).uniform(0, 9, (60, 2))\n"
               "adata.obs['d'] = pd.Categorical(np.arange(60) % 3)")
cells = ["spacon.pl.domains(adata, key='d', section_key=None)",
         "fig = spacon.pl.domains(adata, key='d', section_key=None)",
         "fig",
         "import matplotlib.pyplot as plt\nfig = spacon.pl.loss([3, 2, 1])\nplt.show()",
         "fig, ax = plt.subplots()\nspacon.pl.loss([3, 2, 1], ax=ax)",
         "import matplotlib\nmatplotlib.use('agg')\nkept = spacon.pl.loss([3, 2, 1])\nkept"]
shown = []
for cell in cells:
    results.clear()
    with capture_output() as captured:
        shell.run_cell(cell).raise_error()
    shown.append(sum("image/png" in data for data in
                     [out.data for out in captured.outputs] + results))
# shown under Agg (a terminal IPython), the figure stays open for plt.show() or savefig
print(json.dumps(shown + [shell.user_ns["kept"].canvas.manager is not None]))
"""


def test_a_notebook_shows_each_figure_once(tmp_path):
    """In Jupyter (the inline backend), a figure returned by a cell's last line used to show
    twice: as the cell's result and again when pyplot's open figures were shown.
    """
    import json
    import subprocess
    import sys

    pytest.importorskip("IPython")
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    # the result of a cell; a figure kept in a variable; shown again in a later cell; with
    # plt.show(); drawn on the caller's axes; under Agg (nothing shows it but the notebook)
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [1, 1, 1, 1, 1, 1, True]


def test_plots_draw_on_the_callers_axes(result):
    """``ax=`` as in scanpy: the panel goes on the caller's axes, no figure of its own, and
    the axes are returned (a returned figure would show twice in a notebook).
    """
    import matplotlib.figure

    one_section = result[result.obs["section"] == "s0"].copy()
    fig = matplotlib.figure.Figure(figsize=(12, 3))
    axes = fig.subplots(1, 4)
    before = plt.get_fignums()
    assert spacon.pl.domains(one_section, ax=axes[0]) is axes[0]
    assert spacon.pl.highlight(one_section, "1", ax=axes[1]) is axes[1]
    assert spacon.pl.umap(result, use_rep="X_spacon", max_cells=100, ax=axes[2]) is axes[2]
    assert spacon.pl.loss(result, ax=axes[3]) is axes[3]
    assert plt.get_fignums() == before  # nothing else was opened
    assert len(axes[0].collections) == 1 and len(axes[0].collections[0].get_offsets()) == 200
    assert len(axes[1].collections) == 2  # the domain and the rest
    assert axes[0].get_legend() is not None and axes[2].get_legend() is not None
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["0", "1", "2", "3"]
    assert len(axes[3].lines) == 1
    assert not fig.legends  # legends beside their own panel, not across the caller's figure
    assert "s0" in axes[0].get_title()
    assert axes[0].yaxis_inverted()  # image convention, kept when drawn on again
    spacon.pl.highlight(one_section, "2", ax=axes[0])
    assert axes[0].yaxis_inverted()
    with pytest.raises(SpaconInputError, match="2 sections"):
        spacon.pl.domains(result, ax=axes[0])
    with pytest.raises(SpaconInputError, match="ax must be a matplotlib Axes"):
        spacon.pl.loss(result, ax=fig)


def test_integer_labels_are_categories_in_numeric_order_and_keep_their_colours():
    from spacon._utils import labels_column
    from spacon.pl._figures import categories_and_colours

    adata = ad.AnnData(np.zeros((6, 1), dtype=np.float32))
    adata.obs["int"] = pd.array([0, 10, None, 5, 2, 1], dtype="Int64")
    assert labels_column(adata, "int").cat.categories.tolist() == ["0", "1", "2", "5", "10"]
    adata.obs["float"] = [-0.0, 0.0, 1.0, np.nan, 2.0, 1e16]  # -0.0 is 0, 1e16 an integer
    assert labels_column(adata, "float").cat.categories.tolist() == [
        "0", "1", "2", "10000000000000000"]
    # domains 0 and 2 read back as floats take the colours they had as text
    adata.obs["read_back"] = [0.0, 2.0, np.nan, 2.0, 0.0, 0.0]
    adata.obs["text"] = pd.Categorical(["0", "2", None, "2", "0", "0"])
    (floats, by_float), (texts, by_text) = (categories_and_colours(adata, k)
                                            for k in ("read_back", "text"))
    assert list(floats) == list(texts) and by_float == by_text


def test_a_wide_slice_gets_a_wide_panel_not_a_square_one_with_blank_bands():
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((300, 1), dtype=np.float32))
    adata.obsm["spatial"] = rng.uniform(size=(300, 2)) * [2000.0, 500.0]  # 4 times as wide
    adata.obs["spacon_domain"] = pd.Categorical(rng.integers(0, 3, 300).astype(str))
    fig = spacon.pl.domains(adata)
    width, height = fig.get_size_inches()
    panel = fig.axes[0].get_position()  # the panel's box in figure fractions, as laid out
    assert height < 0.5 * width
    assert panel.height * height > 0.6  # inches: the strip is drawn, not squeezed away
    plt.close(fig)


def test_the_loss_of_a_model_is_drawn_and_other_objects_are_named():
    from types import SimpleNamespace

    trained = SimpleNamespace(history=[{"loss": 3.0}, {"loss": 2.5}])  # as SpaCon.history holds
    fig = spacon.pl.loss(trained)
    assert list(fig.axes[0].lines[0].get_ydata()) == [3.0, 2.5]
    plt.close(fig)
    with pytest.raises(SpaconInputError, match="no loss history"):
        spacon.pl.loss(SimpleNamespace(history=[]))
    with pytest.raises(SpaconInputError, match="takes an AnnData, a SpaCon model"):
        spacon.pl.loss(object())
    with pytest.raises(SpaconInputError, match=r"of shape \(2, 2\)"):
        spacon.pl.loss([[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("name", sorted(set(spacon.pl.__all__)
                                        - {"palette", "slices", "umap_layout"}))
def test_scanpy_show_and_save_are_named_not_a_type_error(name):
    function = getattr(spacon.pl, name)
    assert function.__name__ == name and function.__doc__  # the docs are the function's own
    for keyword in ("show", "save"):
        with pytest.raises(spacon.SpaconInputError,
                           match=rf"spacon.pl.{name} takes no {keyword}= \(scanpy's\).*savefig"):
            function(None, **{keyword: False})
    with pytest.raises(spacon.SpaconInputError, match="takes no return_fig=False"):
        function(None, return_fig=False)
    assert function is not spacon.pl.loss or function([3.0, 2.0], return_fig=True) is not None


def test_the_loss_axis_says_what_the_history_holds():
    class Trained:  # what pl.loss reads of a model
        history = [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.0}]
        train_params = {"loss": "mean"}

    assert spacon.pl.loss(Trained()).axes[0].get_ylabel() == "mean squared error per cell and gene"
    Trained.train_params = {"loss": "sum"}
    assert spacon.pl.loss(Trained()).axes[0].get_ylabel() == "reconstruction loss per cell"


@pytest.mark.filterwarnings("ignore:The set_bad function")  # scanpy's own
def test_colours_chosen_for_a_column_are_kept_for_scanpy():
    """Cell types plotted by spacon first, then by scanpy, took two colourings: spacon kept
    its choice to itself. Now it is stored as scanpy stores the colours it chooses."""
    import scanpy as sc

    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((120, 2), np.float32))
    adata.obsm["spatial"] = rng.random((120, 2))
    adata.obs["cell_type"] = pd.Categorical([f"type {i % 15}" for i in range(120)])
    spacon.pl.domains(adata, key="cell_type")
    chosen = list(adata.uns["cell_type_colors"])
    assert chosen == [matplotlib.colors.to_hex(c) for c in spacon.pl.palette(15)]
    sc.pl.embedding(adata, basis="spatial", color="cell_type", show=False)
    assert list(adata.uns["cell_type_colors"]) == chosen  # scanpy takes them as they are
    view = adata[:60]
    del adata.uns["cell_type_colors"]
    spacon.pl.domains(view, key="cell_type")  # a view is drawn, not written to
    assert "cell_type_colors" not in adata.uns
