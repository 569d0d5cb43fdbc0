"""``spacon domains``: domains of a finished run at other alphas or numbers, without training."""

from __future__ import annotations

import json
from pathlib import Path

from . import _keys
from ._errors import SpaconInputError
from ._pipeline import (
    DOMAINS_CSV,
    REPORT,
    RunConfig,
    add_truth_scores,
    call_domains,
    check_truth,
    checked,
    domain_table,
    draw_figures,
    drop_domain_calls,
    prepare_output,
    read_input,
    remove_stale_outputs,
    run_record,
    write_marker_table,
)
from .io._staged import staged_outputs


def recall_domains(config: RunConfig, result_dir: str | Path):
    """Call domains again on ``result_dir/result.h5ad`` (a ``spacon run`` output).

    The embeddings and graphs stored in the result are reused; the run's section and spatial
    keys are read from its ``summary.json``.

    Returns
    -------
    The annotated data and what :func:`~spacon._pipeline.call_domains` returns; writes
    ``OUT/result.h5ad``
    (the result with the new domain columns), ``OUT/domains.csv``, ``OUT/summary.json`` (the
    run's, with the new domains), ``OUT/figures/`` (``config.figures``) and, unless
    ``no_report``, ``OUT/report.html``: with ``OUT`` the run's own directory (and
    ``overwrite``) the run's files all describe the new domains (its figures of other domains
    are removed; its loss curve stays).
    """
    from .io import write_h5ad, write_text

    result_dir = Path(result_dir)
    result_file = result_dir / "result.h5ad"
    if result_dir.suffix == ".h5ad" and result_dir.is_file():  # the file (renamed, too)
        result_dir, result_file = result_dir.parent, result_dir
    if not result_dir.is_dir():
        raise SpaconInputError(f"--result {str(result_dir)!r} does not exist or is not a "
                               "directory: give the --out directory of spacon run (or the "
                               "result .h5ad in it).")
    if not result_file.exists():
        raise SpaconInputError(f"--result {str(result_dir)!r} holds no result.h5ad of spacon run.")
    adata = read_input(result_file)
    run = _run_parameters(result_dir)
    given = {k: run[k] for k in ("section_key", "spatial_key", "section_order")
             if run.get(k) is not None}
    if config.truth is None and run.get("truth") is not None:  # scored as the run was
        given["truth"] = run["truth"]
    if config.markers is None and run.get("markers") is not None:  # (--markers 0: none)
        given["markers"] = run["markers"]
    if config.alpha is None:  # the run's alphas (those it could call, without a connectome)
        given["alpha"] = [0.0, 1.0] if _keys.EMBEDDING_CON in adata.obsm else [0.0]
        if run.get("alpha"):
            given["alpha"] = [float(a) for a in run["alpha"]
                              if float(a) == 0 or _keys.EMBEDDING_CON in adata.obsm] or [0.0]
    config = checked(config.updated(given), adata_given=True)
    out = prepare_output(config.out, config.overwrite)
    check_truth(adata, config.truth)
    needs = {_keys.EMBEDDING_SPA} | ({_keys.EMBEDDING_CON} if max(config.alpha) > 0 else set())
    missing = sorted(needs - set(adata.obsm))
    if missing:
        raise SpaconInputError(
            f"the result has no {', '.join(missing)}: it was made without a connectome "
            "(trained without one, or embedded by spacon embed without --connectivity), so "
            "only --alpha 0 can be called.")
    summary = _run_summary(result_dir)
    drop_domain_calls(adata, keep=config.alpha)
    domains = call_domains(adata, config)
    with staged_outputs(out) as stage:  # an interrupted call leaves out as it was
        staging = stage.path
        figures = draw_figures(adata, config, staging / "figures")
        if (out / "figures" / "loss.png").is_file():  # the run's own (--out its folder): still true
            figures.append("figures/loss.png")
        write_h5ad(adata, staging / "result.h5ad")
        write_text(domain_table(adata, config, domains).to_csv(), staging / DOMAINS_CSV)
        markers = write_marker_table(adata, config, staging)
        summary.pop("baselines", None)  # the run's domains beside baselines: not these
        summary.update(  # this call's command; the run's, which trained the model, kept
            training_command=summary.get("command"), **run_record(),
            domains_from=str(result_dir.resolve()), n_domains=domains["n_domains"],
            domain_keys={f"{a:g}": _keys.domain_for_alpha(a) for a in config.alpha},
            domain_levels=domains["levels"], domain_level_counts=domains["level_counts"],
            domain_alternatives=domains["alternatives"], figures=figures)
        summary.setdefault("parameters", {}).update(
            alpha=list(config.alpha), method=config.method, n_domains=config.n_domains,
            resolution=config.resolution, refine=config.refine, markers=config.markers,
            truth=config.truth, figures=config.figures, no_report=config.no_report,
            # this call's seed and threads; "seed" stays the training's
            domain_seed=config.seed, domain_threads=config.threads)
        add_truth_scores(summary, config, domains)
        if not config.no_report:
            from .report import write_report

            write_report(adata, staging / REPORT, summary=summary)
        write_text(json.dumps(summary, indent=1, default=str), staging / "summary.json")
        # the run's figures of other alphas or domains (--out its folder) would contradict these
        stage.then(lambda: remove_stale_outputs(out, has_model=True, figures=figures,
                                                report=not config.no_report, markers=markers))
    return adata, domains


def _run_summary(result_dir: Path) -> dict:
    summary = result_dir / "summary.json"
    return json.loads(summary.read_text()) if summary.exists() else {}


def _run_parameters(result_dir: Path) -> dict:
    return _run_summary(result_dir).get("parameters", {})
