"""The ``spacon`` command line: ``simulate``, ``prepare``, ``run``, ``embed``, ``predict``,
``domains``, ``evaluate``, ``demo``, ``report``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
import warnings
from pathlib import Path

from ._errors import SpaconInputError, TrainingInterrupted

# OpenMP threads waiting for work sleep at once instead of spinning: beside another busy
# process, a spinning thread takes the core its partner needs, and every parallel step waits
# (2-thread training beside one busy process: 150-159 s spinning, 40-43 s passive; idle, the
# same: benchmarks/bench_wait_policy.py). Read when torch loads OpenMP, so set here, before;
# a value the user set is kept. (In Python, set it before importing torch.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

logger = logging.getLogger("spacon")

DEVICE_HELP = "auto (default: cuda when a GPU is present, else cpu), cpu or cuda"

SIMULATE_README = """\
Synthetic brain written by `spacon simulate` (spacon {version}).

Files
  {name}.h5ad      {n_cells} cells x {n_genes} genes, raw negative-binomial counts in X
  connectome.npz   {n_units} x {n_units} unit-level connectivity (rows = sources), unit ids in
                   its `labels` array; obs['unit'] maps each cell to its unit. It implies
                   {implied:,} cell-cell edges, never materialised.

Ground truth (obs columns)
  cell_type  cell types, mixed everywhere (expression-only clustering finds these)
  region     spatially contiguous molecular regions  -> recovered at alpha = 0
  module     groups of spatially distant, strongly connected regions -> recovered at alpha = 1

Coordinates: obsm['spatial'] = (x, y{z}) in micrometres; {sections}.

Run spacon on it:
  spacon run --adata {h5ad_q} --connectivity connectome.npz --unit-key unit \\
      {section_flags}--radius {radius:.0f} --threshold 0.4 --alpha 0 1 --out result
