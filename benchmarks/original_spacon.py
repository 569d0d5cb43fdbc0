"""Run the original SpaCon (PyPI ``spacon==0.1.3``) on files written by ``bench_vs_original.py``.

Runs under the interpreter where the original is installed (it needs torch-sparse and
torch-scatter, built from source), never under spacon's own: both packages are called
``spacon``. It follows the original's tutorial: ``build_spatial_graph`` (radius, 3-D with
adjacent-section links), ``build_connection_graph`` on the dense cell x cell connectivity,
``neighbor_sample`` ([20, 10, 10], batch 64), ``model_train`` and layer-wise ``model_eval``.
Writes the two embeddings and per-stage wall time and peak RSS to ``--out`` (.npz + .json).

    /path/to/original/python benchmarks/original_spacon.py --adata prepared.h5ad \
        --connectivity connectome.npz --unit-key unit --radius R --z-radius RZ \
        --threshold 0.4 --epochs 5 --lr 1e-4 --out original
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adata", required=True, help="log-normalised h5ad with obs section")
    p.add_argument("--connectivity", required=True, help="unit x unit .npz (rows = sources)")
    p.add_argument("--unit-key", default="unit")
    p.add_argument("--section-key", default="section")
    p.add_argument("--radius", type=float, required=True)
    p.add_argument("--z-radius", type=float, required=True)
    p.add_argument("--threshold", type=float, default=0.4)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hidden-dims", type=int, nargs=3, default=[256, 64, 16])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output base name (.npz and .json)")
    args = p.parse_args()

    from spacon import SpaCon
    from spacon import utils as su

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    timings, peaks = {}, {}
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        peaks[stage] = round(peak_rss_gb(), 3)
        clock = now

    adata = ad.read_h5ad(args.adata)
    adata.obs["x"] = adata.obsm["spatial"][:, 0]
    adata.obs["y"] = adata.obsm["spatial"][:, 1]
    order = list(adata.obs[args.section_key].cat.categories)
    npz = np.load(args.connectivity, allow_pickle=False)
    unit_matrix = sp.csr_matrix((npz["data"], npz["indices"], npz["indptr"]),
                                shape=tuple(npz["shape"]))
    labels = npz["labels"].astype(str)
    unit_index = {u: i for i, u in enumerate(labels)}
    cell_unit = np.array([unit_index[str(u)] for u in adata.obs[args.unit_key]])
    lap("load")

    st_data, st_adj = su.build_spatial_graph(
        adata, rad_cutoff=args.radius, model="Radius", sec_x="x", sec_y="y", is_3d=True,
        rad_cutoff_Zaxis=args.z_radius, key_section=args.section_key, section_order=order,
    )
    lap("spatial_graph")
    # the original takes a dense cell x cell matrix whose argwhere gives torch_geometric's
    # (source, target) edge_index: rows = sources, as in the unit matrix
    dense = unit_matrix.toarray()[np.ix_(cell_unit, cell_unit)].astype(np.float32)
    nt_data = su.build_connection_graph(adata, dense, threshold=args.threshold)
    del dense
    lap("connectome_graph")

    dims = [adata.n_vars, *args.hidden_dims]
    model = SpaCon(dims)
    train_loader, eval_con, eval_spa = su.neighbor_sample(
        nt_data, st_data, batch_size=64, train_num_neighbors=[20, 10, 10], num_workers=0)
    st_dense = st_adj.toarray()  # the original slices a dense spatial adjacency per batch
    model = su.model_train(args.epochs, args.lr, 1e-4, model, train_loader, st_dense,
                           device=torch.device("cpu"))
    lap("training")
    adata = su.model_eval(model, adata, nt_data, st_data, eval_con, eval_spa, st_dense,
                          layer_eval=True, device=torch.device("cpu"))
    lap("embedding")
    np.savez(f"{args.out}.npz", feature_spa=adata.obsm["feature_spa"],
             feature_con=adata.obsm["feature_con"])
    with open(f"{args.out}.json", "w") as f:
        json.dump({"timings_seconds": timings, "peak_rss_gb_after": peaks,
                   "n_connectome_edges": int(nt_data.edge_index.shape[1]),
                   "n_spatial_edges": int(st_data.edge_index.shape[1]),
                   "epochs": args.epochs, "lr": args.lr}, f, indent=1)


if __name__ == "__main__":
    main()
