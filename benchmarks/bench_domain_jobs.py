"""Domain selection's time against its number of workers (``tl.domains(n_jobs=...)``).

Run:  python benchmarks/bench_domain_jobs.py RESULT.h5ad [--alpha 0 1] [--jobs 1 2 16]
                                                        [--backend loky threading]

``RESULT.h5ad`` is a ``spacon run`` result (its ``X_spacon_spa`` / ``X_spacon_con`` are
re-fused at each alpha). For every alpha, backend and worker count: seconds for the default
call (the tree is rebuilt every time), the CPU seconds of the calling process (all of it
with ``n_jobs=1``; with workers, its own share: preparing and sending the runs, the
scores, the final fit) and the number of domains; the labels must be the same
for every worker count, since each run is seeded on its own. ``n_jobs=1`` is the serial
baseline. Each backend's first call pays for starting its workers, as the first call of a
session does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backend", nargs="+", default=["loky"])
    args = parser.parse_args()

    import anndata as ad

    import spacon
    from spacon.tl import _domain_selection

    adata = ad.read_h5ad(args.result)
    print(f"{adata.n_obs} cells")
    for alpha in args.alpha:
        spacon.tl.fuse(adata, alpha=alpha)
        labels = {}
        for backend in args.backend:
            _domain_selection.BACKEND = backend
            for n_jobs in args.jobs:
                key = ("serial", 1) if n_jobs == 1 else (backend, n_jobs)
                if key in labels:
                    continue
                adata.uns.pop("spacon_domain", None)
                start, cpu = time.perf_counter(), time.process_time()
                spacon.tl.domains(adata, alpha=alpha, n_jobs=n_jobs)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                labels[key] = adata.obs["spacon_domain"].to_numpy().copy()
                print(f"alpha {alpha:g}  {backend:9s} n_jobs {n_jobs:2d}: {seconds:6.1f} s "
                      f"(this process's CPU {cpu:5.2f} s), "
                      f"{adata.obs['spacon_domain'].nunique()} domains", flush=True)
        first = next(iter(labels.values()))
        same = all(np.array_equal(v, first) for v in labels.values())
        print(f"alpha {alpha:g}: same labels for every worker count: {same}")


if __name__ == "__main__":
    main()
