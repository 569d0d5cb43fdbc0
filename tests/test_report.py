import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import spacon
from spacon.cli import main
from spacon.report import payload, sample_per_domain, write_report

SMALL = ["--hidden-dims", "16", "8", "4", "--epochs", "1", "--batch-size", "400", "--quiet"]


def decode(b64, dtype):
    return np.frombuffer(base64.b64decode(b64), dtype=dtype)


@pytest.fixture
def result(rng):
    """A result-like AnnData: 3-D cells in 4 sections, domains at two alphas, markers, metrics."""
    n = 1000
    section = np.repeat(np.arange(4), n // 4)
    xy = rng.uniform(0, 100, (n, 2))
    adata = ad.AnnData(np.zeros((n, 1), dtype=np.float32))
    adata.obs_names = [f"cell{i}" for i in range(n)]
    adata.obsm["spatial"] = np.column_stack([xy, 25.0 * section])
    adata.obs["section"] = pd.Categorical([f"s{s}" for s in section], ordered=True)
    adata.obs["region"] = pd.Categorical(np.where(xy[:, 0] > 50, "cortex", "striatum"))
    small = np.arange(n) < 20  # a rare domain must still be drawn
    adata.obs["spacon_domain_alpha0"] = pd.Categorical(
        np.where(small, "2", (xy[:, 0] > 50).astype(int).astype(str)))
    adata.obs["spacon_domain_alpha1"] = pd.Categorical((section % 2).astype(str))
    adata.uns["spacon"] = {"loss_history": np.array([3.0, 2.0, 1.5])}
    adata.uns["spacon_markers"] = {"spacon_domain_alpha0": pd.DataFrame(
        {"domain": ["0", "0", "1"], "rank": [1, 2, 1], "gene": ["Gad1", "Sst", "Slc17a7"],
         "coefficient": [0.5, 0.2, 0.4]})}
    adata.uns["spacon_connectivity_prediction"] = {
        "metrics": {"spacon": {"pearson_r": 0.61, "auroc": 0.83},
                    "position": {"pearson_r": 0.42, "auroc": 0.71}}}
    return adata


SUMMARY = {"parameters": {"section_key": "section", "spatial_key": "spatial", "seed": 3},
           "domain_keys": {"0": "spacon_domain_alpha0", "1": "spacon_domain_alpha1"},
           "timings_seconds": {"training": 12.5}, "versions": {"spacon": "test-version"},
           "loss_history": [3.0, 2.0, 1.5]}


def test_sample_keeps_every_domain_in_proportion():
    strata = np.repeat([0, 1, 2], [9000, 900, 100])
    drawn = sample_per_domain(strata, 1000, seed=0)
    assert len(drawn) == 1000 and len(np.unique(drawn)) == 1000
    assert np.bincount(strata[drawn]).tolist() == [900, 90, 10]
    assert np.array_equal(drawn, sample_per_domain(strata, 1000, seed=0))
    assert not np.array_equal(drawn, sample_per_domain(strata, 1000, seed=1))
    assert np.array_equal(sample_per_domain(strata, 10_000), np.arange(10_000))


def test_payload_draws_at_most_max_points_with_every_domain(result):
    data = payload(result, SUMMARY, max_points=300)
    assert data["n_cells"] == 1000 and data["n_drawn"] == 300
    assert [a["alpha"] for a in data["alphas"]] == ["0", "1"]
    alpha0 = data["alphas"][0]
    codes = decode(alpha0["codes"], "<u2")
    drawn_sizes = np.bincount(codes, minlength=3)
    # the rare domain (20 cells) keeps its share: 6 of 300; sizes are of all cells
    assert drawn_sizes[alpha0["categories"].index("2")] == 6
    assert sum(alpha0["sizes"]) == 1000
    z = decode(data["coords"][2], "<f4")
    sections = decode(data["slices"]["codes"], "<u2")
    assert np.allclose(z, 25.0 * sections)  # each drawn cell keeps its own coordinates
    assert data["slices"]["names"] == ["s0", "s1", "s2", "s3"]
    assert data["axis_titles"][2] == "z (section)"
    assert [lab["name"] for lab in data["labels"]] == ["region"]
    ids = data["cell_ids"]
    region = decode(data["labels"][0]["codes"], "<u2")
    cats = data["labels"][0]["categories"]
    for i in range(0, 300, 37):
        assert cats[region[i]] == result.obs.loc[ids[i], "region"]
    assert data["markers"]["spacon_domain_alpha0"]["0"] == ["Gad1", "Sst"]
    assert data["connectivity_prediction"]["spacon"]["auroc"] == pytest.approx(0.83)


def test_report_is_one_offline_file_that_states_its_size(result, tmp_path):
    path = write_report(result, tmp_path / "report.html", summary=SUMMARY, max_points=300)
    page = path.read_text()
    size = path.stat().st_size
    assert f"({size:,} bytes)" in page
    assert "300 of 1,000 cells are drawn (at most 300" in page
    assert not re.search(r"<script[^>]+src=", page)  # everything is inline: no CDN
    assert "Plotly" in page and 'id="alpha-select"' in page
    assert "Slc17a7" in page and "test-version" in page and "0.83" in page
    block = re.search(r'id="spacon-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block)["n_drawn"] == 300
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_report_shows_the_truth_scores_and_says_when_nothing_was_trained(result, tmp_path):
    scores = {"truth": "region", "0": {"ari": 0.8123, "nmi": 0.7, "v_measure": 0.7,
                                       "hungarian_f1": 0.9}}
    page = write_report(result, tmp_path / "a.html", summary={**SUMMARY, "truth_scores": scores})
    page = page.read_text()
    assert "Domains against the truth (obs['region'])" in page and "0.8123" in page
    assert 'id="loss"' in page
    del result.uns["spacon"]  # a smoothing run: no loss history anywhere
    smoothing = {**SUMMARY, "loss_history": [], "training": {"encoder": "smoothing", "n_hops": 3},
                 "parameters": {**SUMMARY["parameters"], "lr": 0.005, "hidden_dims": [8, 4]}}
    page = write_report(result, tmp_path / "b.html", summary=smoothing)
    page = page.read_text()
    assert 'id="loss"' not in page and "was not trained" in page
    assert "Domains against the truth" not in page
    # the trained encoder's options are not listed for a run that trained none
    assert "<td>section_key</td>" in page and "<td>lr</td>" not in page
    assert "<td>hidden_dims</td>" not in page


def test_report_says_how_it_was_run_and_shows_baselines_beside_spacon(result, tmp_path):
    baselines = {"truths": {"regions": "region"}, "planted": True,
                 "rows": {"spacon alpha=0": {"regions": 0.8619, "n_domains": 16},
                          "smoothed expression alpha=0": {"regions": 0.6927, "n_domains": 15}}}
    summary = {**SUMMARY, "command": "spacon demo --out d", "finished_utc": "2026-11-29T21:00",
               "working_directory": "/home/me", "baselines": baselines,
               "parameters": {**SUMMARY["parameters"], "n_neighbors": None},
               "training": {"epochs": 20, "steps": 500, "data": "abc"},
               "n_domains": {"0": 16}}
    page = write_report(result, tmp_path / "r.html", summary=summary).read_text()
    assert '<meta name="viewport" content="width=device-width' in page
    assert "<code>spacon demo --out d</code>" in page and "/home/me" in page
    table = page[page.index("Against the planted truth"):page.index('id="alpha-select"')]
    assert "<td>spacon alpha=0</td><td>0.862</td><td>16</td>" in table
    assert "<td>smoothed expression alpha=0</td><td>0.693</td><td>15</td>" in table
    assert "<th>alpha</th><th>domains</th>" in page  # every run table has its header
    assert "<td>data digest" in page and "<td>not set</td>" in page  # None said, not blank
    assert "Against the planted truth" not in write_report(
        result, tmp_path / "s.html", summary=SUMMARY).read_text()
    # a user's truth column is named, not called planted
    mine = {**summary, "baselines": {**baselines, "planted": False}}
    page = write_report(result, tmp_path / "m.html", summary=mine).read_text()
    assert "<h2>Against obs['region'], beside simple baselines</h2>" in page


def test_report_colours_domains_as_the_figures_do(result):
    result.uns["spacon_domain_alpha1_colors"] = ["#000000", "#ff00ff"]  # as scanpy stores them
    data = payload(result, SUMMARY)
    assert [a["colours"] for a in data["alphas"] if a["alpha"] == "1"] == [["#000000", "#ff00ff"]]


def test_report_of_domains_some_cells_lack(result, tmp_path):
    domain = result.obs["spacon_domain_alpha1"].astype(object)
    domain.iloc[:50] = np.nan
    result.obs["partial"] = pd.Categorical(domain)
    data = payload(result, SUMMARY, domain_keys={"1": "partial"})
    alpha = data["alphas"][0]
    assert alpha["categories"][-1] == "NA" and alpha["colours"][-1] == "#d3d3d3"
    assert alpha["sizes"][-1] == 50 and sum(alpha["sizes"]) == result.n_obs
    assert write_report(result, tmp_path / "r.html", domain_keys={"1": "partial"}).exists()


def test_report_of_3d_data_without_sections_is_sliced(result):
    result.obs = result.obs.drop(columns="section")
    data = payload(result, {**SUMMARY, "parameters": {}})
    assert data["slices"]["names"] == ["z = 0", "z = 25", "z = 50", "z = 75"]
    assert data["slices"]["plane"] == [0, 1] and data["axis_titles"][2] == "z"


@pytest.fixture(scope="module")
def run_dir(sim_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "res"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--section-key",
                 "section", "--radius", "700", "--z-radius", "700", "--threshold", "0.4",
                 "--out", str(out), "--figures", "none", *SMALL]) == 0
    return out


def test_run_writes_the_report_and_report_rewrites_it(run_dir, tmp_path, capsys):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["figures"] == [] and not (run_dir / "figures").exists()
    assert summary["command"].startswith("spacon run --adata ") and "--radius 700" in \
        summary["command"]
    assert "report" in summary["timings_seconds"]
    page = (run_dir / "report.html").read_text()
    assert "all 900 cells are drawn" in page
    out = tmp_path / "small.html"
    assert main(["report", str(run_dir), "--max-points", "100", "--out", str(out)]) == 0
    assert "100 of 900 cells are drawn" in out.read_text()
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no result.h5ad" in capsys.readouterr().err
    before = (run_dir / "result.h5ad").read_bytes()
    assert main(["report", str(run_dir), "--out", str(run_dir / "result.h5ad")]) == 2
    assert "is the result the report is made from" in capsys.readouterr().err
    csv = (run_dir / "domains.csv").read_bytes()
    assert main(["report", str(run_dir), "--out", str(run_dir / "domains.csv")]) == 2
    assert "name an .html file" in capsys.readouterr().err
    assert (run_dir / "domains.csv").read_bytes() == csv
    import anndata as ad

    bare = tmp_path / "predicted"  # a result without domains, as spacon predict writes
    bare.mkdir()
    ad.AnnData(np.ones((3, 2), np.float32)).write_h5ad(bare / "result.h5ad")
    assert main(["report", str(bare)]) == 2
    assert "holds no domains (a spacon predict result" in capsys.readouterr().err
    assert not (bare / "report.html").exists()
    assert (run_dir / "result.h5ad").read_bytes() == before


def test_run_scores_the_baselines_beside_its_domains(sim_inputs, tmp_path, capsys):
    out = tmp_path / "res"
    common = ["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
              str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--section-key",
              "section", "--radius", "700", "--z-radius", "700", "--threshold", "0.4",
              "--figures", "none"]
    assert main([*common, "--baselines", "--out", str(out), *SMALL]) == 2  # no --truth
    assert "--baselines scores the baselines' domains against --truth" in capsys.readouterr().err
    assert not out.exists()
    assert main([*common, "--truth", "region", "--baselines", "--out", str(out), *SMALL]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["baselines"]["rows"]
    assert list(rows) == ["spacon alpha=0", "spacon alpha=1", "smoothed expression alpha=0",
                          "smoothed expression alpha=1", "expression only (PCA + Leiden)"]
    # the run's own rows are its domains' scores against the truth
    assert rows["spacon alpha=0"]["region"] == pytest.approx(summary["truth_scores"]["0"]["ari"])
    assert "baselines" in summary["timings_seconds"]
    page = (out / "report.html").read_text()
    assert "Against obs['region'], beside simple baselines" in page
    assert "expression only (PCA + Leiden)" in capsys.readouterr().out
    # domains called again from the run are not shown beside the run's baselines
    assert main(["domains", "--result", str(out), "--n-domains", "3", "--figures", "none",
                 "--out", str(tmp_path / "again")]) == 0
    assert "baselines" not in json.loads((tmp_path / "again" / "summary.json").read_text())


def test_the_smoothing_baseline_calls_domains_as_the_run_does(sim_inputs, tmp_path):
    out = tmp_path / "res"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--section-key",
                 "section", "--radius", "700", "--z-radius", "700", "--threshold", "0.4",
                 "--figures", "none", "--no-report", "--truth", "region", "--baselines",
                 "--n-domains", "5", "--out", str(out), *SMALL]) == 0
    rows = json.loads((out / "summary.json").read_text())["baselines"]["rows"]
    assert rows["spacon alpha=0"]["n_domains"] == 5 and rows["spacon alpha=1"]["n_domains"] == 5
    assert rows["smoothed expression alpha=0"]["n_domains"] == 5
    assert rows["smoothed expression alpha=1"]["n_domains"] == 5


