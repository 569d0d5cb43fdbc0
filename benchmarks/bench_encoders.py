"""Do SpaCon's learned encoders beat plain graph smoothing? True-k ARI on five tissues.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_encoders.py [--data /work/shared/data]
          [--tissues brain slice starmap human mob] [--seeds 0] [--variants default]
          [--json out.json]

Every domain call is the same: :func:`spacon.tl.domains` with the true number of domains
(``n_domains=k``: the default's domain tree of Gaussian mixtures with one shared covariance,
cut at ``k``; a mixture with ``k`` components where the tree has fewer than ``k`` leaves).
Rows per tissue:

* ``spacon <variant>``: the model trained and embedded (``default``: the package's defaults;
  other variants are the training recipes of ``benchmarks/_encoder_variants.py``);
* ``smoothing best``: the best of :func:`spacon.tl.smoothed_expression` over 1-3 hops of the
  10/20/30-nearest-neighbour spatial graphs and of the graph SpaCon trains on (alpha 0), or
  over 1-3 hops of the connectome (alpha 1); every grid point is printed with ``--grid``;
* ``smoothing default``: 30 expression PCs over 3 hops of the graph the SpaCon row used
  (``tl.smoothed_expression``'s defaults);
* ``multispati``: ``spacon run --encoder smoothing --components multispati --n-hops 2``: the
  30 components of the expression that vary most smoothly over that graph
  (``tl.spatial_pca``), averaged over 2 hops; ``--grid`` prints 1-3 hops;
* ``expression``: 30 expression PCs alone.

After the means over seeds, a table of what ``spacon run`` uses for each kind of input
(``--encoder auto``: SpaCon with a connectome, the smoothing encoder without) against the other
encoder it offers.

Tissues:

* ``brain``: ``spacon.datasets.synthetic_brain()`` defaults (as ``spacon demo``): regions at
  alpha 0 from ``X_spacon_spa``, modules at alpha 1 from ``X_spacon_con``;
* ``slice``: ``spacon.datasets.layered_slice()`` (4,000 cells, 7 curved layers, 6 mixed cell
  types, no connectome): layers, spatial encoder alone;
* ``starmap``: the three STARmap mPFC slices (4 layers), spatial encoder alone;
* ``mob``: the mouse olfactory bulb, Spatial Transcriptomics (Stahl et al. 2016, replicate
  11; 260 labelled spots of 262, 5 concentric layers), the 10-nearest-neighbour graph
  ``spacon run`` builds by default, spatial encoder alone;
* ``human``: 66 Desikan-Killiany regions (AHBA expression; ``_human.py``), 6 nearest
  neighbours as in ``bench_real_data.py``, spatial encoder alone; the truth is the six lobes of
  the standard Desikan-Killiany lobe grouping (``LOBES`` below, chosen before the first run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import spacon
from spacon import _keys

KNN_GRID = (10, 20, 30)
HOP_GRID = (1, 2, 3)
MULTISPATI_HOPS = 2  # its column (6 tissues x 3 seeds, 1-3 hops: 0.697, 0.689, 0.680)

LOBES = {
    "frontal": ["superiorfrontal", "rostralmiddlefrontal", "caudalmiddlefrontal",
                "parsopercularis", "parstriangularis", "parsorbitalis", "lateralorbitofrontal",
                "medialorbitofrontal", "precentral", "paracentral", "frontalpole"],
    "parietal": ["superiorparietal", "inferiorparietal", "supramarginal", "postcentral",
                 "precuneus"],
    "temporal": ["superiortemporal", "middletemporal", "inferiortemporal", "bankssts",
                 "fusiform", "transversetemporal", "entorhinal", "temporalpole",
                 "parahippocampal"],
    "occipital": ["lateraloccipital", "lingual", "cuneus", "pericalcarine"],
    "cingulate": ["rostralanteriorcingulate", "caudalanteriorcingulate", "posteriorcingulate",
                  "isthmuscingulate"],
    "insula": ["insula"],
}


class Case:
    """One scored task: data with graphs, the truth, and how to build k-NN spatial graphs."""

    def __init__(self, name, adata, truth, alpha, knn_graph, connectome, spacon_kwargs=None):
        self.name, self.adata, self.truth, self.alpha = name, adata, np.asarray(truth), alpha
        self.k = len(np.unique(self.truth))
        self.knn_graph = knn_graph  # knn_graph(adata, k, key) writes a spatial graph
        self.connectome = connectome
        self.spacon_kwargs = spacon_kwargs or {}


def ari(adata, rep: str, truth, k: int, seed: int) -> float:
    spacon.tl.domains(adata, n_domains=k, use_rep=rep, seed=seed, key_added="_bench_domain")
    return round(spacon.tl.score(truth, adata.obs["_bench_domain"])["ari"], 3)


def smoothing_rows(case: Case, seed: int, knn_grid=(None, *KNN_GRID)) -> dict:
    """Every grid point of the smoothing baseline, its best, the run default, expression.

    ``knn_grid``: the spatial graphs tried, ``None`` for the graph SpaCon trains on.
    """
    a = case.adata
    grid = {}
    if case.alpha == 0:
        for knn in knn_grid:
            key = _keys.SPATIAL_GRAPH if knn is None else f"bench_knn{knn}"
            if _keys.connectivities(key) not in a.obsp:
                case.knn_graph(a, knn, key)
            for hops in HOP_GRID:
                spacon.tl.smoothed_expression(a, graph="spatial", n_hops=hops, spatial_key=key,
                                              seed=seed, key_added="X_bench")
                where = "spacon graph" if knn is None else f"{knn} nn"
                grid[f"{where}, {hops} hop"] = ari(a, "X_bench", case.truth, case.k, seed)
    else:
        for hops in HOP_GRID:
            spacon.tl.smoothed_expression(a, graph="connectome", n_hops=hops, seed=seed,
                                          key_added="X_bench")
            grid[f"connectome, {hops} hop"] = ari(a, "X_bench", case.truth, case.k, seed)
    best = max(grid, key=grid.get)
    graph = "spatial" if case.alpha == 0 else "connectome"
    multispati = {}  # the components that vary most smoothly over the graph, then averaged
    for hops in HOP_GRID:
        spacon.tl.smoothed_expression(a, graph=graph, n_hops=hops, components="multispati",
                                      seed=seed, key_added="X_bench")
        multispati[f"{hops} hop"] = ari(a, "X_bench", case.truth, case.k, seed)
    spacon.tl.smoothed_expression(a, graph=graph, seed=seed, key_added="X_bench")
    default = ari(a, "X_bench", case.truth, case.k, seed)
    spacon.tl.smoothed_expression(a, graph="spatial", n_hops=0, seed=seed, key_added="X_bench")
    expression = ari(a, "X_bench", case.truth, case.k, seed)
    return {"grid": grid, "best": grid[best], "best_at": best, "default": default,
            "expression": expression, "multispati grid": multispati,
            "multispati": multispati[f"{MULTISPATI_HOPS} hop"]}


def train_spacon(adata, connectome: bool, variant: str, seed: int, **kwargs):
    """Train and embed; returns the wall and CPU seconds taken and the train parameters."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    if variant == "default":
        model = spacon.SpaCon(adata, connectome_key=_keys.CONNECTOME_GRAPH if connectome
                              else None, seed=seed, **kwargs)
        model.train(progress=False, seed=seed)
        model.embed()
        params = model.train_params
    else:
        from _encoder_variants import train_variant

        params = train_variant(adata, variant, connectome=connectome, seed=seed)
    return (round(time.perf_counter() - t0, 1), round(time.process_time() - cpu0, 1),
            params)


