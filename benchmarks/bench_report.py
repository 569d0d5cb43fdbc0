"""Time and size of `spacon report` on a large result-like AnnData (250k cells by default).

Builds a result as `spacon run` writes it (3-D cells in sections, domains at two alphas, known
labels, a loss history, marker genes, connectivity-prediction metrics, a sparse expression
matrix) in a temporary directory, then times `spacon.report.report(DIR)` -- reading the h5ad
(backed, X untouched), sampling, packing and writing report.html -- and prints its size.

Next to it, the simple baseline: plotly's own `Figure.write_html` of one 3-D scatter of the
same drawn cells with hover text, at one alpha only (no alpha switch, no section maps).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_report.py [--n-cells 250000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def result_like(n_cells: int, n_genes: int, n_sections: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    section = np.sort(rng.integers(0, n_sections, n_cells))
    # an ellipsoidal brain: x, y in each section, z = section position (micrometres)
    t, r = rng.uniform(0, 2 * np.pi, n_cells), np.sqrt(rng.uniform(0, 1, n_cells))
    shrink = np.sqrt(1 - ((section - n_sections / 2) / (0.55 * n_sections)) ** 2)
    xyz = np.column_stack([5000 * r * np.cos(t) * shrink, 3500 * r * np.sin(t) * shrink,
                           100.0 * section])

    def partition(k):  # spatially coherent domains: nearest of k random centres
        centres = xyz[rng.choice(n_cells, k, replace=False)]
        best = np.zeros(n_cells, dtype=np.int64)
        dist = np.full(n_cells, np.inf)
        for i, c in enumerate(centres):
            d = ((xyz - c) ** 2).sum(1)
            best[d < dist], dist = i, np.minimum(dist, d)
        return pd.Categorical(best.astype(str))

    x = sp.random(n_cells, n_genes, density=0.05, format="csr", dtype=np.float32,
                  random_state=seed)
    adata = ad.AnnData(x)
    adata.obs_names = [f"cell{i}" for i in range(n_cells)]
    adata.var_names = [f"gene{i}" for i in range(n_genes)]
    adata.obsm["spatial"] = xyz
    adata.obs["section"] = pd.Categorical([f"s{s:03d}" for s in section], ordered=True)
    adata.obs["region"] = partition(60)
    adata.obs["cell_type"] = pd.Categorical(rng.integers(0, 12, n_cells).astype(str))
    adata.obs["spacon_domain_alpha0"] = partition(30)
    adata.obs["spacon_domain_alpha1"] = partition(8)
    adata.obs["spacon_domain"] = adata.obs["spacon_domain_alpha0"]
    adata.uns["spacon"] = {"loss_history": np.linspace(3, 1, 20)}
    adata.uns["spacon_markers"] = {"spacon_domain_alpha0": pd.DataFrame(
        {"domain": np.repeat(np.arange(30).astype(str), 10), "rank": np.tile(np.arange(1, 11), 30),
         "gene": [f"gene{g}" for g in rng.integers(0, n_genes, 300)],
         "coefficient": rng.uniform(0, 1, 300)})}
    adata.uns["spacon_connectivity_prediction"] = {"metrics": {
        "spacon": {"pearson_r": 0.6, "auroc": 0.8}, "position": {"pearson_r": 0.5, "auroc": 0.7}}}
    summary = {"parameters": {"section_key": "section", "spatial_key": "spatial"},
               "domain_keys": {"0": "spacon_domain_alpha0", "1": "spacon_domain_alpha1"},
               "loss_history": list(np.linspace(3, 1, 20)), "timings_seconds": {"training": 1.0},
               "versions": {"spacon": "bench"}}
    return adata, summary


def plotly_baseline(adata, drawn, path: Path) -> None:
    import plotly.graph_objects as go

    xyz = adata.obsm["spatial"][drawn]
    obs = adata.obs.iloc[drawn]
    text = ("cell " + obs.index.astype(str) + "<br>section: " + obs["section"].astype(str)
            + "<br>domain: " + obs["spacon_domain_alpha0"].astype(str)
            + "<br>region: " + obs["region"].astype(str))
    fig = go.Figure(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers",
                                 text=text, marker={"size": 1.5, "color": obs[
                                     "spacon_domain_alpha0"].cat.codes}))
    fig.write_html(path, include_plotlyjs=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=250_000)
    parser.add_argument("--n-genes", type=int, default=500)
    parser.add_argument("--n-sections", type=int, default=60)
    parser.add_argument("--max-points", type=int, default=200_000)
    args = parser.parse_args()

    from spacon.report import report, sample_per_domain

    adata, summary = result_like(args.n_cells, args.n_genes, args.n_sections)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        adata.write_h5ad(out / "result.h5ad")
        (out / "summary.json").write_text(json.dumps(summary))
        start = time.perf_counter()
        path = report(out, max_points=args.max_points)
        seconds = time.perf_counter() - start
        size = path.stat().st_size
        drawn = sample_per_domain(adata.obs["spacon_domain_alpha0"].cat.codes.to_numpy(),
                                  args.max_points)
        start = time.perf_counter()
        plotly_baseline(adata, drawn, out / "baseline.html")
        base_seconds = time.perf_counter() - start
        base_size = (out / "baseline.html").stat().st_size
    print(f"result: {args.n_cells:,} cells, {args.n_sections} sections, 2 alphas; "
          f"at most {args.max_points:,} cells drawn")
    print(f"{'':44}{'seconds':>9}{'MB':>9}")
    print(f"{'spacon report (read h5ad + write page)':44}{seconds:>9.1f}{size / 1e6:>9.1f}")
    print(f"{'plotly write_html, one alpha (baseline)':44}{base_seconds:>9.1f}{base_size / 1e6:>9.1f}")


if __name__ == "__main__":
    main()
