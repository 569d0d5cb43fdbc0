"""The main job behind ``spacon run`` and ``spacon demo``: graphs, training, domains, outputs."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import platform
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import _keys
from ._errors import SpaconInputError, SpaconWarning
from ._utils import (
    check_option,
    choose_threads,
    cpu_threads,
    highly_variable_marked,
    jsonable,
    labels_column,
    resolve_device,
)

logger = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Every option of ``spacon run``; a TOML config file holds the same names."""

    adata: str | None = None
    connectivity: str | None = None
    connectivity_key: str | None = None
    no_connectivity: bool = False
    unit_key: str | None = None
    spatial_key: str = "spatial"
    section_key: str | None = None
    section_order: list[str] | None = None
    radius: float | None = None
    n_neighbors: int | None = None
    z_radius: float | None = None
    threshold: float | None = None
    top_k: int | None = None
    negative: str = "drop"
    symmetrize: bool = False
    no_normalize: bool = False
    fractional_counts: bool = False  # normalise counts that are not whole numbers
    layer: str | None = None  # the expression from adata.layers[layer] instead of X
    n_top_genes: int | None = None
    encoder: str = "auto"
    n_hops: int = 3
    components: str = "pca"  # what --encoder smoothing averages: pca or multispati
    hidden_dims: list[int] = field(default_factory=lambda: [256, 64, 16])
    connectivity_code: int = 0  # > 0: the auxiliary objective (model.ConnectivityCodeObjective)
    alpha: list[float] | None = None  # default: 0 and 1, or 0 alone without a connectome
    method: str = "gmm"
    resolution: float | None = None
    n_domains: list[int] | None = None
    refine: int | None = None
    # marker genes per domain at each alpha (tl.marker_genes); 0: none; None: 10 (spacon
    # domains: the run's)
    markers: int | None = None
    epochs: int | None = None
    mode: str = "auto"
    batch_size: int = 64
    lr: float = 5e-3
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    out: str | None = None
    overwrite: bool = False
    resume: bool = False
    checkpoint_interval: float = 300.0
    progress: bool = True
    figures: str = "basic"
    no_report: bool = False
    truth: str | None = None
    baselines: bool = False  # with truth: score the smoothing and expression-only baselines too

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Read a TOML file whose keys are the option names (dashes or underscores).

        Relative paths (``adata``, ``connectivity``, ``out``) are read relative to the file's
        folder, so the file works from any working directory.
        """
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        if not path.exists() or path.is_dir():
            raise SpaconInputError(f"config file {str(path)!r} "
                                   f"{'is a folder' if path.is_dir() else 'does not exist'}.")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # (a BOM: Excel, Notepad)
        except Exception as err:
            raise SpaconInputError(f"config file {path.name!r} is not valid TOML: {err}") from err
        values = {k.replace("-", "_"): v for k, v in raw.items()}
        if "knn" in values:  # the option's former name
            values.setdefault("n_neighbors", values.pop("knn"))
        if "quiet" in values:  # the command line's --quiet
            quiet = values.pop("quiet")
            if not isinstance(quiet, bool):
                raise SpaconInputError(f"{path.name}: quiet must be true or false, got "
                                       f"{quiet!r}.")
            values.setdefault("progress", not quiet)
        for name in PATH_OPTIONS:
            if isinstance(values.get(name), str):
                values[name] = _relative_to(path, name, values[name])
        return cls().updated(values, source=path.name)

    def updated(self, values: dict, source: str = "options") -> RunConfig:
        """A copy with ``values`` applied, each checked against the option's type."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            import difflib

            settable = sorted(set(known) - {"progress"} | {"quiet"})  # (a file's quiet sets it)
            close = {name: difflib.get_close_matches(name, settable, n=1) for name in unknown}
            meant = "; ".join(f"{name}: did you mean {match[0]}?"
                              for name, match in close.items() if match)
            raise SpaconInputError(
                f"{source}: unknown option(s) {', '.join(unknown)}"
                + (f" ({meant})" if meant else "")
                + f"; valid options are {', '.join(settable)}."
            )
        data = asdict(self)
        for name, value in values.items():
            data[name] = _coerce(name, value, getattr(self, name), known[name].type, source)
        return RunConfig(**data)


# options naming files or folders: in a config file, relative to the file's own folder
PATH_OPTIONS = ("adata", "connectivity", "out")


def _relative_to(config: Path, name: str, value: str) -> str:
    """``value`` of option ``name`` in the config file ``config``, read relative to the file's
    folder (as a project file's paths are), so the file works from any working directory.

    Files written by ``spacon prepare`` before 27 Nov named their inputs relative to the
    folder it ran in: such a path that exists only there is kept, with a warning.
    """
    written = Path(value).expanduser()
    if written.is_absolute():
        return str(written)
    beside = config.parent / written
    if name != "out" and not beside.exists() and written.exists():
        warnings.warn(
            f"{config.name}: {name} = {value!r} is read relative to the working directory, "
            f"where it exists; paths in a config file are relative to the file's folder "
            f"({config.parent.as_posix()}/), so write it as {_relative_name(written, config)!r}.",
            SpaconWarning, stacklevel=3)
        return value
    return str(beside)


def _relative_name(target: Path, config: Path) -> str:
    """``target`` (relative to the working directory) as the config file should write it."""
    return Path(os.path.relpath(target.resolve(), config.parent.resolve())).as_posix()


def _of_kind(value, kind) -> bool:
    """Whether a list entry is a ``kind`` as written: no booleans for numbers, whole numbers
    for integers (4.5 is no number of domains), finite numbers.
    """
    if kind is str:  # (section names may be written as numbers)
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and (kind is float or float(value).is_integer())


def _coerce(name, value, default, annotation, source):
    kind = str(annotation)
    if value is None:
        return None
    ok = True
    if "list" in kind:
        inner = float if "float" in kind else int if "int" in kind else str
        if inner is str and isinstance(value, str):  # "s001,s000", written as the flag takes it
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        ok = isinstance(value, list) and all(_of_kind(v, inner) for v in value)
        if ok:
            value = [inner(v) for v in value]
    elif kind.startswith("bool"):
        ok = isinstance(value, bool)
    elif "int" in kind and "float" not in kind:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "float" in kind:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif "str" in kind:
        ok = isinstance(value, str)
    values = value if isinstance(value, list) else [value]
    if not ok and ("float" in kind or "int" in kind) and any(
            isinstance(v, float) and not math.isfinite(v) for v in values):
        raise SpaconInputError(f"{source}: option {name!r} is {value!r}; it needs finite "
                               "numbers.")
    if not ok:
        raise SpaconInputError(
            f"{source}: option {name!r} has the wrong type ({type(value).__name__}: {value!r}); "
            f"expected {kind.replace('typing.', '')}."
        )
    return value


