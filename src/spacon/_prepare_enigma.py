"""``spacon prepare enigma``: the ENIGMA toolbox's human cortex (HCP connectivity, AHBA
expression, Desikan-Killiany regions) -> the files ``spacon run`` reads.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from ._prepare import check_outputs, write_together

H5AD, FUNCTIONAL, STRUCTURAL = "human_regions.h5ad", "functional.npz", "structural.npz"
README, CONFIG = "README.txt", "run.toml"
N_NEIGHBORS = 6  # a region's spatial neighbours (the prediction benchmarks' graph)
FC_QUANTILE = 0.75  # the functional graph keeps the strongest quarter of the positive values

PREPARE_README = """\
Human cortex from the ENIGMA toolbox, written by `spacon prepare enigma` (spacon {version}).

Files
  {h5ad}
      {n_regions} Desikan-Killiany cortical regions x {n_genes} genes: Allen Human Brain Atlas
      expression (abagen, genes of differential stability > {stability}), {scaled};
      obs['hemisphere'] (L/R);
      obsm['spatial'] = region centroids on fsaverage5 (mm; x left to right, 0 at the midline).
      {dropped}
  {fc}
      HCP group resting-state functional connectivity (Fisher z, negatives zeroed) between those
      regions, labelled by region (= the h5ad's cell names).
  {sc}
      HCP group structural connectivity (log streamline counts), labelled alike.

The regions are the cells here: no --unit-key. Run spacon on it (run.toml holds the same
options: spacon run --config {config_q} --out result):
  spacon run --adata {h5ad_q} --connectivity {fc_q} --no-normalize \\
      --n-neighbors {k} --threshold {threshold:.6g} --alpha 0 1 --out result
--threshold {threshold:.6g} keeps the strongest quarter of the positive FC values; the structural
connectome: --connectivity {sc_q} (every connection: leave out --threshold).
Connectivity predicted from expression, against distance and the other baselines:
  spacon evaluate connectivity --adata {h5ad_q} --connectivity {fc_q} \\
      --no-normalize --n-neighbors {k} --threshold {threshold:.6g} \\
      --mirror-axis 0 --midline 0 --out fc_eval
"""


def prepare_enigma(directory, out, *, stability: float = 0.6, overwrite: bool = False) -> dict:
    """Read the ENIGMA files below ``directory`` (:func:`spacon.datasets.read_enigma`) and
    write ``human_regions.h5ad``, ``functional.npz``, ``structural.npz``, ``run.toml`` and
    ``README.txt`` into ``out``, all at once (on an error or Ctrl-C nothing is written).
    Returns a summary (files written, regions, genes, regions dropped).
    """
    from . import __version__
    from .datasets import read_enigma

    out = Path(out)
    names = [H5AD, FUNCTIONAL, STRUCTURAL, README, CONFIG]
    check_outputs(out, [out / n for n in names], overwrite)
    adata, matrices = read_enigma(directory, stability=stability)
    fc = matrices["functional"].matrix.toarray()
    threshold = float(np.quantile(fc[fc > 0], FC_QUANTILE))
    paths = {n: out / n for n in names}
    dropped = adata.uns["enigma"]["dropped"]
    text = PREPARE_README.format(
        version=__version__, n_regions=adata.n_obs, n_genes=adata.n_vars, stability=stability,
        scaled=(f"scaled, plus {shift:.3f} so that it is >= 0 (layers['ahba'] as published)"
                if (shift := adata.uns["enigma"]["shift"]) else "scaled from 0 to 1 as published"),
        threshold=threshold, k=N_NEIGHBORS,
        h5ad=paths[H5AD].as_posix(), fc=paths[FUNCTIONAL].as_posix(),
        sc=paths[STRUCTURAL].as_posix(),
        dropped=(f"Left out, without AHBA samples: {', '.join(dropped)}." if dropped else ""),
        **{f"{key}_q": shlex.quote(paths[name].as_posix()) for key, name in
           (("h5ad", H5AD), ("fc", FUNCTIONAL), ("sc", STRUCTURAL), ("config", CONFIG))})
    config = "\n".join([f'adata = "{H5AD}"', f'connectivity = "{FUNCTIONAL}"',
                        "no_normalize = true", f"n_neighbors = {N_NEIGHBORS}",
                        f"threshold = {threshold:.6g}", "alpha = [0.0, 1.0]"]) + "\n"
    write_together(out, {H5AD: adata, FUNCTIONAL: matrices["functional"],
                         STRUCTURAL: matrices["structural"], README: text, CONFIG: config})
    return {"files": [str(paths[n]) for n in names], "n_regions": adata.n_obs,
            "n_genes": adata.n_vars, "dropped": dropped, "threshold": threshold}
