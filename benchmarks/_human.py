"""The human cortex data set (ENIGMA: HCP connectivity + AHBA expression) as regions x genes."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def human_regions(root: Path):
    """66 Desikan-Killiany cortical regions (the two without AHBA samples dropped).

    Returns ``(adata, matrices)``: AHBA expression (1,645 stable genes, scaled, shifted to be
    >= 0) with fsaverage5 centroids in ``obsm['spatial']`` and the hemisphere in ``obs``, and
    ``{"FC": ..., "SC": ...}`` connectivity between the same regions (negatives and the
    diagonal zeroed).
    """
    import anndata as ad
    import pandas as pd

    import spacon

    base = root / "enigma_hcp_ahba"
    labels = pd.read_csv(base / "hcp_connectivity" / "funcLabels_ctx.csv", header=None)
    labels = labels.iloc[0].astype(str).tolist()
    expr = pd.read_csv(base / "ahba" / "allgenes_stable_r0.6.csv").set_index("label")
    expr = expr.loc[[r for r in labels if r in expr.index]].dropna(axis=0, how="any")
    regions = [r for r in labels if r in expr.index]
    keep = [labels.index(r) for r in regions]
    centroids = pd.read_csv(base / "derived_dk68_centroids_fsa5.csv").set_index("region")
    adata = ad.AnnData(expr.loc[regions].to_numpy(np.float32),
                       obs=pd.DataFrame({"hemisphere": [r[0] for r in regions]}, index=regions),
                       var=pd.DataFrame(index=expr.columns))
    adata.obsm["spatial"] = centroids.loc[regions, ["x", "y", "z"]].to_numpy(float)
    adata.X = adata.X - min(0.0, float(adata.X.min()))
    matrices = {}
    for name, file in (("FC", "funcMatrix_ctx.csv"), ("SC", "strucMatrix_ctx.csv")):
        m = pd.read_csv(base / "hcp_connectivity" / file, header=None).to_numpy(float)
        m = np.maximum(m[np.ix_(keep, keep)], 0)
        np.fill_diagonal(m, 0)
        matrices[name] = spacon.io.Connectivity(m, np.array(regions))
    return adata, matrices


def prediction_cases(root: Path):
    """The regions with their spatial graph (6 neighbours), then per connectome ``(kind,
    adata, connectivity, threshold)``: FC keeps its strongest quarter of the positive values,
    SC every connection (the prediction benchmarks' rule)."""
    import spacon

    adata, matrices = human_regions(root)
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    for kind, conn in matrices.items():
        m = conn.matrix.toarray()
        yield kind, adata, conn, float(np.quantile(m[m > 0], 0.75)) if kind == "FC" else None


def export(adata, matrices, folder: Path) -> None:
    """Write the regions as ``human_regions.h5ad`` and ``human_fc.csv`` / ``human_sc.csv``."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(folder / "human_regions.h5ad")
    for name, conn in matrices.items():
        pd.DataFrame(conn.matrix.toarray(), index=conn.labels, columns=conn.labels).to_csv(
            folder / f"human_{name.lower()}.csv")