CHECKPOINT = "checkpoint.pt"
DOMAINS_CSV = "domains.csv"
MARKERS_CSV = "markers.csv"
REPORT = "report.html"
# none; basic: each kind of figure once (domain maps at every alpha); all: every figure at every alpha
FIGURE_LEVELS = ("none", "basic", "all")
# "spacon" trains the graph attention autoencoder; "smoothing" averages expression components
# over the graphs instead (tl.smoothed_expression): no training, the same obsm keys, the same domains
# "auto": smoothing without a connectome (where it beats the trained spatial encoder by far,
# see the README's "Learned encoders against plain graph smoothing"), spacon with one
ENCODERS = ("auto", "spacon", "smoothing")


def checkpoint_files(world_size: int = 1) -> list[str]:
    """Checkpoint file names of a run: one, or one per rank of a distributed run."""
    if world_size == 1:
        return [CHECKPOINT]
    stem, suffix = Path(CHECKPOINT).stem, Path(CHECKPOINT).suffix
    return [f"{stem}.rank{r}{suffix}" for r in range(world_size)]


def checkpoints_in(out: Path) -> list[Path]:
    """The checkpoint files in ``out``, of a one-process run or of each rank of a distributed
    one (whatever the number of processes now).
    """
    stem, suffix = Path(CHECKPOINT).stem, Path(CHECKPOINT).suffix
    if not Path(out).is_dir():
        return []
    return sorted(p for p in Path(out).glob(f"{stem}*{suffix}") if p.name == CHECKPOINT
                  or re.fullmatch(rf"{re.escape(stem)}\.rank\d+{re.escape(suffix)}", p.name))


def other_launch(out: Path, world_size: int) -> int | None:
    """How many processes wrote the checkpoints in ``out`` where that cannot be this run's
    ``world_size`` (one process's file against ranks' files, or a rank beyond this run's
    last; at least that many where a higher rank's file is missing), else ``None``.
    """
    names = [p.name for p in checkpoints_in(out)]
    ranks = [int(re.search(r"rank(\d+)", n)[1]) for n in names if n != CHECKPOINT]
    if world_size == 1 and ranks and CHECKPOINT not in names:
        return max(ranks) + 1
    if world_size > 1 and not ranks and CHECKPOINT in names:
        return 1
    if ranks and max(ranks) + 1 > world_size:
        return max(ranks) + 1
    return None


def _launch(processes: int) -> str:
    return ("without torchrun (one process)" if processes == 1 else
            f"under torchrun --nproc-per-node {processes}")


