"""Same seed, same data: the same CPU result, in separate processes with two threads."""

import subprocess
import sys

import pytest

SCRIPT = """
import hashlib, torch, spacon
torch.set_num_threads(2)
a, conn = spacon.datasets.synthetic_brain(n_cells=3000, seed=0)
info = a.uns["synthetic_brain"]
spacon.pp.normalize(a)
spacon.pp.spatial_graph(a, radius=info["suggested_radius"], section_key="section",
                        z_radius=info["suggested_z_radius"])
spacon.pp.connectome_graph(a, conn, unit_key="unit", threshold=0.4)
model = spacon.SpaCon(a, seed=3).train(progress=False, max_steps=8, seed=3, threads=2)
model.embed()
print(hashlib.sha256(a.obsm["X_spacon_spa"].tobytes() + a.obsm["X_spacon_con"].tobytes())
      .hexdigest())
"""


@pytest.mark.slow
def test_training_is_repeatable_across_processes():
    """Large enough for torch's multi-threaded kernels (the gather backward summed in a
    process-dependent order before deterministic kernels were switched on)."""
    digests = {
        subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       check=True).stdout.strip().splitlines()[-1]
        for _ in range(2)
    }
    assert len(digests) == 1



def test_mkl_vector_functions_are_resolved_before_threads_compute():
    """Every name in VECTOR_MATH is a torch function that runs on one element of both float
    types, and entering cpu_threads (training, embedding, runs) resolves them first: the
    race it avoids (benchmarks/bench_vector_math.py) cannot be triggered on demand."""
    import torch

    from spacon import _utils

    _utils._vector_math_resolved = False
    with _utils.cpu_threads(1):
        assert _utils._vector_math_resolved
    assert all(callable(getattr(torch, name)) for name in _utils.VECTOR_MATH)
    assert {"exp", "log", "sqrt", "tanh"} <= set(_utils.VECTOR_MATH)
