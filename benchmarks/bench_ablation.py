"""What the decoder's skip connections do to the embeddings, on the default synthetic brain.

Run:  python benchmarks/bench_ablation.py [--seeds 0 1 2]

For each seed (brain and training), SpaCon is trained with spacon's defaults twice: with the
published skip connections from the encoders to the decoder, and without (spacon's default).
Scored like ``bench_vs_original.py``: a true-k shared-covariance Gaussian mixture on the
alpha = 0 embedding against the regions, and on the alpha = 1 embedding against the modules.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from _measure import add_batch_option, batch_options, prepared_brain
    from bench_vs_original import score

    import spacon

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add_batch_option(p)
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        adata = prepared_brain(seed=seed)
        for skip in (True, False):
            t0 = time.perf_counter()
            model = spacon.SpaCon(adata, skip_connections=skip, seed=seed)
            model.train(progress=False, seed=seed, **batch_options(args))
            model.embed()
            row = {"seed": seed, "skip_connections": skip,
                   "train_seconds": round(time.perf_counter() - t0, 1),
                   "final_loss": round(model.history[-1]["loss"], 1),
                   **score(adata, adata.obsm["X_spacon_spa"], adata.obsm["X_spacon_con"], seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'seed':>5}{'skips':>8}{'loss':>9}{'alpha0 regions':>16}{'alpha1 modules':>16}")
    for r in rows:
        print(f"{r['seed']:>5}{'on' if r['skip_connections'] else 'off':>8}{r['final_loss']:>9.1f}"
              f"{r['alpha0_region_ari']:>16.3f}{r['alpha1_module_ari']:>16.3f}")


if __name__ == "__main__":
    main()