def brain_cases(root, seed):
    adata, conn = spacon.datasets.synthetic_brain(seed=seed)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)

    def knn_graph(a, k, key):
        spacon.pp.spatial_graph(a, n_neighbors=k, section_key="section",
                                z_radius=info["suggested_z_radius"], key_added=key)

    return [Case("brain regions (alpha 0)", adata, adata.obs["region"], 0.0, knn_graph, True),
            Case("brain modules (alpha 1)", adata, adata.obs["module"], 1.0, knn_graph, True)]


def _knn(a, k, key):
    spacon.pp.spatial_graph(a, n_neighbors=k, key_added=key)


def slice_cases(root, seed):
    adata = spacon.datasets.layered_slice(seed=seed)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    return [Case("layered slice (layers)", adata, adata.obs["layer"], 0.0, _knn, False)]


def starmap_cases(root, seed):
    import anndata as ad

    cases = []
    for path in sorted((root / "starmap_mpfc_bass").glob("starmap_mpfc_*.h5ad")):
        adata = ad.read_h5ad(path)
        spacon.pp.normalize(adata)
        spacon.pp.spatial_graph(adata, n_neighbors=10)
        name = path.stem.replace("starmap_mpfc_", "STARmap ")
        cases.append(Case(f"{name} (layers)", adata, adata.obs["z"].astype(str), 0.0, _knn,
                          False))
    if not cases:
        print(f"STARmap: no starmap_mpfc_*.h5ad under {root / 'starmap_mpfc_bass'}; skipped")
    return cases


