"""Transcriptome-connectome coupling on real data, and its calibration on a real connectome.

Run:  python benchmarks/bench_coupling.py [--data ../shared/data] [--n-perm 1000] [--json out.json]

Every row is one call of :func:`spacon.tl.coupling` (Spearman; partial = controlling for
distance; p-values from 1,000 spatial-autocorrelation-preserving surrogates and from free label
shuffles, the Mantel test):

1. Human cortex (``enigma_hcp_ahba``, 66 Desikan-Killiany regions): AHBA co-expression
   (1,645 genes) against HCP functional (FC) and structural (SC) connectivity; overall, per
   hemisphere, and per SpaCon domain (4 domains at alpha = 0.5 of a model trained on the 66
   regions with each region's 10 strongest FC connections as its graph). FC over all pairs,
   SC over connected pairs (SC is sparse).
2. Mouse (``mouse_oh2014_sc_synaptome``): synaptome "co-expression" (densities of 37 synapse
   subtypes, Zhu et al. 2018, 137 regions) against the Oh et al. 2014 tracer connectome
   (p < 0.05), overall and per major division.
3. Calibration on the real tracer connectome: cells simulated in its 213 regions
   (:func:`spacon.datasets.tracer_brain`) with a shared expression program per major division
   (planted coupling: connected regions of one division share genes) and without one (no
   coupling: only region programs, independent of wiring). The test should find the first
   and not the second.

Files that are missing are reported and that part is skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

COLUMNS = ["scope", "n_units", "n_pairs", "r", "p_spatial", "p_mantel", "r_partial",
           "p_partial_spatial"]


def _rows(table) -> list[dict]:
    return [{k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else
                 int(v) if isinstance(v, (np.integer,)) else v) for k, v in row.items()}
            for row in table[COLUMNS].to_dict("records")]


def human(root: Path, n_perm: int, seed: int) -> dict:
    from _human import human_regions

    import spacon

    adata, matrices = human_regions(root)
    # SpaCon domains on the regions: FC graph (10 strongest per region), 4 domains at alpha 0.5
    fitted = adata.copy()
    spacon.pp.spatial_graph(fitted, n_neighbors=6)
    spacon.pp.connectome_graph(fitted, matrices["FC"], top_k=10)
    model = spacon.SpaCon(fitted, hidden_dims=(64, 32, 8), seed=seed)
    model.train(progress=False, seed=seed)
    model.embed()
    spacon.tl.fuse(fitted, 0.5)
    spacon.tl.domains(fitted, n_domains=4, seed=seed, key_added="domain")
    adata.obs["domain"] = ("d" + fitted.obs["domain"].astype(str)).to_numpy()

    out = {"n_regions": adata.n_obs, "n_genes": adata.n_vars,
           "domain_sizes": adata.obs["domain"].value_counts().sort_index().to_dict()}
    for name, conn in matrices.items():
        pairs = "all" if name == "FC" else "connected"
        t0 = time.perf_counter()
        rows = []
        for groupby in (None, "hemisphere", "domain"):
            table = spacon.tl.coupling(adata, conn, groupby=groupby, pairs=pairs,
                                       n_perm=n_perm, seed=seed)
            rows += _rows(table if groupby is None else table.iloc[1:])
        out[name] = {"pairs": pairs, "rows": rows,
                     "seconds": round(time.perf_counter() - t0, 1)}
    return out


def synaptome(root: Path, n_perm: int, seed: int) -> dict:
    import anndata as ad
    import pandas as pd

    import spacon

    base = root / "mouse_oh2014_sc_synaptome"
    conn, regions = spacon.datasets.read_mouse_tracer(base)
    table = pd.read_csv(base / "region_mapping_sc.csv")
    has = table["synaptome_idx"].astype(str) != "[]"
    dens = np.load(base / "synaptome_sc137.npz")["synden"]
    # the file's rows follow the regions sorted by the Allen ontology, not the table's
    # alphabetical order (hansen_synaptome's code/scpt_sc.py indexes its SC by
    # region_mapping[has].sort_values('ontology') beside these rows); until 30 Nov this script
    # took the table's order, pairing each region with another's densities
    names = (table.loc[has].sort_values("ontology", kind="stable")["sc213_acr"]
             .astype(str).to_numpy())
    if len(names) != len(dens):
        raise SystemExit(f"synaptome: {len(names)} mapped regions but {len(dens)} density rows")
    adata = ad.AnnData(dens.astype(np.float32),
                       obs=pd.DataFrame({"division": regions.loc[names, "division"].to_numpy()},
                                        index=names))
    adata.obsm["spatial"] = regions.loc[names, ["z", "y", "x"]].to_numpy(float)
    t0 = time.perf_counter()
    rows = _rows(spacon.tl.coupling(adata, conn, groupby="division", pairs="all",
                                    n_perm=n_perm, seed=seed, min_pairs=30))
    return {"n_regions": adata.n_obs, "n_features": adata.n_vars, "rows": rows,
            "seconds": round(time.perf_counter() - t0, 1)}


def tracer_calibration(root: Path, n_perm: int, seed: int) -> dict:
    import spacon

    conn, regions = spacon.datasets.read_mouse_tracer(root / "mouse_oh2014_sc_synaptome")
    out = {}
    for label, strength in (("division program (planted)", 0.6), ("no shared program", 0.0)):
        adata = spacon.datasets.tracer_brain(conn, regions, division_strength=strength, seed=seed)
        spacon.pp.normalize(adata)
        t0 = time.perf_counter()
        table = spacon.tl.coupling(adata, conn, unit_key="region", pairs="all", n_perm=n_perm,
                                   seed=seed)
        out[label] = {"n_cells": adata.n_obs, "rows": _rows(table),
                      "seconds": round(time.perf_counter() - t0, 1)}
    return out


def _print(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'scope':<28}{'units':>6}{'pairs':>8}{'r':>8}{'p_spat':>8}{'p_mantel':>9}"
          f"{'r_part':>8}{'p_part':>8}")
    for r in rows:
        print(f"{str(r['scope']):<28}{r['n_units']:>6}{r['n_pairs']:>8}{r['r']:>8.3f}"
              f"{r['p_spatial']:>8.3f}{r['p_mantel']:>9.3f}{r['r_partial']:>8.3f}"
              f"{r['p_partial_spatial']:>8.3f}")


def main() -> None:
    from _measure import real_data_parser

    p = real_data_parser(__doc__)
    p.add_argument("--n-perm", type=int, default=1000)
    args = p.parse_args()
    root = Path(args.data)
    results = {}
    for name, fn, folder in (("human_hcp_ahba", human, "enigma_hcp_ahba"),
                             ("mouse_synaptome", synaptome, "mouse_oh2014_sc_synaptome"),
                             ("tracer_calibration", tracer_calibration,
                              "mouse_oh2014_sc_synaptome")):
        if not (root / folder).is_dir():
            print(f"{name}: {root / folder} is missing; skipped")
            continue
        results[name] = fn(root, args.n_perm, args.seed)
    if "human_hcp_ahba" in results:
        h = results["human_hcp_ahba"]
        for c in ("FC", "SC"):
            _print(f"Human cortex: AHBA co-expression vs HCP {c} ({h[c]['pairs']} pairs)",
                   h[c]["rows"])
    if "mouse_synaptome" in results:
        _print("Mouse: synaptome similarity vs Oh 2014 tracer SC",
               results["mouse_synaptome"]["rows"])
    for label, r in results.get("tracer_calibration", {}).items():
        _print(f"Tracer brain (real SC, simulated expression): {label}", r["rows"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
