"""Wall time and peak resident memory of benchmark stages (Linux)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path


def _peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class Stages:
    """Record each stage's wall time and the peak RSS of the process during it."""

    def __init__(self):
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def stage(self, name: str, **extra):
        exact = _reset_peak()
        t0 = time.perf_counter()
        row = {"stage": name, **extra}
        yield row
        row["seconds"] = round(time.perf_counter() - t0, 3)
        row["peak_rss_gb"] = round(_peak_rss_gb(), 3)
        row["peak_is_per_stage"] = exact
        self.rows.append(row)

    def report(self, title: str, extra: dict | None = None) -> None:
        print(json.dumps({"benchmark": title, **(extra or {}), "stages": self.rows}, indent=1))
        print(f"\n{title}")
        width = max(28, *(len(r["stage"]) + 2 for r in self.rows))
        edges = any("edges" in r for r in self.rows)
        print(f"{'stage':<{width}}{'seconds':>10}{'peak RSS GB':>14}"
              + (f"{'edges':>16}" if edges else ""))
        for r in self.rows:
            seconds = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            print(f"{r['stage']:<{width}}{seconds:>10}{r['peak_rss_gb']:>14.2f}"
                  + (f"{r['edges']:>16,}" if "edges" in r else ""))


def prepared_brain(n_cells: int = 6000, n_genes: int = 300, n_sections: int = 12, *,
                   seed: int = 0, threshold: float = 0.4, **brain):
    """A simulated brain (``brain``: more ``synthetic_brain`` parameters), normalised, with its
    spatial graph and thresholded connectome."""
    import spacon

    adata, conn = spacon.datasets.synthetic_brain(n_cells, n_genes, n_sections, seed=seed,
                                                  **brain)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=threshold)
    return adata


def real_data_parser(doc: str):
    """Command-line options of the real-data benchmarks: --data, --seed, --json."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared"
                                         / "data"), help="folder of the shared data sets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p


def run_child(cmd: list[str], label: str) -> dict | None:
    """Run one measurement in a fresh process; its last stdout line as JSON (printed too),
    or ``None`` after printing the end of its stderr when it failed."""
    import subprocess
    import sys

    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{label} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def add_batch_option(parser) -> None:
    """``--former-batches``: train with the sampled batches of the default until 28 Nov (256
    seed cells, fan-outs 10/5/5, 20 spatial neighbours), which the README's older tables used.
    """
    parser.add_argument("--former-batches", action="store_true",
                        help="256 seed cells, fan-outs 10/5/5, 20 spatial neighbours: the "
                        "default batches until 28 Nov, which older README tables used")


def batch_options(args) -> dict:
    """The keyword arguments of ``SpaCon.train`` (and ``TrainConfig``) that ``args`` asks for."""
    if not getattr(args, "former_batches", False):
        return {}
    from spacon.model._checkpoint import FORMER_BATCHES

    return {**FORMER_BATCHES, "fanouts": tuple(FORMER_BATCHES["fanouts"])}
