"""Same seed, same data: the same CPU result, in separate processes with two threads."""

import subprocess
import sys

import pytest

# a small synthetic brain with both graphs, as a user prepares one (run by exec, so that a
# subprocess and a test share it)
PREPARE = """
import spacon
a, conn = spacon.datasets.synthetic_brain(n_cells={n_cells}, seed=0)
info = a.uns["synthetic_brain"]
spacon.pp.normalize(a)
spacon.pp.spatial_graph(a, radius=info["suggested_radius"], section_key="section",
                        z_radius=info["suggested_z_radius"])
spacon.pp.connectome_graph(a, conn, unit_key="unit", threshold=0.4)
"""

SCRIPT = "import hashlib, torch\ntorch.set_num_threads(2)\n" + PREPARE.format(n_cells=3000) + """
model = spacon.SpaCon(a, seed=3).train(progress=False, max_steps=8, seed=3, threads=2)
model.embed()
print(hashlib.sha256(a.obsm["X_spacon_spa"].tobytes() + a.obsm["X_spacon_con"].tobytes())
      .hexdigest())
"""


@pytest.mark.slow
def test_training_is_repeatable_across_processes():
    """Large enough for torch's multi-threaded kernels (the gather backward summed in a
    process-dependent order before deterministic kernels were switched on)."""
    import contextlib
    import io

    import torch

    other = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    printed, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(printed):
            exec(SCRIPT, {})  # this test's process
    finally:
        torch.set_num_threads(threads)
    assert printed.getvalue().strip().splitlines()[-1] == other


def test_mkl_vector_functions_are_resolved_before_threads_compute():
    """Training and embedding resolve MKL's vector functions (one-element calls) before any
    multi-element exp or sqrt runs: the race it avoids (benchmarks/bench_vector_math.py)
    cannot be triggered on demand, so the order is what is checked."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import spacon
    from spacon import _utils

    early = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if (func in (torch.ops.aten.exp.default, torch.ops.aten.sqrt.default)
                    and args[0].numel() > 1 and not _utils._vector_math_resolved):
                early.append(func)
            return out

    prepared: dict = {}
    exec(PREPARE.format(n_cells=300), prepared)
    model = spacon.SpaCon(prepared["a"], hidden_dims=(8, 4, 2), seed=0)
    _utils._vector_math_resolved = False
    with Watch():
        model.train(progress=False, max_steps=2, seed=0, threads=2)
        assert _utils._vector_math_resolved
        _utils._vector_math_resolved = False
        model.embed()
    assert _utils._vector_math_resolved and not early
    assert all(callable(getattr(torch, name)) for name in _utils.VECTOR_MATH)


def _trained_parameters(adata, threads: int) -> dict:
    import spacon

    model = spacon.SpaCon(adata, seed=0)
    model.train(max_steps=3, progress=False, seed=0, threads=threads)
    return {n: p.detach().clone() for n, p in model.module.named_parameters()}


def test_training_gives_the_same_bits_on_one_and_two_threads():
    """CPU training does not depend on the thread count (benchmarks/thread_invariance.py):
    a brain large enough that torch splits its element-wise operations, sums and matrix
    products between threads (1,500 cells x 120 genes, 47,000 spatial edges)."""
    import torch

    scope: dict = {}
    exec(PREPARE.format(n_cells=1500), scope)
    adata = scope["a"]
    assert adata.obsp["spatial_connectivities"].nnz > 32768
    before = torch.get_num_threads()
    one, two = (_trained_parameters(adata, t) for t in (1, 2))
    assert torch.get_num_threads() == before
    differ = [n for n in one if not torch.equal(one[n], two[n])]
    assert not differ, f"parameters that differ between 1 and 2 threads: {differ}"


def test_importing_spacon_asks_mkl_for_its_reproducible_mode():
    """Set before torch's first matrix product; a value the user set is kept."""
    import os

    code = "import os, spacon; print(os.environ['MKL_CBWR'])"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert out == ["AUTO,STRICT"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**env, "MKL_CBWR": "COMPATIBLE"}).stdout.split()
    assert out == ["COMPATIBLE"]