def prepare_output(out: str | Path, overwrite: bool, resume: bool = False,
                   world_size: int = 1) -> Path:
    """Check that ``out`` can take a run's results before any work is done.

    A directory that holds anything but a checkpoint to resume is refused unless
    ``overwrite``; ``resume`` needs the checkpoint(s) of an unfinished run (one per rank of
    a run over ``world_size`` processes).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpaconInputError(f"--out {str(out)!r} exists and is not a directory.")
    names = checkpoint_files(world_size)
    missing = [n for n in names if not (out / n).exists()]
    written_by = other_launch(out, world_size)
    if resume and missing and written_by is not None:
        raise SpaconInputError(
            f"--resume: the checkpoints in {out} were written by {written_by} process"
            f"{'es' if written_by > 1 else ''} and this run has {world_size}: resume "
            f"{_launch(written_by)}, as the run was started.")
    if resume and missing:
        finished = (out / "result.h5ad").exists()
        raise SpaconInputError(
            f"--resume: {out} holds no {', '.join(missing)} to continue from"
            + ("; its run finished (result.h5ad is there): nothing to resume. To run again "
               "into it, pass --overwrite instead of --resume, or choose another --out."
               if finished else "; run without --resume to start a new run.")
        )
    if (out / "result.h5ad").exists() and not overwrite:
        raise SpaconInputError(
            f"{out}/result.h5ad exists already; choose another --out or pass --overwrite."
        )
    from .io._staged import created, stale_staging

    leftover = stale_staging(out)  # of a command killed while writing: never a result
    if (not resume and not overwrite and out.is_dir()
            and any(p not in leftover for p in out.iterdir())):
        hint = ("" if not checkpoints_in(out) else " It holds an interrupted run's checkpoint: "
                "pass --resume to continue it" + (
                    "." if written_by is None else f", {_launch(written_by)}."))
        raise SpaconInputError(
            f"--out {str(out)!r} exists and is not empty; choose another --out or pass "
            f"--overwrite.{hint}"
        )
    try:
        for folder in leftover:
            shutil.rmtree(folder)
        missing = [p for p in (out, *out.parents) if not p.exists()]  # innermost first
        out.mkdir(parents=True, exist_ok=True)
        created.extend(p.resolve() for p in missing)
        probe = out / f".spacon-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise SpaconInputError(f"cannot write to --out {str(out)!r}: {err.strerror}.") from err
    return out


def check_inputs_not_outputs(config: RunConfig, files, folders=()) -> None:
    """Refuse an input file (``--adata``, ``--connectivity``) that a command would write over,
    e.g. ``--adata OUT/result.h5ad`` with ``--overwrite``: the input files are never written.
    ``files`` and ``folders`` are the names the command writes in ``--out``.
    """
    if config.out is None:
        return
    out = Path(config.out).resolve()
    for option, path in (("--adata", config.adata), ("--connectivity", config.connectivity)):
        if path is None:
            continue
        where = Path(path).resolve()
        same = any((out / f).exists() and where.exists() and os.path.samefile(where, out / f)
                   for f in files)  # e.g. RESULT.h5ad on a case-insensitive file system
        if (same or where in {out / f for f in files}
                or any(out / f in where.parents for f in folders)):
            raise SpaconInputError(
                f"{option} {path} is where the results go (--out {config.out}); the input "
                "would be overwritten: move it or choose another --out.")


def check_out_is_not_the_model(config: RunConfig, model_dir: Path) -> None:
    """Refuse ``--out`` in the model's own folder or its run's: the new tissue's
    ``result.h5ad`` would replace the run's, beside the run's domains and summary.
    """
    if config.out is None:
        return
    out, model_dir = Path(config.out).resolve(), Path(model_dir).resolve()
    run = model_dir.parent if (model_dir.parent / "result.h5ad").exists() else None
    if out in (model_dir, run) or model_dir in out.parents:
        raise SpaconInputError(
            f"--out {config.out} is the folder of the model (--model {model_dir}) or of the run "
            "that trained it: the new tissue's results would mix with the run's; choose "
            "another --out.")


def read_input(path: str | Path, layer: str | None = None):
    """Read the input h5ad into memory (the file itself is never written); with ``layer``,
    its ``layers[layer]`` is the expression (``X``) from here on (``--layer``).
    """
    adata = _read_h5ad(path)
    if layer is not None:
        if layer not in adata.layers:
            raise SpaconInputError(
                f"--layer {layer}: {Path(path).name} has no layers[{layer!r}] (its layers: "
                f"{', '.join(map(repr, adata.layers)) or 'none'}).")
        adata.X = adata.layers[layer].copy()
    return adata


def _read_h5ad(path: str | Path):
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise SpaconInputError(f"--adata {str(path)!r} does not exist.")
    if path.is_dir():
        raise SpaconInputError(f"--adata {str(path)!r} is a folder: give the .h5ad file in it.")
    try:
        return ad.read_h5ad(path)
    except Exception as err:
        raise SpaconInputError(f"could not read {path.name!r} as an h5ad file: {err}") from err


def normalize_unless_asked_not_to(adata, config: RunConfig, consequence: str) -> None:
    """Normalise, or with --no-normalize check the expression and warn, once and in the
    command's words, when it looks like raw counts (``consequence``: what counts would do).
    """
    from . import pp
    from .pp._normalize import warn_if_counts, warn_zero_genes

    if not config.no_normalize:
        pp.normalize(adata, integer_counts=not config.fractional_counts)
        return
    pp.check_expression(adata)
    warn_zero_genes(adata)
    warn_if_counts(adata, None, consequence, advice="drop --no-normalize to have it normalised")
    warn_other_depth(adata)


def warn_other_depth(adata, target_sum: float = 1e4) -> None:
    """Say when ``X`` was log-normalised to another depth than spacon's (scanpy's default
    ``normalize_total`` takes the median cell's): the domains depend on it.
    """
    from .model._data import TOTAL_RATIO, normalized_total

    if _keys.NORMALIZE in adata.uns:  # spacon.pp.normalize's own target, chosen by the user
        return
    total = normalized_total(adata)
    if total is None or 1 / TOTAL_RATIO <= total / target_sum <= TOTAL_RATIO:
        return
    counts = (f" --layer {_keys.COUNTS} normalises the counts in layers[{_keys.COUNTS!r}] as "
              "spacon does." if _keys.COUNTS in adata.layers else "")
    logger.warning(
        "X was normalised to %.4g counts per cell before log1p (scanpy's normalize_total takes "
        "the median cell's by default); spacon normalises to %g, and its domains depend on "
        "it: on the STARmap slices, ARI 0.39 / 0.51 / 0.87 at their median depths against "
        "0.85 / 0.58 / 0.86 at 1e4 (BZ14 / BZ9 / BZ5).%s", total, target_sum, counts)


def normalize_and_spatial_graph(adata, config: RunConfig) -> RunConfig:
    """Normalise (unless ``no_normalize``) and build the spatial graph the config asks for."""
    from . import pp

    normalize_unless_asked_not_to(adata, config, "spacon models log-normalised expression")
    if config.radius is None and config.n_neighbors is None:
        from .pp._spatial import DEFAULT_N_NEIGHBORS

        config = config.updated({"n_neighbors": DEFAULT_N_NEIGHBORS})
        logger.info("no --radius or --n-neighbors: using %d nearest neighbours",
                    DEFAULT_N_NEIGHBORS)
    pp.spatial_graph(
        adata, radius=config.radius, n_neighbors=config.n_neighbors, spatial_key=config.spatial_key,
        section_key=config.section_key, section_order=config.section_order,
        z_radius=config.z_radius,
    )
    return config


@contextlib.contextmanager
def counts_warned_once():
    """Silence the library's raw-count and unlogged warnings: the run has given its own, once,
    when it read the data (they would repeat it with Python advice).
    """
    from ._utils import HIGHLY_VARIABLE_WARNING
    from .pp._normalize import COUNTS_WARNING, UNLOGGED_WARNING

    with warnings.catch_warnings():
        for text in (COUNTS_WARNING, UNLOGGED_WARNING, HIGHLY_VARIABLE_WARNING):
            warnings.filterwarnings("ignore", message=f".*{text}", category=SpaconWarning)
        yield


def run(config: RunConfig, adata=None):
    """Run the whole job; return the annotated data and the summary written to summary.json.

    Launched by ``torchrun`` with several processes, training is data-parallel and rank 0
    alone embeds, calls domains and writes the results (the other ranks return no summary).
    """
    with no_empty_output_on_error(config.out):
        return _run(config, adata)


@contextlib.contextmanager
def no_empty_output_on_error(out) -> Iterator[None]:
    """Remove ``out`` again (and the folders made above it) when an error or Ctrl-C stops a
    command after it created the directory but before anything was written there.
    """
    made = [] if out is None else [p for p in (Path(out), *Path(out).parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in made:  # innermost first: --out and the folders made above it
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _run(config: RunConfig, adata=None):
    from .io import read_connectivity
    from .model._distributed import init_from_environment

    config = checked(config, adata_given=adata is not None)
    # under torchrun every rank trains on its shard; rank 0 alone writes the results
    group = init_from_environment(config.device)
    main_rank, world_size = group is None or group[0] == 0, 1 if group is None else group[1]
    out = _prepared_output(config, group, main_rank, world_size)
    timer = Timer()
    if config.baselines and config.truth is None:
        raise SpaconInputError("--baselines scores the baselines' domains against --truth: give "
                               "the obs column of known labels.")
    if adata is None:
        adata = read_input(config.adata, config.layer)
    check_truth(adata, config.truth)
    check_refine(adata, config.refine)
    too_many = [k for k in config.n_domains or [] if k > adata.n_obs]
    if too_many:  # now, not after training
        raise SpaconInputError(f"--n-domains {too_many[0]} is more than the {adata.n_obs} cells.")
    connectivity = None
    if not config.no_connectivity and config.connectivity is not None:
        connectivity = read_connectivity(config.connectivity, key=config.connectivity_key)
    timer.lap("load")
    adata, config = build_graphs(adata, config, connectivity, timer)
    model, workers, threads = None, None, config.threads
    if config.encoder == "spacon":
        if (main_rank and config.method == "gmm" and not config.resume
                and resolve_device(config.device).type != "cpu"):
            # the CPUs are idle while a GPU trains: start the domains' processes meanwhile,
            # after counting the idle CPUs for training (the starting processes keep some busy)
            from .tl._domains import start_selection_workers

            threads = choose_threads(config.threads)
            workers = start_selection_workers(adata.n_obs, config.threads)
        model = train(adata, config, out, progress=config.progress and main_rank,
                      connectivity=connectivity, threads=threads)
        timer.lap("training")
    if not main_rank:
        return adata, None
    with cpu_threads(choose_threads(config.threads or model and model.train_params["threads"])):
        if model is None:
            with counts_warned_once():
                smoothing_embeddings(adata, config)
        else:
            model.embed(device=config.device)
            if connectivity is not None:
                fit_connectivity_map(model, adata, connectivity, config)
        timer.lap("embedding")
        if workers is not None:
            workers.join()
        domains = call_domains(adata, config)
        timer.lap("domains")
        if config.baselines:  # beside the run's own domains, against the same truth
            from ._baselines import baseline_rows, baseline_summary

            truths = {config.truth: config.truth}
            domains["baselines"] = baseline_summary(baseline_rows(
                adata, truths, config.alpha, config.seed, smoothing=model is not None,
                encoder="spacon" if model is not None else "smoothing encoder",
                options=baseline_options(config)), truths)
            timer.lap("baselines")
        summary = write_outputs(adata, config, out, model, domains, timer, world_size)
    return adata, summary


def baseline_options(config: RunConfig) -> dict:
    """The run's smoothing and domain options, for its smoothing baseline's domains: called
    as the run's own (``--n-domains`` when it gives one number, ``--method``, ``--resolution``,
    ``--refine``; ``--n-hops`` and ``--components``).
    """
    wanted = sorted(set(config.n_domains or []))
    options = {"smoothing": {"n_hops": config.n_hops, "components": config.components},
               "domains": {"method": config.method, "resolution": config.resolution,
                           "n_domains": wanted[0] if len(wanted) == 1 else None,
                           "n_jobs": config.threads}}
    if config.refine:
        options["refine"] = {"k": config.refine, "spatial_key": config.spatial_key,
                             "section_key": config.section_key}
    return options


def fit_connectivity_map(model, adata, connectivity, config: RunConfig) -> None:
    """Fit the model's map from the spatial embedding to connectivity (saved with the model,
    for ``spacon predict``); a connectome it cannot be fit on is reported, not fatal.
    """
    try:
        model.fit_connectivity_map(connectivity, unit_key=config.unit_key,
                                   embedding=adata.obsm[_keys.EMBEDDING_SPA],
                                   negative=config.negative, seed=config.seed)
    except (SpaconInputError, MemoryError) as err:
        logger.warning("no connectivity map saved with the model (spacon predict will refuse "
                       "it): %s", err or "out of memory")


def check_normalize_options(config: RunConfig) -> None:
    """--fractional-counts and --no-normalize contradict each other."""
    if config.fractional_counts and config.no_normalize:
        raise SpaconInputError("--fractional-counts asks to normalise counts that are not whole "
                               "numbers, --no-normalize not to normalise: drop one.")


def checked(config: RunConfig, adata_given: bool = False) -> RunConfig:
    """Check the options that need no data, before anything runs; settle the alphas."""
    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    if not adata_given and config.adata is None:
        raise SpaconInputError("--adata IN.h5ad is required.")
    if not config.no_connectivity and config.connectivity is None and not adata_given:
        raise SpaconInputError(
            "--connectivity FILE is required (or --no-connectivity to use the spatial graph "
            "alone)."
        )
    if config.no_connectivity and config.connectivity is not None:
        raise SpaconInputError(
            f"--connectivity {config.connectivity} and --no-connectivity contradict each other "
            "(from the command line or the config file): drop one.")
    if config.threads is not None and config.threads < 1:
        raise SpaconInputError(f"--threads must be >= 1, got {config.threads}.")
    if config.section_order is not None and config.section_key is None:
        raise SpaconInputError("--section-order orders the sections of --section-key: give "
                               "--section-key (the obs column of each cell's section) too.")
    resolve_device(config.device)  # 'gpu', or cuda without a GPU: said before data are read
    check_normalize_options(config)
    check_option("figures", config.figures, FIGURE_LEVELS)
    if config.alpha is None:
        config = config.updated({"alpha": [0.0] if config.no_connectivity else [0.0, 1.0]})
    check_option("encoder", config.encoder, ENCODERS)
    check_option("components", config.components, ("multispati", "pca"))
    if config.encoder == "auto":
        config = config.updated({"encoder": "smoothing" if config.no_connectivity else "spacon"})
    if config.encoder == "spacon" and config.components != "pca":
        raise SpaconInputError(
            f"--components {config.components} applies to --encoder smoothing; SpaCon trains on "
            "the expression itself.")
    for a in config.alpha:
        if not 0 <= a <= 1:
            raise SpaconInputError(f"--alpha values must be in [0, 1], got {a:g}.")
    named = [_keys.domain_for_alpha(a) for a in config.alpha]  # obs columns, by alpha:g
    alike = sorted({n for n in named if named.count(n) > 1})
    if alike and len(set(config.alpha)) > len(set(named)):
        raise SpaconInputError(
            f"--alpha {' '.join(repr(a) for a in config.alpha)}: some differ only beyond six "
            f"significant digits and would share one column ({', '.join(alike)}); give "
            "alphas that differ within six digits.")
    if config.no_connectivity and any(a > 0 for a in config.alpha):
        raise SpaconInputError(
            f"--alpha {' '.join(f'{a:g}' for a in config.alpha)} mixes in the connectivity "
            "embedding, but --no-connectivity gives a spatial embedding alone (no connectome "
            "graph): use --alpha 0.")
    if config.connectivity_code < 0:
        raise SpaconInputError(
            f"--connectivity-code must be >= 0 (0: off), got {config.connectivity_code}.")
    if config.n_top_genes is not None and config.n_top_genes < 2:
        raise SpaconInputError(f"--n-top-genes must be >= 2, got {config.n_top_genes}.")
    # the domain options too: refused now, not after training
    check_option("method", config.method, ("gmm", "leiden", "louvain"))
    if not config.alpha:
        raise SpaconInputError("--alpha needs at least one value in [0, 1].")
    if config.n_domains is not None and any(k < 1 for k in config.n_domains):
        raise SpaconInputError(f"--n-domains must be >= 1, got "
                               f"{' '.join(str(k) for k in config.n_domains)}.")
    if config.markers is None:
        config = config.updated({"markers": DEFAULT_MARKERS})
    if config.markers < 0:
        raise SpaconInputError(f"--markers must be >= 0 (0: none), got {config.markers}.")
    if config.refine is not None and config.refine < 1:
        raise SpaconInputError(f"--refine K takes the majority of K >= 1 spatial neighbours, "
                               f"got {config.refine}.")
    if not 0 <= config.seed < 2**32:
        raise SpaconInputError(f"--seed must be a whole number from 0 to 2**32 - 1, got "
                               f"{config.seed}.")
    if config.resolution is not None:
        if config.method == "gmm":
            raise SpaconInputError(
                f"--resolution {config.resolution:g} is Leiden's and Louvain's: add --method "
                "leiden (or louvain), or drop it (gmm chooses the number of domains itself).")
        if config.n_domains:
            raise SpaconInputError("--resolution and --n-domains contradict each other (with "
                                   "--n-domains the resolution is searched): drop one.")
        if not config.resolution > 0:
            raise SpaconInputError(f"--resolution must be > 0, got {config.resolution:g}.")
    return _without_unused_options(config)


# what only training uses, and what only the smoothing encoder uses: given for the other
# encoder, they would be recorded in summary.json as if they had been used
TRAINING_OPTIONS = ("epochs", "lr", "hidden_dims", "mode", "batch_size", "connectivity_code")
SMOOTHING_OPTIONS = ("n_hops",)
# what only a connectome uses
CONNECTOME_OPTIONS = ("connectivity_key", "unit_key", "threshold", "top_k", "negative",
                      "symmetrize", "connectivity_code")


def _without_unused_options(config: RunConfig) -> RunConfig:
    """Say which options given the run does not use (of the other encoder, or of a connectome
    without one); record all it does not use as unused (None).
    """
    # the smoothing baseline of --baselines averages as --n-hops says, beside a trained run
    unused = (TRAINING_OPTIONS if config.encoder == "smoothing"
              else () if config.baselines else SMOOTHING_OPTIONS)
    if config.encoder == "smoothing":
        why = ("the smoothing encoder" + (" (the default without a connectome)"
                                         if config.no_connectivity else "")
               + " trains nothing; --encoder spacon trains with them")
    else:
        why = "only --encoder smoothing averages over hops (SpaCon's encoders are trained)"
    config = _unused(config, unused, why)
    if config.no_connectivity:
        config = _unused(config, [n for n in CONNECTOME_OPTIONS if n not in unused],
                         "they shape the connectome graph, and this run has no connectome")
    return config


def _unused(config: RunConfig, names, why: str) -> RunConfig:
    """Warn of those of ``names`` given other values than the defaults; set all to None."""
    default = RunConfig()
    given = [name for name in names
             if getattr(config, name) not in (None, getattr(default, name))]

    def flag(name):
        value = getattr(config, name)
        shown = (" ".join(map(str, value)) if isinstance(value, list) else "" if value is True
                 else value)
        return f"--{name.replace('_', '-')} {shown}".rstrip()

    if given:  # recorded as unused all the same: runs that did the same say the same
        flags = ", ".join(flag(name) for name in given)
        warnings.warn(f"{flags} {'is' if len(given) == 1 else 'are'} not used: {why}.",
                      SpaconWarning, stacklevel=5)
    return config.updated(dict.fromkeys(names))


def check_refine(adata, refine: int | None) -> None:
    """Refuse ``--refine K`` of as many neighbours as there are cells, before training."""
    if refine is not None and refine >= adata.n_obs:
        raise SpaconInputError(f"--refine {refine}: {refine} neighbours would vote over every one "
                               f"of the {adata.n_obs} cells; refinement uses a few (~6-30).")


def check_truth(adata, truth: str | None) -> None:
    """Refuse a ``--truth`` column the data do not have, or one of measurements, not labels
    (before training: the figures drawn at the end would refuse it).
    """
    if truth is not None and truth not in adata.obs:
        raise SpaconInputError(
            f"--truth {truth!r} is not a column of adata.obs (it has: "
            f"{', '.join(map(str, adata.obs.columns)) or 'none'}).")
    if truth is not None:
        labels_column(adata, truth, "labels to score domains against (--truth)")


def _prepared_output(config: RunConfig, group, main_rank: bool, world_size: int) -> Path:
    """``--out`` checked by rank 0; every rank stops together when it cannot be used."""
    from .model._distributed import any_rank

    out, failed = Path(config.out), None
    if main_rank:
        try:
            check_inputs_not_outputs(
                config, ("result.h5ad", DOMAINS_CSV, MARKERS_CSV, REPORT, "summary.json",
                         *checkpoint_files(world_size)), ("figures", "model"))
            out = prepare_output(config.out, config.overwrite, config.resume, world_size)
        except SpaconInputError as err:
            failed = err
    if group is not None and any_rank(failed is not None):
        raise failed or SpaconInputError("rank 0 could not prepare --out; see its message.")
    if failed is not None:
        raise failed
    return out


class Timer:
    """Seconds spent in each stage of a run."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Close ``stage``: the time since the previous lap."""
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._clock, 3)
        self._clock = now


