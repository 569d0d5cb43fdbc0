"""Boundary sharpness of mixture partitions against the truth: a probe for issue 13, rejected.

Run:  OMP_NUM_THREADS=1 python benchmarks/domain_boundary_sharpness.py {slice,starmap,brain}
      (starmap reads DATA below, ../shared/data/starmap_mpfc_bass; brain reads RESULT, the
      result of ``spacon demo --out spacon_demo``)

For every number of components k, one tied mixture (3 starts, seed 0) on the embedding that
``bench_domains.py`` judges (the smoothing encoder for the slices and STARmap, SpaCon's alpha-0
embedding of the demo brain), and for each pair of adjacent domains with 20 or more spatial
edges between them: the mean change of the embedding, projected on the line between the two
domains' means, across their boundary edges over the same within their edges. A real boundary
(a step) should change more across than within; a split along a gradient should not. Printed:
ARI against the truth, the smallest ratio and the boundary-weighted mean ratio.

Measured 28 Nov (one machine): the weighted mean peaks at the true 4 layers on STARmap BZ5 and
BZ14 (4.05 and 4.65), but at 2 on BZ9, keeps rising with k on the 7-layer slices drawn with
seeds 0-2 (no peak at 7) and is flat on the demo brain (4.2-4.8 for k = 3..19, its highest at
8 of 16 regions); the smallest ratio falls as k grows everywhere. Not a count rule.
"""
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))

from bench_domains import spatial_only  # noqa: E402

import spacon  # noqa: E402
from spacon.tl._domain_selection import adjusted_rand, assign, mixture  # noqa: E402

DATA = Path(__file__).parents[1] / ".." / "shared" / "data" / "starmap_mpfc_bass"
RESULT = "spacon_demo/result.h5ad"
CACHE = Path("/tmp/spacon_sharpness")
MIN_EDGES = 20


def sharpness(z, labels, graph):
    """Smallest and boundary-weighted mean ratio of across- to within-domain change."""
    edges = sp.triu(graph, 1).tocoo()
    i, j = edges.row, edges.col
    li, lj = labels[i], labels[j]
    means = np.array([z[labels == k].mean(0) for k in np.unique(labels)])
    cross = li != lj
    pairs = {}
    for a, b in zip(np.minimum(li[cross], lj[cross]), np.maximum(li[cross], lj[cross])):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    out = []
    for (a, b), n in pairs.items():
        if n < MIN_EDGES:
            continue
        direction = means[a] - means[b]
        p = z @ (direction / np.linalg.norm(direction))
        across = ((li == a) & (lj == b)) | ((li == b) & (lj == a))
        within = ((li == a) & (lj == a)) | ((li == b) & (lj == b))
        ratio = np.abs(p[i[across]] - p[j[across]]).mean() / np.abs(
            p[i[within]] - p[j[within]]).mean()
        out.append((n, ratio))
    if not out:
        return np.nan, np.nan
    n, r = np.array(out).T
    return r.min(), (n * r).sum() / n.sum()


def run(name, adata, rep, truth, k_max):
    z = np.asarray(adata.obsm[rep], dtype=np.float64)
    graph = adata.obsp["spatial_connectivities"]
    graph = ((graph + graph.T) > 0).astype(np.int8)
    y = np.unique(adata.obs[truth].astype(str).values, return_inverse=True)[1]
    print(f"== {name} (true {y.max() + 1})")
    for k in range(2, k_max + 1):
        labels = np.unique(assign(mixture(z, k, 0, 5000, 3), z), return_inverse=True)[1]
        smallest, mean = sharpness(z, labels, graph)
        print(f"k={k:2d} ARI={adjusted_rand(labels, y):.3f} min_r={smallest:.2f} "
              f"mean_r={mean:.2f}")


def main(which: str) -> None:
    if which == "starmap":
        for path in sorted(DATA.glob("starmap_mpfc_*.h5ad")):
            adata = spatial_only(ad.read_h5ad(path), path.stem, CACHE, 0)
            adata.obs["truth"] = adata.obs["z"].astype(str)
            run(path.stem, adata, "X_spacon_spa", "truth", 10)
    elif which == "slice":
        for seed in (0, 1, 2):
            adata = spatial_only(spacon.datasets.layered_slice(seed=seed), "slice", CACHE, seed)
            run(f"slice seed {seed}", adata, "X_spacon_spa", "layer", 10)
    else:
        adata = ad.read_h5ad(RESULT)
        spacon.tl.fuse(adata, 0, key_added="X_alpha0")
        run("demo brain, alpha 0", adata, "X_alpha0", "region", 19)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["slice", "starmap", "brain"],
                        help="simulated 7-layer slices, STARmap mPFC, or the demo brain")
    main(parser.parse_args().which)
