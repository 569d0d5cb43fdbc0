"""Fingerprints of trained embeddings: run at two commits to check that a refactor changed nothing.

Run:  OMP_NUM_THREADS=2 python benchmarks/check_same_embeddings.py OUT.json

Trains five small models (full-batch and sampled; concat and add fusion; with and without skip
connections; spatial encoder alone) on a 1,200-cell synthetic brain with fixed seeds, embeds
them and prints a SHA-256 prefix of every embedding and reconstruction with the last epoch's
loss. The same commit, seed and thread count give the same fingerprints; two commits that
print the same fingerprints train and embed identically.
"""
import hashlib
import json
import sys

import numpy as np

import spacon


def run(mode, epochs, skip=False, fusion="concat", con=True):
    adata, conn = spacon.datasets.synthetic_brain(n_cells=1200, n_genes=60, n_sections=4, seed=1)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=700, section_key="section", z_radius=400)
    if con:
        spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    m = spacon.SpaCon(adata, hidden_dims=(32, 16, 8), skip_connections=skip, fusion=fusion,
                      connectome_key="connectome" if con else None)
    m.train(epochs, mode=mode, progress=False, batch_size=200)
    m.embed(reconstruct=True)
    h = hashlib.sha256()
    for k in sorted(adata.obsm):
        if k.startswith("X_spacon"):
            h.update(np.ascontiguousarray(adata.obsm[k]).tobytes())
    h.update(np.ascontiguousarray(adata.layers["spacon_reconstructed"]).tobytes())
    hist = [round(x["loss"], 10) for x in m.history]
    return h.hexdigest()[:16], hist[-1], len(hist)

if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
    raise SystemExit(__doc__)
out = {}
CASES = [("full", 15), ("sampled", 2), ("full", 10, True, "add"), ("sampled", 2, True, "add"),
         ("full", 8, False, "concat", False)]
for args in CASES:
    out[str(args)] = run(*args)
    print(args, out[str(args)], flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