def build_graphs(adata, config: RunConfig, connectivity, timer: Timer):
    """Normalise, select genes, and build the spatial and connectome graphs."""
    from . import pp

    config = normalize_and_spatial_graph(adata, config)
    if config.n_top_genes is not None and config.n_top_genes < adata.n_vars:
        adata = highly_variable(adata, config.n_top_genes)
    elif config.n_top_genes is not None:
        logger.warning("--n-top-genes %d: the data have %d genes; using all of them",
                       config.n_top_genes, adata.n_vars)
    else:
        marked = highly_variable_marked(adata)
        if marked is not None:  # the library's warning would give Python advice
            logger.warning("var['highly_variable'] marks %d of %d genes; spacon run uses every "
                           "gene (--n-top-genes N chooses N by scanpy's highly_variable_genes)",
                           marked, adata.n_vars)
    timer.lap("spatial_graph")
    if not config.no_connectivity:
        pp.connectome_graph(
            adata, connectivity, unit_key=config.unit_key, threshold=config.threshold,
            top_k=config.top_k, negative=config.negative, symmetrize=config.symmetrize,
            spatial_key=config.spatial_key,
        )
        params = adata.uns[_keys.neighbors(_keys.CONNECTOME_GRAPH)]["params"]
        logger.warning("connectome graph: %s", describe_connectome_graph(params))
    timer.lap("connectome_graph")
    return adata, config