def human_cases(root, seed):
    if not (root / "enigma_hcp_ahba").is_dir():
        print(f"human: {root / 'enigma_hcp_ahba'} is missing; skipped")
        return []
    from _human import human_regions

    adata, _ = human_regions(root)
    lobe_of = {r: lobe for lobe, regions in LOBES.items() for r in regions}
    truth = [lobe_of[name[2:]] for name in adata.obs_names]
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    return [Case("human regions (lobes)", adata, truth, 0.0, _knn, False,
                 {"hidden_dims": (64, 32, 8)})]


def mob_cases(root, seed):
    import anndata as ad

    path = root / "mouse_olfactory_bulb_st_meringue" / "mOB_stahl2016_rep11.h5ad"
    if not path.exists():
        print(f"mouse olfactory bulb: {path} is missing; skipped")
        return []
    adata = ad.read_h5ad(path)
    adata = adata[adata.obs["layer"].notna()].copy()  # 2 of 262 spots carry no layer
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)  # as spacon run builds it by default
    return [Case("mouse olfactory bulb (layers)", adata, adata.obs["layer"].astype(str), 0.0,
                 _knn, False)]


TISSUES = {"brain": brain_cases, "slice": slice_cases, "starmap": starmap_cases,
           "human": human_cases, "mob": mob_cases}


def print_table(rows: list[dict], grid: bool = False) -> None:
    """The table of true-k ARIs: one line per tissue and seed; SpaCon variants as columns."""
    variants = list(dict.fromkeys(k[len("spacon "):] for r in rows for k in r
                                  if k.startswith("spacon ")))
    print("\nTrue-k ARI (GMM, shared covariance, true number of domains); in brackets the CPU "
          "seconds of training and embedding (one thread)")
    for i, v in enumerate(variants):
        print(f"  spacon {i}: {v}")
    head = "".join(f"{f'spacon {i}':>20}" for i in range(len(variants)))
    print(f"{'tissue':<40}{'seed':>5}{head}{'smoothing best':>16}  {'(at)':<22}"
          f"{'smooth default':>15}{'multispati':>11}{'expression':>12}")
    nan = float("nan")
    for r in rows:
        cells = "".join(f"{r.get(f'spacon {v}', nan):>10.3f} ({r.get(f'cpu seconds {v}', nan):>4.0f} s)"
                        for v in variants)
        print(f"{r['case']:<40}{r['seed']:>5}{cells}{r.get('best', nan):>16.3f}  "
              f"{r.get('best_at', ''):<22}{r.get('default', nan):>15.3f}"
              f"{r.get('multispati', nan):>11.3f}{r.get('expression', nan):>12.3f}")
        if grid and "grid" in r:
            print("    " + ", ".join(f"{k}: {v:.3f}" for k, v in r["grid"].items()))
            print("    multispati: " + ", ".join(
                f"{k}: {v:.3f}" for k, v in r.get("multispati grid", {}).items()))
    print_means(rows, variants)
    print_defaults(rows)


def print_defaults(rows: list[dict]) -> None:
    """What ``spacon run`` uses for each kind of input (``--encoder auto``) against the other
    encoder it offers, mean true-k ARI over seeds: with a connectome SpaCon trains (the other:
    ``--encoder smoothing``, 30 PCs over 3 hops of the same graph); without one the smoothing
    encoder (the other: ``--encoder spacon``, the trained spatial encoder alone).
    """
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        if "spacon default" in r and "default" in r:
            by_case.setdefault(r["case"], []).append(r)
    if not by_case:
        return
    print("\nspacon run's default encoder (--encoder auto) against the other one, mean true-k "
          "ARI over seeds")
    print(f"{'tissue':<40}{'seeds':>6}  {'input':<14}{'auto uses':<11}{'auto':>7}{'other':>7}"
          f"{'auto better':>13}")
    for case, rs in by_case.items():
        # runs saved before rows recorded it: the brain is the one tissue with a connectome
        connectome = rs[0].get("connectome", case.startswith("brain"))
        trained = float(np.mean([r["spacon default"] for r in rs]))
        smoothed = float(np.mean([r["default"] for r in rs]))
        auto, other = (trained, smoothed) if connectome else (smoothed, trained)
        verdict = "tie" if abs(auto - other) < 0.005 else ("yes" if auto > other else "NO")
        print(f"{case:<40}{len(rs):>6}  {'connectome' if connectome else 'spatial only':<14}"
              f"{'spacon' if connectome else 'smoothing':<11}{auto:>7.3f}{other:>7.3f}"
              f"{verdict:>13}")


