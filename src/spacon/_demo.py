"""``spacon demo``: the main job on the synthetic brain, scored against the planted truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ._baselines import baseline_rows, baseline_summary

logger = logging.getLogger(__name__)

# the connectome flags the simulator's README.txt suggests: keep the strong (long-range,
# within-module) connections, drop weak short-range and off-module ones
DEMO_THRESHOLD = 0.4


def demo(out: str | Path = "spacon_demo", *, seed: int = 0, epochs: int | None = None,
         progress: bool = True, threads: int | None = None, overwrite: bool = False) -> dict:
    """Simulate, run, score; print a table and return the scores (``threads`` bounds the CPU
    threads of the whole job, as ``spacon run --threads`` does; default: the idle CPUs).

    ``out`` may hold an earlier demo, which is replaced; a folder holding anything else is
    refused unless ``overwrite``.
    """
    check_demo_output(out, overwrite)
    if threads is None:
        return _demo(out, seed, epochs, progress, None)
    from ._utils import choose_threads, cpu_threads

    with cpu_threads(choose_threads(threads)):
        return _demo(out, seed, epochs, progress, threads)


# what a demo writes in its folder: anything else there is not an earlier demo's
DEMO_FILES = {"input", "result.h5ad", "domains.csv", "markers.csv", "summary.json", "report.html",
              "figures", "model", "demo_scores.json", "checkpoint.pt"}


def check_demo_output(out: str | Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` that is not an earlier demo's, unless ``overwrite``.

    An earlier demo's folder holds the demo's simulated input and only what a demo writes,
    and, if it holds a result, the demo's scores (written last): a run's folder that merely
    has a simulated brain in ``input/`` is not replaced.
    """
    from ._errors import SpaconInputError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpaconInputError(f"--out {str(out)!r} exists and is not a directory.")
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    earlier = ((out / "input" / "synthetic_brain.h5ad").exists() and names <= DEMO_FILES
               and ((out / "demo_scores.json").exists() or not (out / "result.h5ad").exists()))
    if names and not earlier and not overwrite:
        raise SpaconInputError(
            f"--out {str(out)!r} holds files that are not an earlier demo's; choose another "
            "--out or pass --overwrite.")


def _demo(out, seed, epochs, progress, threads) -> dict:
    from . import _keys
    from ._pipeline import RunConfig, run
    from .datasets import synthetic_brain
    from .io import save_npz, write_h5ad, write_text

    out = Path(out)
    inputs = out / "input"
    adata, conn = synthetic_brain(seed=seed)
    info = adata.uns["synthetic_brain"]
    write_h5ad(adata, inputs / "synthetic_brain.h5ad")
    save_npz(inputs / "connectome.npz", conn.matrix, conn.labels)
    config = RunConfig(
        adata=str(inputs / "synthetic_brain.h5ad"), connectivity=str(inputs / "connectome.npz"),
        unit_key="unit", section_key="section", radius=info["suggested_radius"],
        z_radius=info["suggested_z_radius"], threshold=DEMO_THRESHOLD, alpha=[0.0, 1.0],
        epochs=epochs, seed=seed, out=str(out), overwrite=True, progress=progress,
        threads=threads,
    )
    result, summary = run(config)
    truths = {"regions": "region", "modules": "module"}
    rows = baseline_rows(result, truths, [0.0, 1.0], seed)
    # the report and summary again, with the baselines beside SpaCon; the scores last (an
    # earlier demo's folder is known by them)
    from ._pipeline import REPORT, _jsonable
    from .report import write_report

    summary["baselines"] = baseline_summary(rows, truths, planted=True)
    write_report(result, out / REPORT, summary=summary)
    write_text(json.dumps(summary, indent=1, default=_jsonable), out / "summary.json")
    write_text(json.dumps(rows, indent=1), out / "demo_scores.json")
    print(f"\nspacon demo: synthetic brain, {result.n_obs} cells x {result.n_vars} genes, "
          f"{info['params']['n_sections']} sections, {info['params']['n_regions']} regions, "
          f"{info['params']['n_modules']} distant connectivity modules")
    training = summary["training"]
    steps = training.get("steps", training["epochs"])  # the schedule may stop within an epoch
    threads = training.get("threads")
    on = f" on {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    print(f"training: {training['mode']}, {steps} steps, "
          f"{summary['timings_seconds']['training']:.0f} s{on}\n")
    print(f"{'adjusted Rand index':<34}{'regions':>9}{'modules':>9}{'domains':>9}")
    for name, r in rows.items():
        print(f"{name:<34}{r['regions']['ari']:>9.3f}{r['modules']['ari']:>9.3f}"
              f"{r['n_domains']:>9d}")
    for alpha in (0, 1):  # how many domains the default chose, and why
        selection = result.uns[_keys.domain_for_alpha(alpha)].get("selection")
        if selection is not None:
            print(f"alpha {alpha}: {selection['reason']}")
    print(f"\nreport (open in a browser): {out}/report.html\nfigures: {out}/figures/  result: "
          f"{out}/result.h5ad  marker genes: {out}/markers.csv  scores: {out}/demo_scores.json"
          f"  input: {out}/input/")
    return rows