def describe_connectome_graph(params: dict) -> str:
    """What the connectome graph kept, at the level it was built (units or cells)."""
    share = f"{100 * params['density']:.1f}%"
    level = "units" if "n_units" in params else "cells"
    unmatched = params.get("unmatched_rows", 0)
    left_out = (f"; {unmatched:,} of the matrix's rows match no {level[:-1]} of the data and "
                "are left out" if unmatched else "")
    n_negative = params.get("n_negative", 0)
    if n_negative and params.get("negative") == "drop":  # signed data: say what was dropped
        left_out += (f"; {n_negative:,} negative values dropped (--negative absolute keeps "
                     "their strength)")
    if "n_units" in params:
        return (f"{params['n_edges']:,} unit-unit connections kept ({share} of the pairs of "
                f"{params['n_units']:,} units), implying {params['implied_cell_edges']:,} "
                f"cell-cell edges{left_out}")
    return f"{params['n_edges']:,} cell-cell edges kept ({share} of all pairs){left_out}"


def highly_variable(adata, n_top_genes: int):
    """The ``n_top_genes`` most variable genes (scanpy's ``highly_variable_genes``, seurat
    flavour, on the log-normalised expression), as a new AnnData.
    """
    import scanpy as sc

    sc.pp.highly_variable_genes(adata, n_top_genes=n_top_genes, flavor="seurat")
    logger.warning("using the %d most variable of %d genes", n_top_genes, adata.n_vars)
    return adata[:, adata.var["highly_variable"].to_numpy()].copy()