--threshold 0.4 keeps the strong long-range connections and drops the weak short-range and
off-module ones.
"""


def _simulate(args) -> int:
    from . import __version__
    from .datasets import synthetic_brain
    from .io import save_npz, write_h5ad, write_text

    out = Path(args.out)
    if args.name.lower().endswith(".h5ad"):  # the name, not the file: x.h5ad is x
        args.name = args.name[:-len(".h5ad")]
    if not args.name or Path(args.name).name != args.name or args.name in (".", ".."):
        raise SpaconInputError(f"--name {args.name!r} must be a file name, without folders "
                               "(--out says where).")
    files = [out / f"{args.name}.h5ad", out / "connectome.npz", out / "README.txt"]
    _refuse_existing(files, args.overwrite)
    adata, conn = synthetic_brain(
        args.n_cells, args.n_genes, args.n_sections, n_regions=args.n_regions,
        n_modules=args.n_modules, n_cell_types=args.n_cell_types,
        cells_per_unit=args.cells_per_unit, long_range_degree=args.long_range_degree,
        seed=args.seed,
    )
    info = adata.uns["synthetic_brain"]
    write_h5ad(adata, files[0])
    save_npz(files[1], conn.matrix, conn.labels)
    write_text(
        SIMULATE_README.format(
            version=__version__, name=args.name, h5ad_q=shlex.quote(f"{args.name}.h5ad"),
            n_cells=adata.n_obs, n_genes=adata.n_vars,
            n_units=info["n_units"], implied=info["implied_cell_edges"],
            z=", z" if adata.obsm["spatial"].shape[1] == 3 else "",
            sections=(f"obs['section'] gives the section, ordered {info['section_order'][0]} "
                      f".. {info['section_order'][-1]}" if len(info["section_order"]) > 1 else
                      "one 2-D section"),
            section_flags=(f"--section-key section --z-radius {info['suggested_z_radius']:.0f} "
                           if len(info["section_order"]) > 1 else ""),
            radius=info["suggested_radius"],
        ),
        files[2],
    )
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _prepare_enigma(args) -> int:
    from ._prepare_enigma import prepare_enigma

    summary = prepare_enigma(args.data, args.out, stability=args.stability,
                             overwrite=args.overwrite)
    dropped = summary["dropped"]
    print(f"wrote {', '.join(summary['files'])}: {summary['n_regions']} regions x "
          f"{summary['n_genes']} genes"
          + (f" ({', '.join(dropped)} left out: no AHBA samples)" if dropped else "")
          + f"; the command to run is in {Path(args.out) / 'README.txt'}")
    return 0


def _prepare_abc(args) -> int:
    from ._prepare import prepare_abc

    summary = prepare_abc(
        args.abc_dir, args.connectome, args.out, dataset=args.dataset, matrix=args.matrix,
        sections=[s for s in args.sections.split(",") if s] if args.sections else None,
        drop_unregistered=args.drop_unregistered, max_distance=args.max_distance,
        hemisphere=args.hemisphere, threshold=args.threshold, top_k=args.top_k,
        overwrite=args.overwrite,
    )
    print(f"wrote {', '.join(summary['files'])}: {summary['n_cells']} cells in "
          f"{summary['n_units']} units, {summary['n_connections']} connections"
          + (f", {summary['n_dropped']} cells without a unit dropped" if summary["n_dropped"]
             else "")
          + (f", {summary['n_unregistered_dropped']} cells without CCF coordinates dropped"
             if summary["n_unregistered_dropped"] else ""))
    return 0


def _run(args) -> int:
    from ._pipeline import checkpoints_in, run

    config = _config(args)
    try:
        adata, summary = run(config)
    except SpaconInputError as err:
        out = Path(config.out or "")
        kept = checkpoints_in(out) if config.out else []
        if kept and "checkpoint" not in str(err) and not (out / "result.h5ad").is_file():
            # e.g. an error after training (the domains, the figures): the model is not lost
            raise SpaconInputError(
                f"{err} The training's checkpoint is kept in {_names(kept)}: fix what the "
                "error names and run the command again with --resume to go on from "
                "it.") from err
        raise
    if summary is None:  # a rank other than 0 of a distributed run: rank 0 reports
        return 0
    used = summary["parameters"]
    written = ["result.h5ad", "domains.csv", "summary.json"]
    written += ["markers.csv"] if (Path(config.out) / "markers.csv").is_file() else []
    written += [] if used["encoder"] == "smoothing" else ["model/"]
    written += ["figures/"] if summary["figures"] else []
    written += [] if used["no_report"] else ["report.html"]
    if used["encoder"] == "smoothing":  # said, as no training is shown
        params = summary.get("training", {})
        graphs = "the spatial graph" + (" (and of the connectome)" if used.get("connectivity")
                                         and not used.get("no_connectivity") else "")
        print(f"encoder: smoothing, nothing trained (expression PCs averaged over "
              f"{params.get('n_hops', '?')} hops of {graphs}"
              + ("; --encoder spacon trains one" if config.encoder == "auto" else "") + ")")
    print(f"wrote {', '.join(f'{config.out}/{name}' for name in written)}")
    _print_domains({"n_domains": summary["n_domains"], "truth": summary.get("truth_scores", {}),
                    "levels": summary.get("domain_levels", {}),
                    "level_counts": summary.get("domain_level_counts", {}),
                    "level_truth": summary.get("level_truth_scores", {}),
                    "alternatives": summary.get("domain_alternatives", {}),
                    "truth_key": config.truth,
                    "unscored": summary.get("truth_scores", {}).get("cells_without_truth", 0)},
                   config.out)
    if summary.get("baselines"):  # the run's domains beside the simple baselines'
        print(f"adjusted Rand index against {config.truth} (domains):")
        for name, row in summary["baselines"]["rows"].items():
            print(f"  {name:<34}{row[config.truth]:>7.3f} ({row['n_domains']})")
    return 0


def _config(args, exclude=()):
    from ._pipeline import RunConfig

    config = RunConfig.from_toml(args.config) if getattr(args, "config", None) else RunConfig()
    given = {
        k: v for k, v in vars(args).items()
        if v is not None and k not in ("command", "func", "config", "verbose", "quiet", "what",
                                       *exclude)
    }
    if "section_order" in given:
        given["section_order"] = [s for s in given["section_order"].split(",") if s]
    if getattr(args, "quiet", False):
        given["progress"] = False
    if given.get("no_connectivity") and "connectivity" not in given:
        given["connectivity"] = None  # the flag overrides a --config file's connectome
    # a flag overrides the config file's option of the same job: the spatial graph's size,
    # the number of domains or the resolution
    for flag, other in (("radius", "n_neighbors"), ("n_neighbors", "radius"),
                        ("resolution", "n_domains"), ("n_domains", "resolution")):
        if flag in given and other not in given:
            given[other] = None
    return config.updated(given, source="command line")


def _evaluate_connectivity(args) -> int:
    from ._evaluate import evaluate_connectivity
    from ._pipeline import no_empty_output_on_error

    config = _config(args, exclude=("folds", "holdout_key", "predictor", "mirror_axis",
                                    "midline", "nested_penalty"))
    if args.midline is not None and args.mirror_axis is None:
        raise SpaconInputError(f"--midline {args.midline:g} places the midline that "
                               "--mirror-axis crosses: give --mirror-axis too.")
    with no_empty_output_on_error(config.out):  # an input error leaves no folder behind
        metrics = evaluate_connectivity(config, folds=args.folds, holdout_key=args.holdout_key,
                                        predictor=args.predictor, mirror_axis=args.mirror_axis,
                                        midline=args.midline,
                                        nested_penalty=args.nested_penalty)
    print(f"wrote {config.out}/metrics.json and {config.out}/connectivity_prediction.png")
    print(f"predictor: {metrics['predictor']}; connected: {metrics['connected']['description']}")
    one = metrics["folds"] == 1  # one held-out fold: no spread to show beside the scores

    def spread(sd, digits: str) -> str:
        return "        " if one else f" ± {sd:{digits}}"

    print(f"{'method':<22}{'Pearson r':>12}{'AUROC':>16}{'MSE':>20}")
    for method, m in metrics["methods"].items():
        if m["pearson_r"] is None:  # the spatial null of folds of one unit each
            print(f"{method:<22}{'n/a':>12}{'n/a':>16}{'n/a':>20}")
            continue
        auroc = ("n/a" if m["auroc"] is None else
                 f"{m['auroc']:.3f}{spread(m['auroc_sd'], '.3f')}")
        folds = m.get("per_fold", {}).get("mse", [])
        scored = [v for v in folds if v is not None]
        some = "" if len(scored) == len(folds) else f"  ({len(scored)} of {len(folds)} folds)"
        print(f"{method:<22}{m['pearson_r']:>6.3f}{spread(m['pearson_r_sd'], '.3f')}"
              f"{auroc:>16}{m['mse']:>11.3g}{spread(m['mse_sd'], '.2g')}{some}")
    if one:
        print("(one held-out fold: no spread over folds)")
    print(_prediction_verdict(metrics))
    return 0


NULL_MARGIN = 0.02  # SpaCon's r within this of its spatial null's: no better than the null


def _prediction_verdict(metrics: dict) -> str:
    """The method that predicted best, and how SpaCon fared against its spatial null and
    with how much training (the command trains less per fold than the library's default).
    """
    r = {m: v["pearson_r"] for m, v in metrics["methods"].items() if v["pearson_r"] is not None}
    if not r:
        return "no method could be scored (see the warnings above)."
    best = max(r, key=r.get)
    line = f"best Pearson r: {best} ({r[best]:.3f})"
    if "spacon" in r and best != "spacon":
        line += f"; spacon {r['spacon']:.3f} is {r[best] - r['spacon']:.3f} below it"
    if "spacon" in r and "null" in r and r["spacon"] - r["null"] <= NULL_MARGIN:
        line += (f"; spacon is no better than its spatial null ({r['null']:.3f}): its "
                 "predictions carry little beyond their smoothness in space")
    training = metrics.get("settings", {}).get("training_per_fold", {})
    if "spacon" in r and "max_steps" in training:
        line += (f". spacon trained {training['max_steps']} steps per fold (--epochs N trains "
                 "N epochs; spacon.tl.predict_connectivity trains SpaCon.train's default)")
    return line + "."


def _evaluate_coupling(args) -> int:
    from ._evaluate import evaluate_coupling
    from ._pipeline import RunConfig, no_empty_output_on_error

    config = _config(args, exclude=("groupby", "pairs", "method", "n_perm"))
    if config.method != RunConfig.method:  # a --config's method: spacon run's domain calling
        raise SpaconInputError(
            f"--config sets method = {config.method!r}, which is spacon run's domain calling; "
            "the correlation of evaluate coupling is --method spearman or pearson.")
    with no_empty_output_on_error(config.out):  # an input error leaves no folder behind
        table = evaluate_coupling(config, groupby=args.groupby, pairs=args.pairs,
                                  method=args.method, n_perm=args.n_perm)
    print(f"wrote {config.out}/coupling.csv and {config.out}/coupling.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _demo(args) -> int:
    from ._demo import demo

    demo(args.out, seed=args.seed, epochs=args.epochs, progress=not args.quiet,
         threads=args.threads, overwrite=args.overwrite)
    return 0


def _refuse_existing(files, overwrite: bool) -> None:
    existing = [str(f) for f in files if Path(f).exists()]
    if existing and not overwrite:
        raise SpaconInputError(
            f"output exists already: {', '.join(existing)}; choose another --out or pass "
            "--overwrite."
        )


def _add_input_options(parser):
    """The input files and keys every command that reads data takes; returns their group."""
    data = parser.add_argument_group("data")
    data.add_argument("--adata", help="input .h5ad (counts in X unless --no-normalize)")
    data.add_argument("--connectivity", help="connectivity file (.npz/.npy/.csv/.tsv/.h5/.mat)")
    data.add_argument("--connectivity-key", help="array name inside an .npz/HDF5/.mat file; "
                      "a matrix of a 3-D array by its index: 'a[:, :, 0]' or MATLAB's 'a(:,:,1)'")
    data.add_argument("--unit-key", help="obs column mapping cells to connectivity units")
    data.add_argument("--spatial-key", help="obsm key of coordinates (default spatial)")
    data.add_argument("--no-normalize", action="store_true", default=None,
                      help="X is already log-normalised (e.g. a spacon run result.h5ad)")
    data.add_argument("--layer", help="the expression from adata.layers[LAYER] instead of X "
                      "(scanpy's layout: raw counts in 'counts', normalised or scaled X)")
    _add_fractional_counts(data)
    return data


def _add_fractional_counts(group) -> None:
    group.add_argument("--fractional-counts", action="store_true", default=None,
                       help="the counts are not whole numbers (ambient-corrected, e.g. by "
                       "CellBender or SoupX, or imputed): normalise them anyway")


def _add_evaluate_output(parser, result: str) -> None:
    """--config, --out and --overwrite of an ``evaluate`` command writing ``result``."""
    parser.add_argument("--config", help="TOML file with the data options")
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--overwrite", action="store_true", default=None,
                        help=f"replace an existing {result} in --out")


def _add_data_options(parser, training: bool = True, optional_connectome: bool = False,
                      epochs_default: str = "20 sampled, at most 500 steps / 500 full",
                      threads_help: str = "CPU threads, and processes of the domain selection"
                      ) -> None:
    """The data, graph and training options that `run` and `evaluate connectivity` share
    (`embed` takes them without the training options; `run` alone, whose connectome is
    optional, takes --no-connectivity).
    """
    data = _add_input_options(parser)
    if optional_connectome:
        data.add_argument("--no-connectivity", action="store_true", default=None,
                          help="no connectome: the spatial embedding alone (alpha 0)")
    data.add_argument("--section-key", help="obs column of the section of each cell")
    data.add_argument("--section-order", help="comma-separated section order, e.g. a,b,c")
    graphs = parser.add_argument_group("graphs")
    how = graphs.add_mutually_exclusive_group()
    how.add_argument("--radius", type=float, help="spatial neighbours within this distance")
    how.add_argument("--n-neighbors", "--knn", type=int, dest="n_neighbors",
                     help="k nearest spatial neighbours (default 10); --knn is its former name")
    graphs.add_argument("--z-radius", type=float, help="in-plane radius to adjacent sections "
                        "of a 3-D stack (default: none, the sections are separate samples)")
    graphs.add_argument("--threshold", type=float, help="keep connections above this value")
    graphs.add_argument("--top-k", type=int, help="keep each row's k strongest connections")
    graphs.add_argument("--negative", choices=["drop", "absolute", "error"],
                        help="negative connectivity values (default drop)")
    graphs.add_argument("--symmetrize", action="store_true", default=None,
                        help="make the connectome undirected")
    if not training:
        compute = parser.add_argument_group("compute")
        compute.add_argument("--device", help=DEVICE_HELP)
        compute.add_argument("--threads", type=int, help="CPU threads (default: OMP_NUM_THREADS, "
                             "else the idle usable CPUs)")
        return
    model = parser.add_argument_group("model and training")
    model.add_argument("--hidden-dims", type=int, nargs=3, help="encoder sizes (256 64 16)")
    model.add_argument("--epochs", type=int, help=f"epochs (default {epochs_default})")
    model.add_argument("--mode", choices=["auto", "full", "sampled"],
                       help="training mode: full-graph batches, sampled neighbourhoods, or auto "
                       "(default): full when the whole graph fits the memory budget")
    model.add_argument("--batch-size", type=int, help="seed cells per batch (64" + (
        "; the 120 steps per fold take 256 with fan-outs 10/5/5 unless --epochs or another "
        "--batch-size is given)" if "per fold" in str(epochs_default) else ")"))
    model.add_argument("--lr", type=float, help="learning rate (5e-3)")
    model.add_argument("--seed", type=_seed, help="random seed (0)")
    model.add_argument("--device", help=DEVICE_HELP)
    model.add_argument("--threads", type=int,
                       help=f"{threads_help} (default: OMP_NUM_THREADS, else the idle usable "
                       "CPUs)")


def _add_connectivity_code_option(parser) -> None:
    parser.add_argument(
        "--connectivity-code", type=int, metavar="K",
        help="also train the spatial embedding to predict the top K principal components of "
        "the training cells' connectivity rows (an auxiliary objective, off by default; the "
        "connectivity predicted for held-out or new tissue is mapped from that embedding)")


def _add_domain_options(parser, truth_kept: str = "printed, and kept in summary.json",
                        alphas: str = "0 1; 0 alone without a connectome") -> None:
    """How domains are called and scored: `run`, `embed` and `domains` share these
    (``truth_kept``: where a command puts the scores against ``--truth``).
    """
    dom = parser.add_argument_group("domains")
    dom.add_argument("--alpha", type=float, nargs="+",
                     help=f"alphas in [0, 1] ({alphas})")
    dom.add_argument("--method", choices=["gmm", "leiden", "louvain"],
                     help="domain calling: gmm (default), a Gaussian mixture whose number of "
                     "domains is chosen from the data; leiden or louvain, community detection "
                     "at --resolution")
    size = dom.add_mutually_exclusive_group()
    size.add_argument("--resolution", type=float, help="Leiden/Louvain resolution")
    size.add_argument("--n-domains", type=int, nargs="+",
                      help="fixed number of domains; several (4 8 16) write one obs column per "
                      "level of the domain tree, spacon_domain_alpha<A>_k<K>, next to the "
                      "automatically chosen number in spacon_domain_alpha<A>")
    dom.add_argument("--refine", type=int, help="refine by the majority of K spatial neighbours")
    dom.add_argument("--markers", type=int,
                     help="marker genes per domain at each alpha (spacon run: 10; spacon "
                     "domains: the run's; 0: none): partial least "
                     "squares of expression on each domain's membership (tl.marker_genes), "
                     "written to markers.csv, uns['spacon_markers'] and the report")
    dom.add_argument("--truth", help="obs column of known labels: domains are scored against "
                     f"it ({truth_kept}; spacon run also draws it)")


def _add_reuse_parsers(sub) -> None:
    """``spacon embed`` and ``spacon domains``: a trained model or a finished run, reused."""
    embed = sub.add_parser(
        "embed", help="embed new tissue with a trained model and call its domains",
        description="Preprocess NEW.h5ad as the model's training data were (raw counts "
        "normalised the same way, the spatial graph built with the same settings unless "
        "--radius/--n-neighbors are given, and its --connectivity cut as the training "
        "connectome was unless --threshold/--top-k are given), embed it with the model in "
        "--model DIR (the spatial encoder alone unless --connectivity is given), call domains "
        "and write OUT/result.h5ad, OUT/domains.csv and OUT/markers.csv.",
    )
    embed.add_argument("--model", required=True, help="a model directory (spacon run's DIR/model)")
    _add_data_options(embed, training=False)
    _add_domain_options(embed, truth_kept="printed; embed writes no summary.json")
    embed.add_argument("--out", help="output directory")
    embed.add_argument("--overwrite", action="store_true", default=None,
                       help="replace an existing result in --out")
    embed.set_defaults(func=_embed)
    _add_predict_parser(sub)
    domains = sub.add_parser(
        "domains", help="call domains again on a finished run, without training",
        description="Read --result DIR/result.h5ad (a spacon run output), call domains at "
        "--alpha with --n-domains (or the automatic number) and write OUT/result.h5ad (with "
        "the new columns), OUT/domains.csv, OUT/markers.csv, OUT/summary.json (the run's, with "
        "the new domains), OUT/figures/ and OUT/report.html.",
    )
    domains.add_argument("--result", required=True,
                         help="output directory of spacon run (or its result.h5ad)")
    _add_domain_options(domains, alphas="the run's")
    domains.add_argument("--seed", type=_seed, help="random seed (0)")
    domains.add_argument("--threads", type=int, help="processes of the domain selection "
                         "(default: the idle CPUs)")
    domains.add_argument("--out", help="output directory")
    domains.add_argument("--overwrite", action="store_true", default=None,
                         help="replace an existing result in --out")
    _add_output_options(domains)
    domains.set_defaults(func=_domains)


def _add_predict_parser(sub) -> None:
    """``spacon predict``: the connectivity of new tissue, from a trained model."""
    predict = sub.add_parser(
        "predict", help="predict the connectivity of new tissue with a trained model",
        description="Prepare NEW.h5ad as `spacon embed` does (raw counts normalised as for "
        "training, the spatial graph built with the training settings unless --radius/"
        "--n-neighbors are given), embed it with the spatial encoder of the model in --model "
        "DIR and map each cell to a connectivity profile over the training connectome's "
        "targets (ridge regression fit by `spacon run` on the training cells' connectivity "
        "rows, stored in the model folder's connectivity_map.npz, DIR/model/ of a run). "
        "Writes OUT/predicted_connectivity.npz "
        "(rows = cells, or units with --unit-key: the mean over their cells; columns = the "
        "targets' labels; arrays profiles, rows, columns) and OUT/result.h5ad (each cell's "
        "spatial embedding and, in obsm['X_connectivity_code'], its predicted profile on the "
        "top principal axes of the training profiles).",
    )
    predict.add_argument("--model", required=True,
                         help="a model directory (spacon run's DIR/model, or DIR)")
    data = predict.add_argument_group("data")
    data.add_argument("--adata", help="new tissue .h5ad (counts in X unless --no-normalize)")
    data.add_argument("--unit-key", help="obs column of units: predict one profile per unit")
    data.add_argument("--spatial-key", help="obsm key of coordinates (default spatial)")
    data.add_argument("--no-normalize", action="store_true", default=None,
                      help="X is already log-normalised")
    data.add_argument("--layer", help="the expression from adata.layers[LAYER] instead of X "
                      "(scanpy's layout: raw counts in 'counts', normalised X)")
    _add_fractional_counts(data)
    data.add_argument("--section-key", help="obs column of the section of each cell")
    data.add_argument("--section-order", help="comma-separated section order, e.g. a,b,c")
    graphs = predict.add_argument_group("spatial graph (default: as for training)")
    how = graphs.add_mutually_exclusive_group()
    how.add_argument("--radius", type=float, help="spatial neighbours within this distance")
    how.add_argument("--n-neighbors", "--knn", type=int, dest="n_neighbors",
                     help="k nearest spatial neighbours; --knn is its former name")
    graphs.add_argument("--z-radius", type=float, help="in-plane radius to adjacent sections "
                        "of a 3-D stack (default: as for training)")
    predict.add_argument("--device", help=DEVICE_HELP)
    predict.add_argument("--threads", type=int, help="CPU threads")
    predict.add_argument("--out", help="output directory")
    predict.add_argument("--overwrite", action="store_true", default=None,
                         help="replace an existing result in --out")
    predict.set_defaults(func=_predict)


def _embed(args) -> int:
    from ._embed import embed_new_tissue

    return _domains_from(args, embed_new_tissue, "model")


def _predict(args) -> int:
    from ._pipeline import no_empty_output_on_error
    from ._predict_new import describe, predict_new_tissue

    config = _config(args, exclude=("model",))
    with no_empty_output_on_error(config.out):
        adata, profiles = predict_new_tissue(config, args.model)
    print(describe(adata, profiles, config.out))
    return 0


def _domains(args) -> int:
    from ._recall import recall_domains

    return _domains_from(args, recall_domains, "result",
                         ("summary.json", "figures/", "report.html"))


def _domains_from(args, command, source: str, also=()) -> int:
    """Run ``command(config, args.<source>)`` and report the files and domains it wrote
    (``result.h5ad``, ``domains.csv`` and ``also``; no report with ``--no-report``, no
    figures with ``--figures none``).
    """
    from ._pipeline import no_empty_output_on_error

    config = _config(args, exclude=(source,))
    with no_empty_output_on_error(config.out):
        _, domains = command(config, getattr(args, source))
    written = ["result.h5ad", "domains.csv",
               *(["markers.csv"] if (Path(config.out) / "markers.csv").is_file() else []),
               *(f for f in also if not (f == "report.html" and config.no_report)
                 and not (f == "figures/" and config.figures == "none"))]
    print(f"wrote {', '.join(f'{config.out}/{name}' for name in written)}")
    _print_domains(domains, config.out if source == "result" else None)
    return 0


def _print_domains(domains: dict, out: str | None = None) -> None:
    """The domains per alpha (and level), with their scores against the truth; ``out``: the
    result folder that ``spacon domains --result`` can call other numbers of domains from.
    """
    from . import _keys
    from .tl._metrics import SCORE_NAMES as names
    def against(scores: dict) -> str:
        return ("; against the truth: " + ", ".join(f"{name} {scores[key]:.3f}"
                                                     for key, name in names.items())
                if scores else "")

    for alpha, count in domains["n_domains"].items():
        scores = domains["truth"].get(alpha, {})
        others = domains.get("alternatives", {}).get(alpha)
        key = _keys.domain_for_alpha(float(alpha))
        print(f"  alpha {alpha}: {_count_of_domains(count)} in obs['{key}']"
              + against(scores) + (f"; the scores before the charge for more domains also peak at "
                                   f"{_either(others)} domains"
                                   + (f" (spacon domains --result {out} --n-domains K)"
                                      if out else "") if others else ""))
    for alpha, levels in domains.get("levels", {}).items():
        for k, level in levels.items():
            count = domains.get("level_counts", {}).get(alpha, {}).get(k, int(k))
            asked = "" if count == int(k) else f" ({k} asked)"
            scores = domains.get("level_truth", {}).get(alpha, {}).get(k, {})
            print(f"  alpha {alpha}: {_count_of_domains(count)} in obs['{level}']{asked}"
                  + against(scores))
    if domains.get("unscored"):
        n = domains["unscored"]
        print(f"  {n} cell{'' if n == 1 else 's'} without a label in obs['{domains.get('truth_key')}'] "
              "(NaN) left out of the scores")


def _count_of_domains(count) -> str:
    """``1 domain``, ``4 domains``."""
    return f"{count} domain{'' if int(count) == 1 else 's'}"


def _either(numbers: list[int]) -> str:
    """``4``, ``4 or 10``, ``4, 10 or 13``."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _add_prepare_parser(sub) -> None:
    """``spacon prepare abc`` / ``enigma``: an atlas and a connectome into the files ``run``
    reads.
    """
    prepare = sub.add_parser("prepare", help="turn an atlas and a connectome into run inputs")
    what = prepare.add_subparsers(dest="what", required=True)
    abc = what.add_parser(
        "abc", help="ABC atlas MERFISH cells + an Allen connectome",
        description="Read the ABC atlas MERFISH files as published (cell metadata, CCF "
        "coordinates, parcellation, expression h5ad), assign each cell to a unit of the "
        "connectome (the nearest source voxel of the Allen voxel model, or its region in a "
        "region-level connectome), and write DIR/abc_merfish.h5ad, DIR/connectome.npz, "
        "DIR/run.toml (for spacon run --config) and DIR/README.txt with the `spacon run` "
        "command that fits.",
    )
    abc.add_argument("--abc-dir", required=True, help="ABC atlas download root")
    abc.add_argument("--connectome", required=True,
                     help="voxel model cache directory, Oh 2014 tracer directory, or a "
                     "labelled region-level connectivity file")
    abc.add_argument("--out", required=True, help="output directory")
    abc.add_argument("--dataset", default="Zhuang-ABCA-1",
                     help="Zhuang-ABCA-1 (default) or MERFISH-C57BL6J-638850")
    abc.add_argument("--matrix", choices=["raw", "log2"], default="raw",
                     help="expression matrix to read (raw counts)")
    abc.add_argument("--sections", help="comma-separated brain_section_label values (all)")
    abc.add_argument("--drop-unregistered", action="store_true",
                     help="drop cells without CCF coordinates instead of stopping")
    abc.add_argument("--max-distance", type=float, default=150.0,
                     help="µm from a cell to its voxel; farther cells are dropped (150)")
    abc.add_argument("--hemisphere", choices=["mirror", "none"], default="mirror",
                     help="mirror an ipsilateral connectome onto the other hemisphere (mirror)")
    abc.add_argument("--threshold", type=float, help="voxel graph: keep values above this")
    abc.add_argument("--top-k", type=_top_k, default=50,
                     help="voxel graph: keep each unit's k strongest targets (50; none: "
                          "--threshold alone)")
    abc.add_argument("--overwrite", action="store_true", help="replace existing output files")
    abc.set_defaults(func=_prepare_abc)
    enigma = what.add_parser(
        "enigma", help="human cortex: ENIGMA toolbox's HCP connectivity + AHBA expression",
        description="Read the ENIGMA toolbox's files as it ships them (HCP connectivity and "
        "region names, abagen-processed AHBA expression, the Desikan-Killiany labels of the "
        "fsaverage5 vertices and the two surfaces; found by name anywhere below --data) and "
        "write DIR/human_regions.h5ad (regions x genes, centroids in obsm['spatial']), "
        "DIR/functional.npz, DIR/structural.npz, DIR/run.toml and DIR/README.txt with the "
        "`spacon run` command that fits.")
    enigma.add_argument("--data", required=True,
                        help="folder holding the ENIGMA files (e.g. enigmatoolbox/datasets "
                        "with the AHBA table beside it)")
    enigma.add_argument("--out", required=True, help="output directory")
    enigma.add_argument("--stability", type=float, choices=[0.6, 0.8], default=0.6,
                        help="AHBA genes of differential stability above this (0.6: 1,645 "
                        "genes)")
    enigma.add_argument("--overwrite", action="store_true", help="replace existing output files")
    enigma.set_defaults(func=_prepare_enigma)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``spacon`` command."""
    parser = argparse.ArgumentParser(
        prog="spacon",
        description="Integrate spatial transcriptomics with brain connectivity (SpaCon).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"spacon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate", help="write a synthetic brain with ground truth",
        description="Write a synthetic brain (h5ad + unit-level connectome + README.txt) with "
        "planted cell types, regions and distant connectivity modules.",
    )
    sim.add_argument("--n-cells", type=int, default=6000, help="cells (6000)")
    sim.add_argument("--n-genes", type=int, default=300, help="genes (300)")
    sim.add_argument("--n-sections", type=int, default=12,
                     help="coronal sections (12); 1 gives a single 2-D section")
    sim.add_argument("--n-regions", type=int, default=16,
                     help="spatially contiguous molecular regions, obs['region'] (16)")
    sim.add_argument("--n-modules", type=int, default=4,
                     help="connectivity modules of distant regions, obs['module'] (4)")
    sim.add_argument("--n-cell-types", type=int, default=6,
                     help="cell types mixed everywhere, obs['cell_type'] (6)")
    sim.add_argument("--cells-per-unit", type=float, default=25.0,
                     help="sets the voxel size of the connectivity units: the cells a voxel "
                     "holds inside the brain (25); voxels at the brain's edge or split by a "
                     "region boundary hold fewer, so units hold fewer on average (about 11 in "
                     "the demo brain)")
    sim.add_argument("--long-range-degree", type=int, default=30,
                     help="long-range targets per unit within its module (30)")
    sim.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    sim.add_argument("--name", default="synthetic_brain",
                     help="base name of the .h5ad file (synthetic_brain)")
    sim.add_argument("--out", required=True, help="output directory")
    sim.add_argument("--overwrite", action="store_true", help="replace existing output files")
    sim.set_defaults(func=_simulate)

    _add_prepare_parser(sub)

    run = sub.add_parser(
        "run", help="train SpaCon on your data and call domains",
        description="Normalise, build the spatial and connectome graphs, train SpaCon, embed "
        "every cell and call domains at each --alpha. Writes DIR/result.h5ad, DIR/domains.csv, "
        "DIR/markers.csv, "
        "DIR/model/ (the trained model; none with --encoder smoothing), DIR/figures/*.png, "
        "DIR/report.html and DIR/summary.json. A TOML --config holds the same options "
        "(names with underscores); flags override it. The input file is never modified.",
    )
    _add_data_options(run, optional_connectome=True)
    encoder = run.add_argument_group("encoder")
    encoder.add_argument("--n-top-genes", type=int,
                         help="train on the N most variable genes (scanpy's "
                         "highly_variable_genes)")
    encoder.add_argument(
        "--encoder", choices=["auto", "spacon", "smoothing"],
        help="spacon: train the graph attention autoencoder; smoothing: no training, expression "
        "components averaged over each graph --n-hops times; auto (default): "
        "smoothing with --no-connectivity, where it finds layers far better, else spacon")
    encoder.add_argument("--n-hops", type=int, help="hops of averaging for --encoder smoothing (3)")
    encoder.add_argument(
        "--components", choices=["pca", "multispati"],
        help="what --encoder smoothing averages: pca (default), expression PCs; multispati, "
        "the components of the expression that vary most smoothly over the graph "
        "(tl.spatial_pca; with --n-hops 2 better layers with the true number of domains on "
        "some tissues, but a worse automatic number: see the README)")
    _add_connectivity_code_option(encoder)
    _add_domain_options(run)
    run.add_argument("--baselines", action="store_true", default=None,
                     help="with --truth: also call domains on smoothed expression (at each "
                     "alpha) and on expression alone, and score them against it beside the "
                     "run's (summary.json, the report, printed)")
    files = run.add_argument_group("configuration and output")
    files.add_argument("--config", help="TOML file with the same options, names with "
                       "underscores or dashes (its paths are read relative to the file's own "
                       "folder, so it runs from any working directory)")
    files.add_argument("--out", help="output directory")
    files.add_argument("--overwrite", action="store_true", default=None,
                       help="replace an existing result in --out")
    files.add_argument("--resume", action="store_true", default=None,
                       help="continue an interrupted run from its checkpoint(s) in DIR (same options, "
                       "same number of processes)")
    files.add_argument("--checkpoint-interval", type=float,
                       help="seconds between training checkpoints within an epoch (300)")
    files.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_output_options(run)
    run.set_defaults(func=_run)
    _add_reuse_parsers(sub)

    evaluate = sub.add_parser(
        "evaluate", help="measure what the embeddings predict",
        description="Evaluate SpaCon against simple baselines on held-out cells.",
    )
    what = evaluate.add_subparsers(dest="what", required=True)
    conn = what.add_parser(
        "connectivity", help="predict held-out cells' connectivity from expression",
        description="Hold out spatially contiguous folds (runs of sections, or k-means blocks "
        "without --section-key; connectivity units are never split), train SpaCon with their "
        "connectivity hidden, embed them with the spatial encoder, and predict each held-out "
        "cell's connectivity profile (ridge regression, or nearest training cells) from SpaCon's "
        "embedding, spatially smoothed expression PCs (no training), expression PCs, all genes, "
        "position, or expression + position, next to a spatially-aware null. Writes "
        "DIR/metrics.json (Pearson r, AUROC of the targets the "
        "connectome graph's --threshold/--top-k keep, and MSE per method, mean and sd over "
        "folds) and "
        "DIR/connectivity_prediction.png. Takes the data options of `spacon run`; each fold's "
        "model trains 120 steps unless --epochs is given.",
    )
    _add_data_options(conn, epochs_default="120 steps per fold", threads_help="CPU threads")
    folds = conn.add_mutually_exclusive_group()
    folds.add_argument("--folds", type=int, default=5, help="spatial folds (5)")
    folds.add_argument("--holdout-key",
                       help="obs column giving the folds (or a boolean column: True = held out)")
    conn.add_argument("--predictor", choices=["ridge", "knn"], default="ridge",
                      help="ridge regression, penalty by cross-validation inside the training "
                      "cells, or the mean of the 15 nearest training cells (ridge)")
    conn.add_argument("--mirror-axis", type=int, metavar="AXIS",
                      help="both hemispheres: the coordinate column (0 = x) across which the "
                      "brain is mirrored; each region and its mirror region go into the same "
                      "folds (off)")
    conn.add_argument("--midline", type=float, metavar="X",
                      help="where --mirror-axis crosses the midline (default: the middle of "
                      "the coordinates' range; 0 in MNI or fsaverage coordinates)")
    conn.add_argument("--nested-penalty", action="store_true",
                      help="choose ridge's penalty for SpaCon on models trained without each "
                      "inner fold too (about 5 times SpaCon's training; off)")
    _add_connectivity_code_option(conn)
    _add_evaluate_output(conn, "metrics.json")
    conn.set_defaults(func=_evaluate_connectivity)

    coup = what.add_parser(
        "coupling", help="correlate gene co-expression with connectivity, beyond distance",
        description="Pool cells into connectivity units (--unit-key), correlate the units' "
        "co-expression with their connectivity across pairs, raw and controlling for distance, "
        "with p-values from surrogate expression maps that keep spatial autocorrelation (and "
        "from free label shuffles, for comparison); overall and per --groupby domain. Writes "
        "DIR/coupling.csv and DIR/coupling.png.",
    )
    _add_input_options(coup)
    coup.add_argument("--groupby", help="obs column of domains for per-domain rows")
    coup.add_argument("--pairs", choices=["all", "connected"], default="all",
                      help="all unit pairs, or connected ones only (all)")
    coup.add_argument("--method", choices=["spearman", "pearson"], default="spearman")
    coup.add_argument("--n-perm", type=_positive, default=1000,
                      help="surrogates for p-values (1000; at least 1)")
    coup.add_argument("--seed", type=_seed, help="random seed (0)")
    _add_evaluate_output(coup, "coupling.csv")
    coup.set_defaults(func=_evaluate_coupling)

    demo = sub.add_parser(
        "demo", help="the main job on the embedded synthetic brain, scored against its truth",
        description="Simulate the default synthetic brain, run spacon on it and print the "
        "adjusted Rand index of its domains against the planted regions and connectivity "
        "modules, next to two baselines: expression PCs averaged over the spatial graph "
        "(alpha 0) or the connectome (alpha 1), and expression alone (PCA + Leiden).",
    )
    demo.add_argument("--out", default="spacon_demo", help="output directory (spacon_demo; "
                      "an earlier demo there is replaced)")
    demo.add_argument("--overwrite", action="store_true",
                      help="write into a non-empty --out that is not an earlier demo's")
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument("--epochs", type=int, default=None, help="training epochs (default: 500 steps)")
    demo.add_argument("--threads", type=int, help="CPU threads, and processes of the domain "
                      "selection (default: the idle CPUs)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    _add_report_command(sub)
    _verbose_anywhere(parser)
    return parser


def _verbose_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``-v`` follow the subcommand too (``spacon run ... -v``), as users type it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                # SUPPRESS: without -v here, the value given before the subcommand stands
                sub.add_argument("-v", "--verbose", action="store_true",
                                 default=argparse.SUPPRESS, help="log progress details")
                _verbose_anywhere(sub)


def _add_output_options(run) -> None:
    """The figures and the report that `run` and `domains` write."""
    out = run.add_argument_group("figures and report")
    out.add_argument("--figures", choices=["none", "basic", "all"],
                     help="PNG figures: none; basic (default): domain maps, trees, scores and "
                     "section divergence at every alpha, the 3-D view and UMAP at the first; "
                     "all: every figure at every alpha")
    out.add_argument("--no-report", action="store_true", default=None,
                     help="do not write DIR/report.html")


def _add_report_command(sub) -> None:
    rep = sub.add_parser(
        "report", help="write DIR/report.html, an interactive page of a result",
        description="Write DIR/report.html from DIR/result.h5ad and DIR/summary.json (what "
        "`spacon run` writes; it writes the report itself unless --no-report): the cells in 3-D "
        "coloured by domain at every alpha, per-section maps, domain sizes, the loss curve, the "
        "run's parameters, timings and versions, marker genes and connectivity-prediction "
        "metrics when the result has them. One file that works offline.",
    )
    rep.add_argument("directory", help="the --out directory of spacon run")
    rep.add_argument("--max-points", type=int, default=200_000,
                     help="draw at most this many cells, every domain in proportion (200000)")
    rep.add_argument("--out", help="the .html file to write (DIR/report.html)")
    rep.add_argument("--seed", type=_seed, default=0, help="seed of the sample of cells drawn")
    rep.set_defaults(func=_report)


def _report(args) -> int:
    from .report import report

    path = report(args.directory, out=args.out, max_points=args.max_points, seed=args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spacon`` command."""
    import matplotlib

    matplotlib.use("Agg")  # the command line writes figures to files, never to a screen
    parser = build_parser()
    args = parser.parse_args(argv)
    command = " ".join(filter(None, [args.command, getattr(args, "what", None)]))
    # under torchrun the ranks other than 0 say only errors (each rank's notes repeated rank
    # 0's), unless --verbose
    quiet_rank = (os.environ.get("RANK", "0") != "0" and not args.verbose
                  and os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1"))
    logging.basicConfig(  # what a run says by default reads as the command's own lines
        level=logging.INFO if args.verbose else logging.ERROR if quiet_rank else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s" if args.verbose else
        f"spacon {command}: %(message)s",
    )
    flags = _flags(parser)

    def say(text: str) -> None:
        print(f"spacon {command}: {_in_flags(text, flags)}", file=sys.stderr)

    shown = warnings.showwarning
    warnings.showwarning = lambda message, *rest, **kw: say(f"warning: {message}")
    from .io import _staged

    for folders in (_staged.started, _staged.published, _staged.created):
        folders.clear()  # this command's folders only
    from ._pipeline import COMMAND_LINE

    # the command as typed, for the summary and the report (reproducing a run)
    typed = COMMAND_LINE.set(shlex.join(["spacon", *(sys.argv[1:] if argv is None else argv)]))
    try:
        return args.func(args)
    except SpaconInputError as err:
        say(f"error: {err}")
        return 2
    except OSError as err:  # e.g. a full disk: the atomic writes left no partial file
        where = f" {err.filename}" if err.filename else ""
        say(f"error: could not read or write{where}: {err.strerror or err}; nothing partial "
            "was left behind.")
        return 1
    except TrainingInterrupted as err:
        if err.path is not None and hasattr(args, "resume"):
            hint = f"checkpoint saved to {err.path}; run the same command with --resume to continue"
        else:
            hint = f"spacon {command} cannot resume: run it again to start over"
        say(f"training interrupted at epoch {err.epoch}, batch {err.batch}; {hint}.")
        return 130
    except KeyboardInterrupt:
        say(_interrupted(getattr(args, "out", None), hasattr(args, "resume"),
                         staged=args.command in STAGED_COMMANDS))
        return 130
    finally:
        warnings.showwarning = shown
        COMMAND_LINE.reset(typed)


STAGED_COMMANDS = ("run", "domains", "prepare")  # their outputs move into place together (io._staged)


def _interrupted(out: str | None, resumable: bool, staged: bool) -> str:
    """What Ctrl-C left in the output folder: a run's or a domains call's outputs are moved
    into place together (:mod:`spacon.io._staged`), so all of this command's or none.
    """
    from ._pipeline import checkpoints_in
    from .io._staged import created, published, started

    # --out, or given in a --config: the folder the command was writing to, or made
    folder = Path(out) if out else (started[-1] if started else created[0] if created else None)
    if folder is None:
        return "interrupted; nothing was saved"
    if folder.resolve() in published:
        return f"interrupted after the results were written to {folder}"
    kept = checkpoints_in(folder)
    if resumable and kept:
        # after training (domains, figures): the trained model's checkpoint is kept
        return (f"interrupted; the trained model's checkpoint is kept in {_names(kept)}:"
                " run the same command with --resume to go on without training again")
    if (folder / "result.h5ad").is_file():
        if staged:
            return (f"interrupted; nothing of this run was saved ({folder} holds the earlier "
                    "results)")
        return (f"interrupted after {folder}/result.h5ad was written; the rest may be missing: "
                "run again with --overwrite for all of it")
    for made in created:  # innermost first: the folders this command made, left empty
        if made.is_dir() and not any(made.iterdir()):
            made.rmdir()
    return "interrupted; nothing was saved"


def _names(paths: list[Path]) -> str:
    """``DIR/checkpoint.pt``, or ``DIR/checkpoint.rank0.pt .. rank1.pt`` (one per process)."""
    if len(paths) == 1:
        return str(paths[0])
    return f"{paths[0]} .. {paths[-1].name} (one per process)"


def _top_k(text: str) -> int | None:
    """A number of strongest connections to keep per unit (>= 1), or ``none`` for no cut."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, or none, got {text!r}")
    return value


def _positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    """A seed: a whole number from 0 to 2**32 - 1 (NumPy's generators and scanpy's Leiden
    take no other).
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**32 - 1, got "
                                         f"{text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**32 - 1, got "
                                         f"{value}")
    return value


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python option name -> command-line flag, over every subcommand."""
    flags = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags.update(_flags(sub))
        else:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long:  # the first spelling is the current one (--n-neighbors, not --knn)
                flags[action.dest] = long[0]
    return flags


def _in_flags(text: str, flags: dict[str, str]) -> str:
    """Messages name options as the library takes them (``unit_key=``, ``overwrite=True``);
    say the flag.
    """
    text = re.sub(r"(?<![(,] )(?<!\()\b([a-z][a-z_]*)=True\b",
                  lambda m: flags.get(m.group(1), m.group(0)), text)
    # "n_cells=0", "figures='some'": the flag and its value
    text = re.sub(r"(?<![(,] )(?<!\()(?<![\w.])([a-z][a-z_]*)=(?=['\"\d-])",
                  lambda m: flags[m.group(1)] + " " if m.group(1) in flags else m.group(0), text)
    # "n_domains must be ...": the flag must be
    text = re.sub(r"(?<![\w.'\"-])([a-z][a-z_]*)(?= must be\b)",
                  lambda m: flags.get(m.group(1), m.group(0)), text)
    return re.sub(r"(?<![(,] )(?<!\()\b([a-z][a-z_]*)=(?=[\s,;:)]|\.(?!\.)|$)",
                  lambda m: flags.get(m.group(1), m.group(0)), text)


if __name__ == "__main__":
    sys.exit(main())
