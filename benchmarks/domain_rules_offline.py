"""Domain-count rules compared offline: score tables gathered once, any rule judged in seconds.

Run:  OMP_NUM_THREADS=1 python benchmarks/domain_rules_offline.py gather
          {brain,starmap,slice,slice4,human} --seeds 0 1 2 [--data /work/shared/data]
          [--tables FOLDER] [--n-runs 8]
      python benchmarks/domain_rules_offline.py judge [--tables FOLDER [FOLDER ...]]
      python benchmarks/domain_rules_offline.py labels {brain,...} --seeds 0 1 2

``gather`` runs the default :func:`spacon.tl.domains` on each case and seed and keeps what
every rule needs: both families' score tables (``uns[key]['selection']``: stability, its
standard error and modularity for each number of domains) and, for each number ``k``, the ARI
against the truth of the mixture with ``k`` components (the labels a rule choosing ``k`` would
give; one fit, where ``bench_domains.py`` takes the mean of five as the reference). Unlike
``bench_domains.py``, the seed also draws new data where a case is simulated: the demo brain
(trained as ``spacon demo`` does, cached under the tables folder), the layered slice and the
4-layer slice (``layered_slice(n_layers=4)``); STARmap's and the human lobes' seed changes the
rule's subsamples and starts only. ``judge`` applies each rule in ``RULES`` to every table of
each folder (one column per folder) and counts the cases that pass issue 13's test (between
half and twice the true number, ARI no more than 0.05 below the mixture with the true number).
It does not model the library's widening of the candidates beyond 20 when a choice lies near
the top.

To rerun the two sets below: ``gather brain --seeds 0 1 2``, ``gather starmap --seeds 0 1 2``
and ``gather slice --seeds 0 1 2`` into one folder (``--tables dev``), ``gather brain --seeds 3
4``, ``gather human --seeds 0 1 2``, ``gather slice --seeds 3 4`` and ``gather slice4 --seeds 0
1`` into another (``--tables held_out``), then ``judge --tables dev held_out``.

Measured (26 Nov). Development tables: seeds 0-2 of the demo brain at alpha 0 and 1, the
three STARmap slices and the layered slice (18). Held-out tables, gathered after the rules
were written down: brain seeds 3-4, the human lobes (seeds 0-2: one data set), slices drawn
with seeds 3-4, and the 4-layer slice (seeds 0-1) (11). Passes, development / held-out: the
default 11 / 9; stability squared x modularity 14 / 8 (it fixes most of STARmap's
over-splitting, but takes 2 domains on two of five 7-layer slices); a 10 % tolerance 13 / 7;
the best score with no tolerance 9 / 9; modularity squared 7 / 9. A rule would replace the
default only by passing more on both sets; none does (a difference of one or two held-out
cases is within the noise of one-fit references). The 7-layer slices drawn with seeds 1 and 2
defeat every rule here: their stability mostly falls as domains are added (0.50-0.60 at the
true 7 layers, whose mixture reaches only ARI 0.47-0.56), while the slices drawn with seeds 3
and 4 choose 8 and 7 domains.

Twice the runs (27 Nov: ``--n-runs 16``, all 29 cases above gathered into one folder, judged
beside the 8-run tables): the default passes 21 of 29 (20 with 8 runs), stability squared x
modularity 22 (22); the 7-layer slices drawn with seeds 0-2 still choose 4, 5 and 3 domains,
STARmap BZ5 still takes 6 at seeds 1-2. Not worth twice the fits.

A tolerance that shrinks with the number of domains (27 Nov, the same 29 cases gathered
again: ``min(5 %, c / (k - 1)^2)``, ``k`` the best-scoring number; with ``k`` equal, separate
domains the ``k``-th adds ``1 / (k - 1)^2`` of the modularity, so a fixed 5 % lets eight
separate blobs lose one, see ``tests/test_domains.py``): ``c = 0.5`` passes 10 / 10, ``c = 1``
11 / 10, against the default's 12 / 10 (development / held out; the brains retrained today
chose 15 or 16 of 16 regions, so both pass more than on 26 Nov). Smaller tolerances take 10
domains on STARmap BZ14 (seed 0) and 6 on BZ9 (seed 1), where the 5 % keeps 3-4 layers; not
adopted.

Only peaks (27 Nov, the same tables): the fewest domains within the margin among the numbers
whose score is at least both neighbours' (a choice on a rising slope is no choice). With the
default margin 12 / 9; with 10 % 14 / 8; with 15 % 15 / 8: it keeps STARmap at 3-4 layers at
every seed, but takes 5 on a 7-layer slice (seed 4) and on the human lobes (seed 0). Not
adopted. Nor more starts per stability run (8 instead of 3, gathered with the constant changed
in a copy of the library): the slices chose 5 / 6 / 3 domains at seeds 0-2, and STARmap went to
6 (BZ5, seeds 0-2), 7 (BZ9 seed 1) and 8 and 10 (BZ14 seeds 0-1; the rest not run): with more
starts, the runs also agree on over-split partitions.

Two changes to the runs themselves (27 Nov, a later session; ``gather ... --stability
median`` and ``--runs blocks``, each case gathered again beside the library's own, ``--cache``
pointing at the trained brains of the sets above; ``judge --tables mean_dev mean_held
median_dev median_held``):

* **The median of the runs' pairwise ARIs** instead of their mean. At STARmap BZ5 (rule seed
  1) one of the 8 four-component runs landed in another optimum and agreed 0.57 with each of
  the others, which agreed 0.95-1.00 among themselves: the mean 0.87, the median 0.96. It
  passes 14 / 9 (development / held out) against the library's 12 / 10 gathered the same day:
  STARmap keeps 3-4 layers at every seed but BZ5 seed 2 (6), the 7-layer slices at seeds
  0-2 still choose 4, 3 and 3, and the human lobes at seed 0 take 5 (ARI 0.41, against 0.48
  for 6). Every rule in ``RULES`` judged on the median tables passes at most 9 held-out cases.
  Not adopted.
* **Runs fitted on spatial blocks**: each run on the cells of a random half of about
  ``n / 150`` k-means blocks of the coordinates (so that two runs do not share smoothed
  noise), on STARmap and the 7-layer slices at seeds 0-2: 5 of 12 pass (the library's 6):
  stability falls to 0.3-0.5 at every number, BZ5 takes 15 and 7 domains, the slices 4, 4 and
  2. Rejected.

``boundary`` prints, for the mixtures with 2-12 components, how much more the embedding jumps
along the spatial edges that cross domains than along all edges. On the 7-layer slices it is
1.7-1.9 at every number (``boundary slice --seeds 0 1 2``): the mixtures' boundaries are as
sharp at 5 components as at 7, so it cannot tell the true number either.

The best lower bound (28 Nov, a new machine: all 24 tables gathered again into one folder, the
olfactory bulb added, ``gather mob --seeds 0 1 2``: its 262 spots, 5 layers, as the README's
recipe with 6 neighbours; the demo brain of seed 0 only): the number whose score less ``c``
standard errors is highest, so that a noisy score counts for less. Passes: the default 13 of
24; ``c = 1`` and ``c = 2`` 12; ``c = 3`` 15; stability squared x modularity 15. A rule whose
passes go down, then up with its constant is fitting these tables: not adopted. No rule passes
the olfactory bulb: 3 hops of smoothing leave its one- or two-spot-thick layers nothing to find
(the mixture with the true 5 reaches ARI 0.15-0.18; every rule takes 11-17 domains or 2).

A charge per doubling (29 Nov, a new machine: 32 tables gathered into one folder, ``gather
brain --seeds 0`` to ``4`` one at a time, ``starmap``, ``human`` and ``mob`` at seeds 0-2,
``slice`` at 0-4, ``slice4`` at 0-1; the brain of seed 0 is ``spacon demo``'s result, linked
as ``brain_seed0/demo``): the score times ``(1 - c) ** log2(k)``, then the fewest domains
within one standard error (at least 0.01) of the best. Passes: the former default (5 %
margin) 19 of 32; ``c`` = 1 % 20, 2-7 % 22 (2-4 % choose alike on every table), 10 % 20, 15 %
18. At 3 % no table that passed with the former default fails, and three more pass (the demo
brain at alpha 0, seeds 0 and 2, and STARmap BZ14 seed 2). Adopted as the library's rule
(``PER_DOUBLING``); the first rule of ``RULES``. Then, on data drawn after the rule was fixed
(``gather slices --seeds 5 6`` and ``gather brains --seeds 5`` into a new folder: slices of
5 and 9 layers, brains of 10 regions / 3 modules and 24 regions / 6 modules): 6 of 8 pass with
the charge and with the former 5 % margin alike (24 regions: 19 domains against 17, both
passing); both 9-layer slices fail with every rule (3 domains; the mixture with the true 9
reaches ARI 0.27-0.34).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BRAINS = [(10, 3), (24, 6)]  # "brains": (regions, modules) of synthetic brains
SLICE_LAYERS = [5, 9]  # "slices": layers of layered slices


def cases(which: str, seed: int, root: Path, tables: Path):
    """(name, adata, embedding key, alpha, truth) of one kind of case."""
    import anndata as ad

    import spacon

    if which == "brains":  # other numbers of regions and modules than the demo brain's
        from bench_domains import demo_brain

        for regions, modules in BRAINS:
            brain = demo_brain(tables / f"brain_{regions}_{modules}_seed{seed}", seed,
                               n_regions=regions, n_modules=modules)
            for alpha in (0, 1):
                spacon.tl.fuse(brain, alpha, key_added=f"X_alpha{alpha}")
            yield f"brain {regions} regions", brain, "X_alpha0", 0.0, brain.obs["region"]
            yield f"brain {modules} modules", brain, "X_alpha1", 1.0, brain.obs["module"]
        return
    if which == "brain":
        from bench_domains import demo_brain

        brain = demo_brain(tables / f"brain_seed{seed}", seed)
        for alpha in (0, 1):
            spacon.tl.fuse(brain, alpha, key_added=f"X_alpha{alpha}")
        yield "brain alpha 0", brain, "X_alpha0", 0.0, brain.obs["region"]
        yield "brain alpha 1", brain, "X_alpha1", 1.0, brain.obs["module"]
        return
    knn = 10  # as spacon run --no-connectivity builds the graph
    if which == "starmap":
        found = [(p.stem.split("_")[3], ad.read_h5ad(p), "z")
                 for p in sorted((root / "starmap_mpfc_bass").glob("starmap_mpfc_*.h5ad"))]
    elif which == "mob":  # 262 spots; the 2 without a layer are left out
        adata = ad.read_h5ad(root / "mouse_olfactory_bulb_st_meringue" / "mOB_stahl2016_rep11.h5ad")
        adata = adata[adata.obs["layer"].notna()].copy()
        found, knn = [("olfactory bulb", adata, "layer")], 6  # as the README's recipe
    elif which == "slice4":
        found = [("4-layer slice", spacon.datasets.layered_slice(n_layers=4, seed=seed), "layer")]
    elif which == "slices":  # other numbers of layers
        found = [(f"{n}-layer slice", spacon.datasets.layered_slice(n_layers=n, seed=seed),
                  "layer") for n in SLICE_LAYERS]
    elif which == "human":
        from _human import human_regions
        from bench_encoders import LOBES

        adata, _ = human_regions(root)
        lobe_of = {r: lobe for lobe, regions in LOBES.items() for r in regions}
        adata.obs["lobe"] = [lobe_of[name[2:]] for name in adata.obs_names]
        found, knn = [("human lobes", adata, "lobe")], 6  # as bench_encoders.py
    else:
        found = [("layered slice", spacon.datasets.layered_slice(seed=seed), "layer")]
    for name, adata, truth in found:
        # as spacon run --no-connectivity: the smoothing encoder, fused
        if which != "human":  # human_regions gives normalised expression
            spacon.pp.normalize(adata)
        spacon.pp.spatial_graph(adata, n_neighbors=knn)
        spacon.tl.smoothed_expression(adata, graph="spatial", seed=seed, key_added="X_spacon_spa")
        spacon.tl.fuse(adata, 0)
        yield name, adata, "X_spacon", 0.0, adata.obs[truth]


def gather(which: str, seeds: list[int], root: Path, tables: Path, n_runs: int = 8,
           stability: str = "mean", runs: str = "cells", cache: Path | None = None) -> None:
    import spacon
    from spacon.tl._domain_selection import assign, mixture
    from spacon.tl._domains import merge_near_identical

    tables.mkdir(parents=True, exist_ok=True)
    variant = _variant(stability, runs)
    out = []
    for seed in seeds:
        for name, adata, rep, alpha, truth in cases(which, seed, root, cache or tables):
            truth = truth.astype(str).values
            if runs == "blocks":
                _BLOCKS["of_cell"] = spatial_blocks(np.asarray(adata.obsm["spatial"], float))
            # a variant patches this process's library: its runs cannot go to worker processes
            spacon.tl.domains(adata, use_rep=rep, alpha=alpha, seed=seed, n_runs=n_runs,
                              key_added="d", **({"n_jobs": 1} if variant else {}))
            selection = adata.uns["d"]["selection"]
            families = {f: {k: np.asarray(v).tolist() for k, v in selection[f].items()}
                        for f in ("mixture", "tree")}
            group, points = merge_near_identical(np.asarray(adata.obsm[rep], float), 0.02)
            aris = [spacon.tl.score(truth, assign(mixture(points, k, seed, 20_000, group=group),
                                                  points)[group])["ari"]
                    for k in range(1, len(families["mixture"]["k"]) + 1)]
            out.append({"case": name, "seed": seed, "true_k": len(set(truth)), "n_runs": n_runs,
                        "variant": variant,
                        "chosen": int(selection["chosen"]), "families": families,
                        "mixture_ari": aris})
            print(f"{name} seed {seed}: chose {selection['chosen']}; mixture ARI by k "
                  + " ".join(f"{a:.2f}" for a in aris), flush=True)
    path = tables / f"{which}_{'_'.join(map(str, seeds))}.json"
    path.write_text(json.dumps(out))
    print(f"wrote {path}")


_BLOCKS: dict = {}
BLOCK_CELLS = 150  # cells per spatial block (several times a 3-hop smoothing neighbourhood)


def _variant(stability: str, runs: str) -> str:
    """Patch the library's stability runs for a variant (see the docstring); its name."""
    from spacon.tl import _domain_selection as ds

    if stability == "median":
        ds._agreement = _median_agreement
    if runs == "blocks":
        ds._one_run = _block_run
    return "; ".join(v for v, default in ((f"stability {stability}", stability == "mean"),
                                          (f"runs {runs}", runs == "cells")) if not default)