def test_no_report(sim_inputs, tmp_path):
    out = tmp_path / "res"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--section-key", "section", "--radius", "700", "--z-radius", "700", "--out", str(out),
                 "--alpha", "0", "--no-report", "--figures", "none", "--quiet"]) == 0
    assert (out / "result.h5ad").exists() and not (out / "report.html").exists()


# -- the page in a real browser (Debian's chromium, driven over the DevTools protocol) --------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture
def browser():
    """The chromium binary; skips before any result is built when there is none."""
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if binary is None:
        pytest.skip("no chromium installed (apt-get install chromium); .ci/run installs it")
    try:
        import websocket  # noqa: F401
    except ImportError:
        pytest.skip("websocket-client is not installed (pip install -e '.[test]')")
    return binary


class Page:
    """One headless chromium tab, driven over the DevTools protocol; records JS errors."""

    def __init__(self, binary, profile):
        import websocket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # chromium's scratch folders (org.chromium.Chromium.*) in one of our own, removed on
        # close; short, since its sockets' paths must fit in 108 characters
        self.scratch = tempfile.mkdtemp(prefix="spacon-chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--enable-unsafe-swiftshader",
             "--use-angle=swiftshader", "--no-first-run", "--window-size=1280,1000",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
             # chromium refuses DevTools connections that carry a web origin unless allowed
             f"--remote-allow-origins=http://127.0.0.1:{port}", "about:blank"],
            env={**os.environ, "TMPDIR": self.scratch},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    pytest.fail("chromium did not open its DevTools port")
                time.sleep(0.2)
        tab = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=120,
                                             suppress_origin=True)
        self.next_id, self.errors = 0, []
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg.get("result", {})
            self._record(msg)

    def _record(self, msg):
        params = msg.get("params", {})
        if msg.get("method") == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("exception", {}).get(
                "description", params["exceptionDetails"].get("text")))
        elif msg.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(str(params.get("args")))
        elif msg.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression, timeout=120):
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.25)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A third of the demo brain (2,000 cells in 12 sections) through ``spacon run``; the
    smoothing encoder stands in for training so that the test stays short."""
    sim = tmp_path_factory.mktemp("demo_brain")
    assert main(["simulate", "--n-cells", "2000", "--n-genes", "100", "--out", str(sim)]) == 0
    out = sim / "res"
    assert main(["run", "--adata", str(sim / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim / "connectome.npz"), "--unit-key", "unit", "--section-key", "section",
                 "--n-neighbors", "8", "--z-radius", "0", "--threshold", "0.4",
                 "--encoder", "smoothing", "--figures", "none", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_report_opens_in_a_headless_browser(browser, demo_dir, tmp_path):
    import matplotlib.pyplot as plt

    page = Page(browser, tmp_path / "profile")
    try:
        page.call("Page.navigate", url=(demo_dir / "report.html").resolve().as_uri())
        page.wait_for("document.body && document.body.dataset.ready === 'true'")
        assert page.errors == []
        assert page.evaluate("document.querySelectorAll('#scene .gl-container canvas').length") >= 1
        assert page.evaluate("document.getElementById('scene')._fullLayout.scene !== undefined")
        summary = json.loads((demo_dir / "summary.json").read_text())
        options = page.evaluate(
            "Array.from(document.querySelectorAll('#alpha-select option')).map(o => o.text)")
        assert len(options) == len(summary["domain_keys"]) and options[0].startswith("alpha = 0")
        n0 = page.evaluate("document.getElementById('scene').data.length")
        assert n0 == summary["n_domains"]["0"]
        hover = page.evaluate("document.getElementById('scene').data[0].text[0]")
        assert hover.startswith("cell: ") and "section: " in hover and "domain: " in hover
        # how the number was chosen: each family's score and charged score, and the reason
        names = page.evaluate(
            "document.getElementById('domain-scores').data.map((t) => t.name)")
        assert sum("stability x modularity" in n for n in names) == 2
        assert sum("charged 3% per doubling" in n for n in names) == 2
        reason = page.evaluate("document.getElementById('domain-reason').textContent")
        assert reason.startswith(f"{summary['n_domains']['0']} domains (")
        png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        # switch alpha: the scene is redrawn with that alpha's domains
        page.evaluate("const s = document.getElementById('alpha-select'); s.value = '1';"
                      "s.dispatchEvent(new Event('change')); true")
        page.wait_for(f"document.getElementById('scene').data.length === "
                      f"{summary['n_domains']['1']}")
        assert page.errors == []
        # the scores' plot keeps its height (it fell to 0 and overlapped the sections below)
        assert page.evaluate("document.getElementById('domain-scores').offsetHeight") >= 400
        # no button that uploads a chart to plotly's cloud
        titles = page.evaluate("Array.from(document.querySelectorAll('.modebar-btn'))"
                               ".map((b) => b.getAttribute('data-title') || '')")
        assert titles and not [t for t in titles if "Share" in t or "Studio" in t or
                               "Cloud" in t]
    finally:
        page.close()
    img = plt.imread(io.BytesIO(png))[..., :3]
    scene = img[150:750, 100:1100]
    assert scene.std() > 0.05  # not blank
    colours = {tuple(c) for c in (scene.reshape(-1, 3) * 255).round().astype(int)}
    assert len(colours) > 50


def test_payload_says_how_the_number_of_domains_was_chosen(rng):
    """Each alpha carries its selection's reason, choice and scores; domains that were not
    chosen from scores (Leiden) carry none."""
    from spacon.report import payload
    from spacon.report._payload import find_domain_keys

    x = np.repeat(np.eye(3) * 8, 100, axis=0) + rng.normal(0, 0.5, (300, 3))
    adata = ad.AnnData(x.astype(np.float32))
    adata.obsm["X_spacon"] = x
    adata.obsm["spatial"] = rng.uniform(0, 10, (300, 2))
    spacon.tl.domains(adata, key_added="chosen", n_jobs=1)
    spacon.tl.domains(adata, method="leiden", key_added="communities")
    data = payload(adata, domain_keys={"0": "chosen", "1": "communities"})
    stored = adata.uns["chosen"]["selection"]
    chosen = data["alphas"][0]["selection"]
    assert chosen["chosen"] == stored["chosen"] == 3 and chosen["shown"] == 3
    assert chosen["reason"] == stored["reason"] and chosen["per_doubling"] == 0.03
    assert chosen["families"]["tree"]["k"] == stored["tree"]["k"].tolist()
    assert np.allclose(chosen["families"]["mixture"]["score"], stored["mixture"]["score"])
    assert data["alphas"][1]["selection"] is None
    # the tree cut at 2 shows 2; a result of spacon before the charge has no per_doubling;
    # a level column of spacon run --n-domains 4 8 (no summary) is not an alpha
    spacon.tl.domains(adata, n_domains=2, tree_key="chosen", key_added="cut", n_jobs=1)
    del adata.uns["cut"]["selection"]["per_doubling"]
    cut = payload(adata, domain_keys={"0": "cut"})["alphas"][0]["selection"]
    assert (cut["chosen"], cut["shown"], cut["per_doubling"]) == (3, 2, None)
    adata.obs["spacon_domain_alpha0"] = adata.obs["chosen"]
    adata.obs["spacon_domain_alpha0_k4"] = adata.obs["chosen"]
    assert find_domain_keys(adata, None) == {"0": "spacon_domain_alpha0"}


def test_report_of_a_2d_result_and_numpy_in_the_summary(result, tmp_path):
    result.obsm["spatial"] = result.obsm["spatial"][:, :2]
    result.obs = result.obs.drop(columns="section")
    summary = {**SUMMARY, "parameters": {"seed": np.int64(3)}, "loss_history": np.ones(3)}
    data = payload(result, summary)
    assert data["dims"] == 2 and data["slices"]["names"] == ["all cells"]
    page = write_report(result, tmp_path / "r.html", summary=summary).read_text()
    assert "all 1,000 cells are drawn" in page


def test_report_of_domains_under_other_names(result, tmp_path):
    result.obs["mine"] = result.obs["spacon_domain_alpha1"]
    data = payload(result, domain_keys={"1": "mine"})
    assert [a["key"] for a in data["alphas"]] == ["mine"]
    with pytest.raises(spacon.SpaconInputError, match="no domain column"):
        write_report(result, tmp_path / "r.html", domain_keys={"1": "absent"})
    assert not list(tmp_path.iterdir())
    bare = ad.AnnData(np.zeros((3, 1), dtype=np.float32), obsm={"spatial": np.zeros((3, 2))})
    with pytest.raises(spacon.SpaconInputError, match="no domains"):
        payload(bare)


def test_report_finds_the_domains_tl_domains_wrote_under_any_name(rng, tmp_path):
    """The README's Python workflow names its domains; the report finds them unasked."""
    adata = ad.AnnData(np.zeros((200, 1), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(200)]
    adata.obsm["spatial"] = rng.uniform(0, 10, (200, 2))
    adata.obsm["X_spacon_spa"] = rng.normal(size=(200, 3))
    adata.obsm["X_spacon_con"] = rng.normal(size=(200, 3))
    for alpha in (0, 1):
        spacon.tl.fuse(adata, alpha)
        spacon.tl.domains(adata, n_domains=3, key_added=f"domain_alpha{alpha}")
    adata.obs["batch"] = pd.Categorical(["a", "b"] * 100)  # labels, not domains
    data = payload(adata)
    assert {a["alpha"]: a["key"] for a in data["alphas"]} == {"0": "domain_alpha0",
                                                              "1": "domain_alpha1"}


def test_report_draws_separate_samples_given_by_section_key(result, tmp_path):
    """Two samples with overlapping 2-D coordinates: one slice each, not one overlaid."""
    result.obs = result.obs.drop(columns="section")
    result.obsm["spatial"] = result.obsm["spatial"][:, :2]
    result.obs["sample"] = pd.Categorical(np.where(np.arange(result.n_obs) % 2, "B", "A"))
    assert payload(result, {})["slices"]["names"] == ["all cells"]
    data = payload(result, {}, section_key="sample")
    assert data["slices"]["names"] == ["A", "B"]
    # the run's section order is of its own column, not of the one named here
    run = {"parameters": {"section_key": "section", "section_order": ["s0", "s1"]}}
    assert payload(result, run, section_key="sample")["slices"]["names"] == ["A", "B"]
    page = write_report(result, tmp_path / "r.html", section_key="sample").read_text()
    assert '"A"' in page and '"B"' in page
    with pytest.raises(spacon.SpaconInputError, match="no section column 'sample_id'"):
        write_report(result, tmp_path / "bad.html", section_key="sample_id")
    assert not (tmp_path / "bad.html").exists()


def test_marker_tables_list_domains_in_number_order():
    from spacon.report._page import _marker_tables

    page = _marker_tables({"spacon_domain_alpha0": {"10": ["a"], "2": ["b"], "0": ["c"]}})
    assert re.findall(r"<tr><td>(\d+)</td>", page) == ["0", "2", "10"]
