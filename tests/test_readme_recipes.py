"""The README's "Your data" recipes, run as written on tiny files of the same names and layouts
(`spacon run` gets ``--epochs 2 --quiet`` so that they are quick)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _atlas_files import write_abc, write_voxel_model  # noqa: E402

README = Path(__file__).parents[1] / "README.md"
pytestmark = pytest.mark.slow


def recipes() -> dict[str, list[tuple[str, str]]]:
    """``### title`` of the "Your data" section -> its code blocks ``(language, code)`` that CI
    runs (blocks after a ``<!-- ci: skip ... -->`` line are downloads or need them)."""
    text = README.read_text()
    section = text[text.index("## Your data"):]
    section = section[: section.index("\n## ", 5)]
    out = {}
    for part in section.split("\n### ")[1:]:
        title = part.splitlines()[0]
        blocks = re.findall(r"(<!-- ci: skip[^\n]*-->\n)?```(\w+)\n(.*?)```", part, re.S)
        out[title] = [(lang, code) for skip, lang, code in blocks if not skip]
    return out


def run_blocks(blocks, cwd: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(README.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    for lang, code in blocks:
        if lang == "python":
            command = [sys.executable, "-c", code]
        else:
            assert lang == "bash"
            fast = code.replace("spacon run ", "spacon run --epochs 2 --quiet ")
            command = ["bash", "-e", "-c",
                       f'spacon() {{ "{sys.executable}" -m spacon.cli "$@"; }}\n{fast}']
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{lang} block failed:\n{code}\n{done.stderr[-3000:]}"


def find(title_start: str):
    matches = [blocks for title, blocks in recipes().items() if title.startswith(title_start)]
    assert len(matches) == 1, f"no README recipe {title_start!r}"
    return matches[0]


def test_whole_mouse_brain_recipe(tmp_path):
    blocks = find("Whole mouse brain")
    assert [lang for lang, _ in blocks] == ["bash"]
    cells = write_abc(tmp_path / "abc_atlas", unregistered=4)
    write_voxel_model(tmp_path / "voxel_model_cache")
    run_blocks(blocks, tmp_path)
    prepared = ad.read_h5ad(tmp_path / "abc_prepared" / "abc_merfish.h5ad")
    assert prepared.n_obs == len(cells) - 4
    result = ad.read_h5ad(tmp_path / "abc_result" / "result.h5ad")
    assert result.n_obs == prepared.n_obs and "spacon_domain_alpha1" in result.obs


def test_widefield_recipe(tmp_path):
    rng = np.random.default_rng(0)
    xy = np.stack(np.meshgrid(np.arange(15), np.arange(10)), -1).reshape(-1, 2).astype(float)
    module = (xy[:, 0] < 4) | (xy[:, 0] > 10)  # two distant strips that fire together
    fc = np.where(module[:, None] == module[None, :], 0.85, 0.2) + rng.normal(0, 0.05, (150, 150))
    fc = (fc + fc.T) / 2
    np.fill_diagonal(fc, 1)
    np.save(tmp_path / "widefield_fc.npy", fc)
    np.save(tmp_path / "widefield_xy.npy", xy)
    np.save(tmp_path / "widefield_expression.npy", rng.poisson(3, (150, 30)))
    run_blocks(find("Widefield"), tmp_path)
    result = ad.read_h5ad(tmp_path / "widefield_result" / "result.h5ad")
    assert "spacon_domain_alpha0.5" in result.obs and result.n_obs == 150


def test_cortical_fmri_recipe(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(120, 3))
    xyz = 50 * xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    fc = np.corrcoef(rng.normal(size=(120, 40)) + (xyz[:, :1] > 0) * rng.normal(size=40) * 2)
    np.save(tmp_path / "parcel_fc.npy", fc)
    np.save(tmp_path / "parcel_xyz.npy", xyz)
    np.save(tmp_path / "parcel_expression.npy", np.log1p(rng.poisson(3, (120, 25))))
    run_blocks(find("Cortical fMRI"), tmp_path)
    result = ad.read_h5ad(tmp_path / "fmri_result" / "result.h5ad")
    assert "spacon_domain_alpha1" in result.obs and result.n_obs == 120


def test_python_example(tmp_path):
    """The README's Python block, as written but smaller: each substitution must match once, so
    a changed call in the README fails here instead of passing unrun."""
    from test_tracer import write_tracer

    text = README.read_text()
    section = text[text.index("### Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    smaller = {
        "spacon.datasets.synthetic_brain()": "spacon.datasets.synthetic_brain(n_cells=600, "
                                             "n_sections=4)",
        "model.train()": "model.train(max_steps=4)",
        "folds=4,": "folds=2, train_kwargs={'max_steps': 2},",
        'groupby="domain_alpha1")': 'groupby="domain_alpha1", n_perm=99)',
    }
    for old, new in smaller.items():
        assert code.count(old) == 1, f"the README's Python block no longer has {old!r}"
        code = code.replace(old, new)
    (tmp_path / "mouse_oh2014_sc_synaptome").mkdir()
    write_tracer(tmp_path / "mouse_oh2014_sc_synaptome")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"an earlier run's")  # rerunning overwrites
    run_blocks([("python", code)], tmp_path)
    for name in ("domain_tree.png", "domains.png", "report.html", "markers.png", "coupling.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "model" / "model.pt").stat().st_size > 1000
