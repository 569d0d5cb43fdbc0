"""How often ``tl.coupling`` calls coupling significant where there is none: its false positives.

Run:  python benchmarks/coupling_null_calibration.py [--data ../shared/data] [--sims 60]
          [--n-perm 200] [--widths 10 40] [--connectome FC SC]

Expression is simulated on the real geometry of the human cortex data (``enigma_hcp_ahba``:
the fsaverage5 centroids of 66 Desikan-Killiany regions, both hemispheres) independently of
the real HCP connectome, so every "significant" coupling is a false positive and, at
p < 0.05, should happen in about 5 % of the simulations. Three kinds of maps, 40 genes each,
at each ``--widths`` (mm, the spatial scale):

- ``field``: every gene its own stationary Gaussian random field, exponential covariance
  with range ``width`` and a 10 % nugget (the maps Moran spectral randomisation assumes);
- ``symmetric field``: the same on coordinates folded at the midline (``|x|``), so homologous
  regions of the two hemispheres are alike, as in the Allen atlas;
- ``few programs``: every gene a random mixture of the same 10 smooth programs (Gaussian
  bumps of width ``width`` around random regions) plus 10 % noise: strongly co-expressed
  genes, as real expression is.

Printed per kind, width and connectome (FC: all pairs; SC: connected pairs): the share of
simulations with ``p_spatial``, ``p_partial_spatial`` and ``p_mantel`` below 0.05, with its
binomial standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

N_GENES = 40
N_PROGRAMS = 10
NOISE = 0.1


def maps(kind: str, coords: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    """``(n_regions, N_GENES)`` expression independent of any connectome."""
    from scipy.spatial.distance import cdist

    n = len(coords)
    if kind == "few programs":
        centres = coords[rng.choice(n, N_PROGRAMS, replace=False)]
        programs = np.exp(-cdist(coords, centres) ** 2 / (2 * width**2))
        out = programs @ rng.normal(size=(N_PROGRAMS, N_GENES))
        return out + NOISE * out.std() * rng.normal(size=out.shape)
    space = coords.copy()
    if kind == "symmetric field":
        space[:, 0] = np.abs(space[:, 0])
    covariance = (1 - NOISE) * np.exp(-cdist(space, space) / width) + NOISE * np.eye(n)
    return np.linalg.cholesky(covariance + 1e-9 * np.eye(n)) @ rng.normal(size=(n, N_GENES))


def main() -> None:
    import anndata as ad
    from _human import human_regions

    import spacon

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared"
                                         / "data"))
    p.add_argument("--sims", type=int, default=60)
    p.add_argument("--n-perm", type=int, default=200)
    p.add_argument("--widths", type=float, nargs="+", default=[10.0, 40.0])
    p.add_argument("--connectome", nargs="+", default=["FC", "SC"], choices=["FC", "SC"])
    p.add_argument("--kinds", nargs="+", default=["field", "symmetric field", "few programs"])
    p.add_argument("--json", default=None)
    args = p.parse_args()

    regions, matrices = human_regions(Path(args.data))
    coords = np.asarray(regions.obsm["spatial"], float)
    rows = []
    print(f"{'maps':<16}{'width mm':>9}{'conn':>5}  false positives at p < 0.05 over "
          f"{args.sims} simulations (binomial SE)")
    for kind in args.kinds:
        for width in args.widths:
            for name in args.connectome:
                start = time.perf_counter()
                rng = np.random.default_rng(0)
                p_values = {"p_spatial": [], "p_partial_spatial": [], "p_mantel": []}
                for sim in range(args.sims):
                    x = maps(kind, coords, width, rng)
                    adata = ad.AnnData((x - x.min()).astype(np.float32), obs=regions.obs.copy())
                    adata.obsm["spatial"] = coords
                    table = spacon.tl.coupling(
                        adata, matrices[name], n_perm=args.n_perm, seed=sim,
                        pairs="connected" if name == "SC" else "all")
                    for key in p_values:
                        p_values[key].append(float(table.loc[0, key]))
                rate = {k: float(np.mean(np.asarray(v) < 0.05)) for k, v in p_values.items()}
                se = {k: float(np.sqrt(r * (1 - r) / args.sims)) for k, r in rate.items()}
                rows.append({"maps": kind, "width": width, "connectome": name,
                             "sims": args.sims, "n_perm": args.n_perm, "rate": rate, "se": se,
                             "seconds": round(time.perf_counter() - start, 1)})
                print(f"{kind:<16}{width:>9g}{name:>5}  " + "  ".join(
                    f"{k} {rate[k]:.2f} ({se[k]:.2f})" for k in p_values), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