def train(adata, config: RunConfig, out: Path, progress: bool = True, connectivity=None,
          threads: int | None = None):
    """A SpaCon model of ``adata``, trained as the config says (checkpointing in ``out``);
    with ``connectivity_code`` also by the auxiliary objective on ``connectivity``'s rows.
    ``threads``: torch's CPU threads (default ``--threads``).
    """
    from .model import ConnectivityCodeObjective, SpaCon
    from .model._connectivity_map import training_profiles

    with counts_warned_once():
        model = SpaCon(
            adata, hidden_dims=config.hidden_dims, seed=config.seed,
            connectome_key=None if config.no_connectivity else _keys.CONNECTOME_GRAPH,
        )
    auxiliary = None
    if config.connectivity_code and connectivity is not None:
        profiles, _ = training_profiles(adata, connectivity, config.unit_key, config.negative)
        auxiliary = ConnectivityCodeObjective(
            profiles, np.ones(adata.n_obs, dtype=bool), config.connectivity_code,
            config.hidden_dims[-1], seed=config.seed)
    return model.train(config.epochs, mode=config.mode, batch_size=config.batch_size,
                       lr=config.lr, seed=config.seed, device=config.device,
                       threads=threads if threads is not None else config.threads,
                       progress=progress, checkpoint=out / CHECKPOINT,
                       checkpoint_interval=config.checkpoint_interval, resume=config.resume,
                       auxiliary=auxiliary)


def call_domains(adata, config: RunConfig) -> dict:
    """Domains at every alpha (and tree levels), refined when asked, scored against
    ``--truth``; ``obs['spacon_domain']`` and ``obsm['X_spacon']`` hold the first alpha's.

    Returns
    -------
    ``{"n_domains": {alpha: count}, "levels": {alpha: {k: key}}, "level_counts": {alpha: {k:
    count}}, "truth": {alpha: scores}, "alternatives": {alpha: [k, ...]}}`` (Leiden/Louvain
    may find another count than ``k``; ``alternatives``: other numbers of domains where the
    selection's score also peaks, when the number was chosen from the data).
    """
    from . import tl
    from .tl._domains import embedding_changed

    counts, level_keys, level_counts, scores, level_scores, others = {}, {}, {}, {}, {}, {}
    for alpha in config.alpha:
        key, name = _keys.domain_for_alpha(alpha), f"{alpha:g}"
        tl.fuse(adata, alpha, key_added=_keys.fused_for_alpha(alpha))
        if embedding_changed(adata, key, _keys.fused_for_alpha(alpha)):
            # an earlier run's domains, read back with its result: this run's replace them
            logger.info("replacing the domains of an earlier run in uns[%r]", key)
            del adata.uns[key]
        levels = _domain_levels(adata, config, alpha, key)
        for column in [key, *levels.values()]:
            if config.refine:
                tl.refine(adata, k=config.refine, key=column, spatial_key=config.spatial_key,
                          section_key=config.section_key, key_added=column)
        if levels:
            level_keys[name] = levels
            level_counts[name] = {k: int(adata.obs[c].nunique()) for k, c in levels.items()}
        counts[name] = int(adata.obs[key].nunique())
        selection = adata.uns.get(key, {}).get("selection", {})
        if "alternatives" in selection and len(set(config.n_domains or [])) != 1:
            others[name] = [int(k) for k in selection["alternatives"]["k"]]
        if config.truth is not None:
            scores[name] = tl.score_domains(adata, config.truth, key)
            if levels:
                level_scores[name] = {k: tl.score_domains(adata, config.truth, column)
                                      for k, column in levels.items()}
    first = _keys.domain_for_alpha(config.alpha[0])
    adata.obs[_keys.DOMAIN] = adata.obs[first]
    if first in adata.uns:  # how they were called (selection, tree), as for any column
        adata.uns[_keys.DOMAIN] = copy.deepcopy(adata.uns[first])
    colours = adata.uns.get(f"{first}_colors")
    if colours is not None:  # the same domains, the same colours (in scanpy's plots too)
        adata.uns[f"{_keys.DOMAIN}_colors"] = list(colours)
    tl.fuse(adata, config.alpha[0])  # obsm['X_spacon'] and uns['spacon_fuse'] agree on alpha
    domain_markers(adata, config)
    # cells without a true label (NaN: unannotated spots) are left out of the scores
    unscored = 0 if config.truth is None else int(adata.obs[config.truth].isna().sum())
    return {"n_domains": counts, "levels": level_keys, "level_counts": level_counts,
            "truth": scores, "level_truth": level_scores, "alternatives": others,
            "truth_key": config.truth, "unscored": unscored}


# the obs columns of spacon's domain calls: one per alpha, and per level of --n-domains
DOMAIN_CALL = re.compile(re.escape(_keys.DOMAIN) + r"_alpha[0-9.]+(_k[0-9]+)?")
DEFAULT_MARKERS = 10  # marker genes per domain unless --markers says otherwise
MARKER_MEMORY = 2 * 1024**3  # the marker fit's dense copies of cells x genes stay within this
MARKER_MIN_CELLS = 2000  # ... by fitting on fewer cells, but not fewer than this


