"""What a fresh process pays the first time: training's first steps and the first domains call.

Run:  python benchmarks/bench_cold_start.py RESULT.h5ad {train,domains} [--device cuda]
                                            [--profile]

``RESULT.h5ad`` is a ``spacon run`` result (it holds both graphs and the embeddings). In a
fresh process, after importing anndata, torch and spacon (timed):

- ``train``: 3 sampled steps of a new model, then 3 more of another one; the difference is
  what the first steps of a process cost (a GPU's libraries and kernels, and whatever torch
  imports on first use);
- ``domains``: ``tl.domains`` at alpha 0 with the default processes, then the same call
  again (a new key, so nothing stored is reused) with the processes already started.

``--profile`` prints the first call's cProfile (cumulative and own time).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("what", choices=["train", "domains"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    import anndata
    import torch

    import spacon
    from spacon import tl

    print(f"imports {time.perf_counter() - t0:.2f} s", flush=True)
    adata = anndata.read_h5ad(args.result)

    def sync():
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()

    def call(key: str):
        """3 training steps, or the domains at alpha 0 into ``key``."""
        if args.what == "train":
            spacon.SpaCon(adata, seed=0).train(max_steps=3, device=args.device, progress=False)
            sync()
        else:
            tl.fuse(adata, 0.0, key_added="fused")
            tl.domains(adata, use_rep="fused", key_added=key)

    profile = cProfile.Profile()
    t0 = time.perf_counter()
    with profile if args.profile else contextlib.nullcontext():
        call("domains")
    print(f"{args.what}, first call: {time.perf_counter() - t0:.2f} s", flush=True)
    t0 = time.perf_counter()
    call("domains_again")
    print(f"{args.what}, second call: {time.perf_counter() - t0:.2f} s", flush=True)
    if args.profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