def _median_agreement(partitions: list, modularities: list[dict]):
    """``_domain_selection._agreement`` with the median of the runs' pairwise ARIs."""
    from spacon.tl import _domain_selection as ds

    n = len(partitions)
    ari = [ds.adjusted_rand(partitions[i], partitions[j]) for i in range(n)
           for j in range(i + 1, n)]
    return (float(np.median(ari)), float(np.std(ari) / np.sqrt(len(ari))),
            {name: float(np.mean([m[name] for m in modularities])) for name in modularities[0]})


def spatial_blocks(xy: np.ndarray) -> np.ndarray:
    """Each cell's spatial block: k-means of the coordinates, about ``BLOCK_CELLS`` a block."""
    from sklearn.cluster import KMeans

    return KMeans(max(8, len(xy) // BLOCK_CELLS), n_init=1, random_state=0).fit_predict(xy)


def _block_run(points, group, evaluation, graphs, k, seed, tree):
    """``_domain_selection._one_run`` fitted on the cells of a random half of the spatial
    blocks, so that two runs share no smoothed noise where they do not overlap.
    """
    from spacon.tl import _domain_selection as ds

    rng = np.random.default_rng(seed)
    blocks = _BLOCKS["of_cell"]
    keep = rng.permutation(blocks.max() + 1)[: max(1, (blocks.max() + 1) // 2)]
    cells = np.flatnonzero(np.isin(blocks, keep))
    size = ds._run_size(len(group), k)
    if len(cells) > size:
        cells = np.sort(rng.choice(cells, size, replace=False))
    gmm = ds.tied_mixture_class()(k, covariance_type="tied", random_state=seed,
                                  n_init=ds.RUN_INITS).fit(points[group[cells]])
    labels = ds.assign(gmm, points)
    if tree:
        merged = ds.merge_by_entropy(gmm.predict_proba(points[evaluation]), ds.MIN_DOMAIN_SHARE)
        return merged, labels[evaluation], {
            name: ds.group_graph(unit_in, cell_unit, labels[group], merged.n_leaves)
            for name, _, unit_in, cell_unit in graphs}
    return labels[evaluation], {name: ds.modularity_of_merge(
        ds.group_graph(unit_in, cell_unit, labels[group], k), np.arange(k))
        for name, _, unit_in, cell_unit in graphs}


def boundary(which: str, seeds: list[int], root: Path, tables: Path) -> None:
    """Per number of components: ARI, the share of spatial edges crossing domains, and the
    embedding's squared jumps along those edges against all edges' (``ratio``)."""
    import spacon
    from spacon.tl._domain_selection import assign, mixture

    for seed in seeds:
        for name, adata, rep, _, truth in cases(which, seed, root, tables):
            z = np.asarray(adata.obsm[rep], float)
            g = adata.obsp["spatial_connectivities"].tocoo()
            i, j = g.row[g.row < g.col], g.col[g.row < g.col]
            jump = ((z[i] - z[j]) ** 2).sum(axis=1)
            print(f"{name} seed {seed} (truth {truth.nunique()}):")
            for k in range(2, 13):
                labels = assign(mixture(z, k, seed, 20_000), z)
                crossing = labels[i] != labels[j]
                ari = spacon.tl.score(truth.astype(str).values, labels)["ari"]
                print(f"  k={k:2d}  ARI {ari:.2f}  crossing {crossing.mean():.3f}  ratio "
                      f"{jump[crossing].mean() / jump.mean():.2f}", flush=True)


def labels(which: str, seeds: list[int], root: Path, tables: Path) -> None:
    """The library's own labels for each case and seed: domains chosen, ARI against the
    truth, and which start of the labelling mixture was kept (the tables score the most
    likely start; the library may keep another, see ``tl.domains``).
    """
    import spacon

    for seed in seeds:
        for name, adata, rep, alpha, truth in cases(which, seed, root, tables):
            spacon.tl.domains(adata, use_rep=rep, alpha=alpha, seed=seed, key_added="d")
            selection = adata.uns["d"]["selection"]
            ari = spacon.tl.score(truth.astype(str).values, adata.obs["d"])["ari"]
            print(f"{name} seed {seed}: {selection['chosen']} domains, ARI {ari:.3f}; "
                  f"{selection['labelling']}", flush=True)


def score(table: dict, stability_power: float = 1.0, modularity_power: float = 1.0):
    return (np.asarray(table["stability"]) ** stability_power
            * np.clip(table["modularity"], 0, None) ** modularity_power)


def choose(row: dict, tolerance: float = 0.05, use_se: bool = True, fewest: bool = True,
           shrink: float | None = None, peaks: bool = False, lower_bound: float = 0.0,
           per_doubling: float = 0.0, **powers) -> int:
    """A rule's choice: the former default's (the fewest domains within 1 SE, at least 5 % and
    0.01, of the best score) with a variant score, tolerance or tie rule; ``per_doubling``
    charges the score for each doubling of the domains (the library's
    :func:`spacon.tl._domain_selection._choose`: 3 %, no tolerance)."""
    candidates = []
    for table in row["families"].values():
        s = score(table, **powers)
        charge = (1 - per_doubling) ** np.log2(np.asarray(table["k"], float))
        s = s * charge  # each doubling of the domains costs per_doubling of the score
        for i, k in enumerate(table["k"]):
            se = table["stability_se"][i] * max(table["modularity"][i], 0.0) * charge[i]
            # a peak: at least its neighbours' score (one domain is no peak)
            peak = k > 1 and s[i] >= s[i - 1] and (i + 1 == len(s) or s[i] >= s[i + 1])
            if peak or not peaks:
                candidates.append((float(s[i]), int(k), se))
    if lower_bound:  # the best score less lower_bound standard errors (fewer domains on ties)
        return max(candidates, key=lambda c: (round(c[0] - lower_bound * c[2], 12), -c[1]))[1]
    top = max(candidates, key=lambda c: (round(c[0], 12), -c[1]))
    if not fewest:
        return top[1]
    if shrink is not None and top[1] > 1:
        # with k equal, separate domains, the k-th adds 1 / (k - 1)^2 of the modularity: a
        # fixed 5 % lets 6 or more of them lose one
        tolerance = min(tolerance, shrink / (top[1] - 1) ** 2)
    margin = max(top[2] if use_se else 0.0, tolerance * top[0], 0.01)
    return min(k for s, k, _ in candidates if s >= top[0] - margin)


# the variants keep the default's margin: the standard error of stability x modularity (not
# rescaled to the variant's score), at least 5 % and 0.01; "tolerance 10 %" drops the error
RULES = {
    "default: 3 % per doubling, fewest within 1 SE": {"per_doubling": 0.03, "tolerance": 0.0},
    "former default (fewest within 1 SE / 5 %)": {},
    "best score, no tolerance": {"fewest": False},
    "tolerance 10 %": {"tolerance": 0.10, "use_se": False},
    "stability^2 x modularity": {"stability_power": 2.0},
    "stability x modularity^2": {"modularity_power": 2.0},
    "tolerance min(5 %, 0.5 / (k - 1)^2)": {"shrink": 0.5},
    "tolerance min(5 %, 1 / (k - 1)^2)": {"shrink": 1.0},
    "peaks only, 1 SE / 5 %": {"peaks": True},
    "peaks only, 1 SE / 10 %": {"peaks": True, "tolerance": 0.10},
    "peaks only, 1 SE / 15 %": {"peaks": True, "tolerance": 0.15},
    "best lower bound, score - 1 SE": {"lower_bound": 1.0},
    "best lower bound, score - 2 SE": {"lower_bound": 2.0},
    "best lower bound, score - 3 SE": {"lower_bound": 3.0},
    **{f"{c:.0%} per doubling, fewest within 1 SE": {"per_doubling": c, "tolerance": 0.0}
       for c in (0.01, 0.02, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2)},
    **{f"{c:.0%} per doubling, best": {"per_doubling": c, "fewest": False}
       for c in (0.05, 0.1, 0.15)},
}
# the 18 development tables were judged with these rules before the held-out ones were gathered


def passes(rows: list[dict], options: dict) -> tuple[int, list[str]]:
    """How many tables pass with a rule, and its choice per table (``!``: failed)."""
    passed, picks = 0, []
    for r in rows:
        k, true_k = choose(r, **options), r["true_k"]
        ari = r["mixture_ari"][min(k, len(r["mixture_ari"])) - 1]
        ok = true_k / 2 <= k <= 2 * true_k and ari >= r["mixture_ari"][true_k - 1] - 0.05
        passed += ok
        picks.append(f"{k}{'' if ok else '!'}")
    return passed, picks


def judge(folders: list[Path]) -> None:
    """Each rule's passes per folder of tables (one column each), then its choices."""
    sets = []
    for folder in folders:
        tables = {}  # a case and seed gathered twice counts once (the newest file wins)
        for f in sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime):
            for r in json.loads(f.read_text()):
                tables[(r["case"], r["seed"])] = r
        if not tables:
            raise SystemExit(f"no tables under {folder}: run 'gather' first")
        sets.append(list(tables.values()))
        print(f"{folder}: {len(tables)} tables: "
              + ", ".join(f"{case} ({seed})" for case, seed in tables))
    print(f"{'rule':<58}" + "".join(f"{f.name[:14]:>16}" for f in folders))
    for name, options in RULES.items():
        counts = [passes(rows, options) for rows in sets]
        print(f"{name:<58}" + "".join(f"{f'{n}/{len(rows)}':>16}"
                                       for (n, _), rows in zip(counts, sets)))
        for (_, picks), folder in zip(counts, folders):
            print(f"    {folder.name}: k = {' '.join(picks)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["gather", "judge", "labels", "boundary"])
    p.add_argument("which", nargs="?", choices=["brain", "starmap", "slice", "slice4", "human", "mob",
                                                   "brains", "slices"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-runs", type=int, default=8, help="stability runs per candidate")
    p.add_argument("--stability", choices=["mean", "median"], default="mean",
                   help="gather: the runs' pairwise ARIs summarised by their mean (the "
                   "library's) or median")
    p.add_argument("--runs", choices=["cells", "blocks"], default="cells",
                   help="gather: each run fitted on random cells (the library's) or on the "
                   "cells of a random half of spatial blocks")
    p.add_argument("--cache", default=None,
                   help="gather: folder of the trained demo brains (default: the tables')")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--tables", nargs="+", default=["/tmp/spacon_domain_tables"],
                   help="folder of tables (gather: the first; judge: one column each)")
    args = p.parse_args()
    if args.action in ("gather", "labels", "boundary"):
        if args.which is None:
            p.error(f"{args.action} needs brain, starmap, slice, slice4 or human")
        if args.action == "labels":
            labels(args.which, args.seeds, Path(args.data), Path(args.tables[0]))
        elif args.action == "boundary":
            boundary(args.which, args.seeds, Path(args.data), Path(args.tables[0]))
        else:
            gather(args.which, args.seeds, Path(args.data), Path(args.tables[0]), args.n_runs,
                   args.stability, args.runs, Path(args.cache) if args.cache else None)
    else:
        judge([Path(t) for t in args.tables])


if __name__ == "__main__":
    main()