def print_means(rows: list[dict], variants: list[str]) -> None:
    """Per tissue, the mean over seeds, the smoothing grid's best point chosen on its mean.

    One seed's "best smoothing" is the maximum of 12 noisy ARIs (one mixture fit each), so it
    flatters the baseline; the best grid point by its mean over seeds does not.
    """
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    if all(len(rs) < 2 for rs in by_case.values()):
        return
    print("\nMean over seeds (range in brackets); best smoothing: the grid point with the best "
          "mean")
    head = "".join(f"{f'spacon {i}':>22}" for i in range(len(variants)))
    print(f"{'tissue':<40}{'seeds':>6}{head}{'best smoothing':>22}  {'(at)':<22}"
          f"{'per-seed best':>14}{'smooth default':>15}{'multispati':>22}{'expression':>11}")

    def mean(values):
        n = len(values)
        values = [v for v in values if v == v]
        if not values:
            return "n/a"
        some = "" if len(values) == n else f" [{len(values)}]"  # seeds that have the row
        return f"{np.mean(values):.3f} ({min(values):.2f}-{max(values):.2f}){some}"

    for case, rs in by_case.items():
        cells = "".join(f"{mean([r.get(f'spacon {v}', np.nan) for r in rs]):>22}"
                        for v in variants)
        best = per_seed = default = expression = "n/a"
        multispati = mean([r.get("multispati", np.nan) for r in rs])
        at = ""
        if all("grid" in r for r in rs):
            points = [p for p in rs[0]["grid"] if all(p in r["grid"] for r in rs)]
            at = max(points, key=lambda p: np.mean([r["grid"][p] for r in rs]))
            best = mean([r["grid"][at] for r in rs])
            per_seed = f"{np.mean([r['best'] for r in rs]):.3f}"
            default = f"{np.mean([r['default'] for r in rs]):.3f}"
            expression = f"{np.mean([r['expression'] for r in rs]):.3f}"
        print(f"{case:<40}{len(rs):>6}{cells}{best:>22}  {at:<22}{per_seed:>14}{default:>15}"
              f"{multispati:>22}{expression:>11}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data", help="folder of the shared data sets")
    p.add_argument("--tissues", nargs="+", default=list(TISSUES), choices=list(TISSUES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--knn", type=int, nargs="+", default=[0, *KNN_GRID],
                   help="spatial graphs of the smoothing grid: neighbours, 0 for the graph "
                   "SpaCon trains on")
    p.add_argument("--variants", nargs="+", default=["default"],
                   help="spacon training recipes: default, or names in _encoder_variants.py; "
                   "none: the smoothing baselines alone")
    p.add_argument("--grid", action="store_true", help="print every smoothing grid point")
    p.add_argument("--json", default=None)
    p.add_argument("--no-baselines", action="store_true",
                   help="SpaCon rows only (to --combine with a run that has the baselines)")
    p.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                   help="print one table from the --json files of runs made in parallel")
    args = p.parse_args()
    if args.combine:
        merged: dict = {}  # runs of other variants on the same case and seed add columns
        for f in args.combine:
            for r in json.loads(Path(f).read_text()):
                merged.setdefault((r["case"], r["seed"]), {}).update(r)
        rows = list(merged.values())
        print_table(rows, args.grid)
        return
    root = Path(args.data)
    rows = []
    for tissue in args.tissues:
        for seed in args.seeds:
            cases = TISSUES[tissue](root, seed)
            trained = {}
            for case in cases:
                row = {"case": case.name, "seed": seed, "k": case.k,
                       "connectome": bool(case.connectome)}
                if not args.no_baselines:
                    row.update(smoothing_rows(case, seed, [k or None for k in args.knn]))
                for variant in [v for v in args.variants if v != "none"]:
                    if variant != "default" and case.alpha != 0:
                        # the recipes train the spatial encoder alone
                        for key in ("spacon", "seconds", "cpu seconds"):
                            row[f"{key} {variant}"] = np.nan
                        continue
                    # the brain's two cases share one data set: one training serves both alphas
                    run = (id(case.adata), variant)
                    if run not in trained:
                        trained[run] = train_spacon(case.adata, case.connectome, variant, seed,
                                                    **case.spacon_kwargs)
                    spacon.tl.fuse(case.adata, case.alpha, key_added="X_bench_spacon")
                    row[f"spacon {variant}"] = ari(case.adata, "X_bench_spacon", case.truth,
                                                   case.k, seed)
                    row[f"seconds {variant}"], row[f"cpu seconds {variant}"] = trained[run][:2]
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    if not args.no_baselines:
        print_table(rows, args.grid)


if __name__ == "__main__":
    main()