def domain_markers(adata, config: RunConfig) -> None:
    """Each alpha's domains' ``--markers`` top marker genes (:func:`spacon.tl.marker_genes`,
    without metagene columns) in ``uns['spacon_markers']``, where those of earlier domain
    calls of spacon's (other domains) are removed; a user's tables of other columns stay.

    The fit's cells are bounded so that its dense copies stay within ``MARKER_MEMORY``
    (thousands of genes without ``--n-top-genes``); where it still cannot be done, a warning
    says so and the run goes on without markers: they must not cost the domains.
    """
    from . import tl

    markers = adata.uns.get(_keys.MARKERS)
    if isinstance(markers, dict):
        for key in [k for k in markers if k == _keys.DOMAIN or DOMAIN_CALL.fullmatch(str(k))]:
            del markers[key]
        if not markers:
            del adata.uns[_keys.MARKERS]
    n_genes = DEFAULT_MARKERS if config.markers is None else config.markers
    if not n_genes:
        return
    cells = int(max(MARKER_MIN_CELLS, min(50_000, MARKER_MEMORY // (16 * max(adata.n_vars, 1)))))
    with counts_warned_once():  # the run said so when it read the data
        for key in dict.fromkeys(_keys.domain_for_alpha(a) for a in config.alpha):
            if adata.obs[key].nunique() < 2:  # one domain: nothing to contrast
                continue
            try:
                tl.marker_genes(adata, key, n_genes=n_genes, seed=config.seed,
                                max_cells=cells, metagenes=False)
            except (SpaconInputError, MemoryError) as err:
                warnings.warn(
                    f"marker genes of obs[{key!r}] could not be found, and are left out: "
                    f"{err} (--n-top-genes N fits them on fewer genes; --markers 0 skips "
                    "them).", SpaconWarning, stacklevel=2)


def marker_table(adata, config: RunConfig):
    """The markers of :func:`domain_markers` as one table (``markers.csv``): a row per alpha,
    domain and rank, with the gene and its PLS coefficient; ``None`` when there are none.
    """
    import pandas as pd

    markers = adata.uns.get(_keys.MARKERS, {})
    alphas = dict.fromkeys(f"{alpha:g}" for alpha in config.alpha)  # --alpha 0 0: once
    tables = [pd.DataFrame(markers[key]).assign(alpha=alpha) for alpha in alphas
              if (key := _keys.domain_for_alpha(float(alpha))) in markers]
    if not tables:
        return None
    table = pd.concat(tables, ignore_index=True)
    return table[["alpha", "domain", "rank", "gene", "coefficient"]]


def write_marker_table(adata, config: RunConfig, folder: Path) -> bool:
    """``folder/markers.csv`` from :func:`marker_table`; whether there was one to write."""
    from .io import write_text

    table = marker_table(adata, config)
    if table is not None:
        write_text(table.to_csv(index=False), folder / MARKERS_CSV)
    return table is not None


def domain_table(adata, config: RunConfig, domains: dict):
    """Each cell's section (when there are sections) and domain at every alpha and level."""
    import pandas as pd

    columns = {}
    if config.section_key is not None and config.section_key in adata.obs:
        columns["section"] = adata.obs[config.section_key].astype(str).to_numpy()
    for alpha in config.alpha:
        name = f"{alpha:g}"
        columns[f"domain_alpha{name}"] = adata.obs[_keys.domain_for_alpha(alpha)].to_numpy()
        for k, key in domains["levels"].get(name, {}).items():
            columns[f"domain_alpha{name}_k{k}"] = adata.obs[key].to_numpy()
    if config.truth is not None:
        columns[config.truth] = adata.obs[config.truth].astype(str).to_numpy()
    return pd.DataFrame(columns, index=pd.Index(adata.obs_names, name="cell"))


# the command line that started this run, set by the spacon command (None from Python)
COMMAND_LINE: ContextVar[str | None] = ContextVar("spacon_command_line", default=None)


def run_record(called_from_python: str = "spacon.domains") -> dict:
    """The command that made a result (as typed, or the Python function), when it finished
    (UTC) and in which folder: how to make it again.
    """
    return {"command": COMMAND_LINE.get() or f"{called_from_python} (Python)",
            "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "working_directory": os.getcwd()}


def write_outputs(adata, config: RunConfig, out: Path, model, domains: dict,
                  timer: Timer, world_size: int = 1) -> dict:
    """Figures, the model, ``result.h5ad``, ``domains.csv``, the report and
    ``summary.json``, written together (:func:`spacon.io._staged.staged_outputs`: an
    interrupted run leaves ``out`` as it was); returns the summary.
    """
    from .io import write_h5ad, write_text
    from .io._staged import staged_outputs

    with staged_outputs(out) as stage:
        staging = stage.path
        figures = draw_figures(adata, config, staging / "figures", model)
        timer.lap("figures")
        if model is not None:
            model.save(staging / "model")
        write_h5ad(adata, staging / "result.h5ad")
        write_text(domain_table(adata, config, domains).to_csv(), staging / DOMAINS_CSV)
        markers = write_marker_table(adata, config, staging)
        timer.lap("write")
        summary = {
            **run_record("spacon.run"),
            "parameters": {k: v for k, v in asdict(config).items()
                           if k not in ("progress", "resume", "checkpoint_interval")},
            "training": (model.train_params if model is not None else
                         smoothing_record(adata, config)),
            "loss_history": [] if model is None else [h["loss"] for h in model.history],
            "timings_seconds": timer.seconds,
            "n_domains": domains["n_domains"],
            "domain_keys": {f"{a:g}": _keys.domain_for_alpha(a) for a in config.alpha},
            "domain_levels": domains["levels"],
            "domain_level_counts": domains["level_counts"],
            "domain_alternatives": domains.get("alternatives", {}),
            "figures": figures,
            "versions": _versions(),
        }
        add_truth_scores(summary, config, domains)
        if domains.get("baselines"):
            summary["baselines"] = domains["baselines"]
        if not config.no_report:
            from .report import write_report

            write_report(adata, staging / REPORT, summary=summary)
            timer.lap("report")
        write_text(json.dumps(summary, indent=1, default=_jsonable), staging / "summary.json")
        stage.then(lambda: remove_stale_outputs(out, has_model=model is not None,
                                                figures=figures, report=not config.no_report,
                                                markers=markers))
        # the finished model is in DIR/model/; an earlier run's checkpoints of another number
        # of processes (--overwrite) go too
        stage.then(lambda: [path.unlink(missing_ok=True) for path in checkpoints_in(out)])
    return summary


def remove_stale_outputs(out: Path, *, has_model: bool, figures: list[str],
                         report: bool, markers: bool) -> None:
    """Once a run's outputs are written, remove those an earlier run left in ``out``
    (``--overwrite``) that this one did not write: its ``model/`` (a smoothing run trains
    none; ``spacon predict`` would have used it), figures of other alphas or levels, its
    report and marker table. Only spacon's own outputs; nothing else in ``out`` is touched.
    """
    if not has_model and (out / "model" / "model.pt").is_file():
        shutil.rmtree(out / "model")
    for name, written in ((REPORT, report), (MARKERS_CSV, markers)):
        if not written and (out / name).is_file():
            (out / name).unlink()
    folder, kept = out / "figures", {Path(f).name for f in figures}
    ours = re.compile(r"(domains|domain_tree|domain_scores|section_divergence|stack3d|umap|loss"
                      r"|truth)(_alpha[0-9.]+)?(_k[0-9]+)?\.png")
    if folder.is_dir():
        for path in folder.glob("*.png"):
            if path.name not in kept and ours.fullmatch(path.name):
                path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def drop_domain_calls(adata, keep=(), spare=()) -> None:
    """Remove earlier domain columns (and their ``uns``) but those of the alphas in ``keep``,
    and every level column, so that ``result.h5ad``, ``domains.csv`` and the summary describe
    the same calls; the trees of the alphas kept stay, to be cut without refitting. Columns
    named in ``spare`` stay too (e.g. an earlier call given as ``--truth``).
    """
    kept = {_keys.domain_for_alpha(a) for a in keep} | set(spare)
    for column in [c for c in adata.obs if DOMAIN_CALL.fullmatch(str(c))]:
        if column not in kept:
            del adata.obs[column]
            for key in (column, f"{column}_colors"):
                adata.uns.pop(key, None)


# what spacon run, embed and predict write at the top of --out
RESULT_FILES = ("result.h5ad", DOMAINS_CSV, MARKERS_CSV, "summary.json", REPORT,
                "predicted_connectivity.npz")


def remove_other_results(out: Path, written: tuple[str, ...]) -> None:
    """After ``spacon embed`` or ``predict`` wrote ``written`` into ``out`` (``--overwrite``),
    remove what another command left there that would describe other data: its domains,
    summary, report and figures. Only spacon's own outputs; a ``model/`` stays (it may be
    the very model these commands just used).
    """
    for name in RESULT_FILES:
        if name not in written and (out / name).is_file():
            (out / name).unlink()
    remove_stale_outputs(out, has_model=True, figures=[], report=False,
                         markers=MARKERS_CSV in written)


def _domain_levels(adata, config, alpha: float, key: str) -> dict[str, str]:
    """Domains at one alpha: ``obs[key]`` (the chosen number, or the one ``--n-domains``) and,
    for several ``--n-domains``, one column per level cut from the same domain tree.
    """
    from . import tl

    wanted = sorted(set(config.n_domains or []))
    common = {"method": config.method, "resolution": config.resolution, "alpha": alpha,
              "use_rep": _keys.fused_for_alpha(alpha), "seed": config.seed,
              "n_jobs": config.threads}  # --threads bounds the selection's processes too
    with warnings.catch_warnings():
        if len(wanted) > 1:  # the numbers were given: the chosen one sits beside them
            warnings.filterwarnings("ignore", ".*[0-9]+ domains is near the most", SpaconWarning)
        tl.domains(adata, n_domains=wanted[0] if len(wanted) == 1 else None, key_added=key,
                   **common)
    levels = {}
    for k in wanted if len(wanted) > 1 else []:
        levels[str(k)] = _keys.domain_level(alpha, k)
        tl.domains(adata, n_domains=k, tree_key=key if config.method == "gmm" else None,
                   key_added=levels[str(k)], **common)
    return levels


def smoothing_record(adata, config: RunConfig) -> dict:
    """What ``--encoder smoothing`` did, for the summary: the graphs averaged over, hops,
    components.
    """
    params = dict(adata.uns[_keys.EMBEDDING_SPA]["params"])
    for key in ("graph", "alpha"):  # one per graph: said by "graphs"
        params.pop(key, None)
    graphs = ["spatial"] + ([] if config.no_connectivity else ["connectome"])
    return {"encoder": "smoothing", "graphs": graphs, **params}


def smoothing_embeddings(adata, config: RunConfig) -> None:
    """``--encoder smoothing``: components of the expression (``--components``) averaged over
    each graph, in the obsm keys of SpaCon's spatial and connectivity embeddings, so that
    ``tl.fuse`` and the domains use them.
    """
    from . import tl

    tl.smoothed_expression(adata, graph="spatial", n_hops=config.n_hops, seed=config.seed,
                           components=config.components, key_added=_keys.EMBEDDING_SPA)
    if not config.no_connectivity:
        tl.smoothed_expression(adata, graph="connectome", n_hops=config.n_hops,
                               seed=config.seed, components=config.components,
                               key_added=_keys.EMBEDDING_CON)


def draw_figures(adata, config, folder: Path, model=None) -> list[str]:
    """The figures of ``config.figures`` in ``folder``, as ``figures/<name>`` (the loss only
    with a ``model``).
    """
    if config.figures == "none":
        return []
    import matplotlib.pyplot as plt

    from . import pl
    from .io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        with atomic_path(folder / name) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        written.append(f"figures/{name}")

    section_key = config.section_key if config.section_key in adata.obs else None
    three_d = adata.obsm[config.spatial_key].shape[1] == 3
    for i, alpha in enumerate(config.alpha):
        key, title = _keys.domain_for_alpha(alpha), f"domains at alpha = {alpha:g}"
        save(pl.domains(adata, key=key, section_key=section_key, section_order=config.section_order,
                        spatial_key=config.spatial_key, title=title), f"domains_alpha{alpha:g}.png")
        tree = adata.uns.get(key, {}).get("tree")
        # (--n-domains above the tree's leaves fits a mixture of its own: no cut of the tree)
        if tree is not None and adata.obs[key].nunique() <= len(tree["leaf_size"]):
            save(pl.domain_tree(adata, key=key), f"domain_tree_alpha{alpha:g}.png")
        if "mixture" in adata.uns.get(key, {}).get("selection", {}):
            save(pl.domain_scores(adata, key=key), f"domain_scores_alpha{alpha:g}.png")
        if section_key is not None:
            save(pl.section_divergence(adata, key=key, section_key=section_key,
                                       section_order=config.section_order),
                 f"section_divergence_alpha{alpha:g}.png")
        if i > 0 and config.figures == "basic":
            continue
        # one file name per kind at the first alpha, as before; later alphas say theirs
        suffix = "" if i == 0 else f"_alpha{alpha:g}"
        if three_d:
            save(pl.stack3d(adata, key=key, spatial_key=config.spatial_key,
                            section_key=section_key, title=title), f"stack3d{suffix}.png")
        save(pl.umap(adata, key=key, use_rep=_keys.fused_for_alpha(alpha), seed=config.seed,
                     title=title), f"umap{suffix}.png")
    if config.truth is not None:
        save(pl.domains(adata, key=config.truth, section_key=section_key,
                        section_order=config.section_order, spatial_key=config.spatial_key,
                        title=f"truth: {config.truth}"), "truth.png")
    if model is not None:
        save(pl.loss([h["loss"] for h in model.history]), "loss.png")
    return written


def _versions() -> dict:
    from importlib.metadata import version

    versions = {"python": platform.python_version()}
    for package in ("spacon", "torch", "anndata", "scanpy", "numpy", "scipy", "scikit-learn"):
        try:
            versions[package] = version(package)
        except Exception:
            versions[package] = "unknown"
    return versions


def add_truth_scores(summary: dict, config: RunConfig, domains: dict) -> None:
    """The domains' scores against ``--truth`` (and each ``--n-domains`` level's) in the
    summary; none where there is no truth.
    """
    summary.pop("truth_scores", None)
    summary.pop("level_truth_scores", None)
    if domains["truth"]:
        summary["truth_scores"] = {"truth": config.truth, **domains["truth"]}
        summary["truth_scores"]["cells_without_truth"] = domains.get("unscored", 0)
    if domains.get("level_truth"):
        summary["level_truth_scores"] = {"truth": config.truth, **domains["level_truth"]}


def _jsonable(value):
    try:
        return jsonable(value)
    except TypeError:
        return str(value)
