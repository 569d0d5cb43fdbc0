"""The main job behind ``spacon run`` and ``spacon demo``: graphs, training, domains, outputs."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import _keys
from ._errors import SpaconInputError
from ._utils import check_option

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
    knn: int | None = None
    z_radius: float | None = None
    threshold: float | None = None
    top_k: int | None = None
    negative: str = "drop"
    symmetrize: bool = False
    no_normalize: bool = False
    encoder: str = "spacon"
    n_hops: int = 3
    hidden_dims: list[int] = field(default_factory=lambda: [256, 64, 16])
    alpha: list[float] = field(default_factory=lambda: [0.0, 1.0])
    method: str = "gmm"
    resolution: float | None = None
    n_domains: int | None = None
    refine: int | None = None
    epochs: int | None = None
    mode: str = "auto"
    batch_size: int = 256
    lr: float = 5e-3
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    overwrite: bool = False
    resume: bool = False
    checkpoint_interval: float = 300.0
    progress: bool = True

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Read a TOML file whose keys are the option names (dashes or underscores)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        if not path.exists():
            raise SpaconInputError(f"config file {str(path)!r} does not exist.")
        try:
            raw = tomllib.loads(path.read_text())
        except Exception as err:
            raise SpaconInputError(f"config file {path.name!r} is not valid TOML: {err}") from err
        return cls().updated({k.replace("-", "_"): v for k, v in raw.items()}, source=path.name)

    def updated(self, values: dict, source: str = "options") -> RunConfig:
        """A copy with ``values`` applied, each checked against the option's type."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SpaconInputError(
                f"{source}: unknown option(s) {', '.join(unknown)}; valid options are "
                f"{', '.join(sorted(known))}."
            )
        data = asdict(self)
        for name, value in values.items():
            data[name] = _coerce(name, value, getattr(self, name), known[name].type, source)
        return RunConfig(**data)


def _coerce(name, value, default, annotation, source):
    kind = str(annotation)
    if value is None:
        return None
    ok = True
    if "list" in kind:
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        ok = isinstance(value, list)
        inner = float if "float" in kind else int if "int" in kind else str
        if ok:
            try:
                value = [inner(v) for v in value]
            except (TypeError, ValueError):
                ok = False
    elif kind.startswith("bool"):
        ok = isinstance(value, bool)
    elif "int" in kind and "float" not in kind:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "float" in kind:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif "str" in kind:
        ok = isinstance(value, str)
    if not ok:
        raise SpaconInputError(
            f"{source}: option {name!r} has the wrong type ({type(value).__name__}: {value!r}); "
            f"expected {kind.replace('typing.', '')}."
        )
    return value


CHECKPOINT = "checkpoint.pt"
# "spacon" trains the graph attention autoencoder; "smoothing" averages expression PCs over the
# graphs instead (tl.smoothed_expression): no training, the same obsm keys, the same domains
ENCODERS = ("spacon", "smoothing")


def checkpoint_files(world_size: int = 1) -> list[str]:
    """Checkpoint file names of a run: one, or one per rank of a distributed run."""
    if world_size == 1:
        return [CHECKPOINT]
    stem, suffix = Path(CHECKPOINT).stem, Path(CHECKPOINT).suffix
    return [f"{stem}.rank{r}{suffix}" for r in range(world_size)]


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
    if resume and missing:
        raise SpaconInputError(
            f"--resume: {out} holds no {', '.join(missing)} to continue from; run without "
            "--resume to start a new run."
        )
    checkpoint = out / names[0]
    if (out / "result.h5ad").exists() and not overwrite:
        raise SpaconInputError(
            f"{out}/result.h5ad exists already; choose another --out or pass --overwrite."
        )
    if not resume and not overwrite and out.is_dir() and any(out.iterdir()):
        hint = (" It holds an interrupted run's checkpoint: pass --resume to continue it."
                if checkpoint.exists() else "")
        raise SpaconInputError(
            f"--out {str(out)!r} exists and is not empty; choose another --out or pass "
            f"--overwrite.{hint}"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".spacon-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise SpaconInputError(f"cannot write to --out {str(out)!r}: {err.strerror}.") from err
    return out


def read_input(path: str | Path):
    """Read the input h5ad into memory (the file itself is never written)."""
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise SpaconInputError(f"--adata {str(path)!r} does not exist.")
    try:
        return ad.read_h5ad(path)
    except Exception as err:
        raise SpaconInputError(f"could not read {path.name!r} as an h5ad file: {err}") from err


def normalize_and_spatial_graph(adata, config: RunConfig) -> RunConfig:
    """Normalise (unless ``no_normalize``) and build the spatial graph the config asks for."""
    from . import pp
    from .pp._normalize import warn_zero_genes

    if not config.no_normalize:
        pp.normalize(adata)
    else:
        pp.check_expression(adata)
        warn_zero_genes(adata)
    if config.radius is None and config.knn is None:
        config = config.updated({"knn": 10})
        logger.info("no --radius or --knn: using 10 nearest neighbours")
    pp.spatial_graph(
        adata, radius=config.radius, n_neighbors=config.knn, spatial_key=config.spatial_key,
        section_key=config.section_key, section_order=config.section_order,
        z_radius=config.z_radius,
    )
    return config


def run(config: RunConfig, adata=None):
    """Run the whole job; return the annotated data and the summary written to summary.json.

    Launched by ``torchrun`` with several processes, training is data-parallel and rank 0
    alone embeds, calls domains and writes the results (the other ranks return no summary).
    """
    from . import pp, tl
    from .io import read_connectivity, write_h5ad, write_text
    from .model import SpaCon
    from .model._distributed import any_rank, init_from_environment

    if config.out is None:
        raise SpaconInputError("--out DIR is required.")
    if adata is None and config.adata is None:
        raise SpaconInputError("--adata IN.h5ad is required.")
    if not config.no_connectivity and config.connectivity is None and adata is None:
        raise SpaconInputError(
            "--connectivity FILE is required (or --no-connectivity to use the spatial graph "
            "alone)."
        )
    check_option("encoder", config.encoder, ENCODERS)
    for a in config.alpha:
        if not 0 <= a <= 1:
            raise SpaconInputError(f"--alpha values must be in [0, 1], got {a:g}.")
    # under torchrun every rank trains on its shard; rank 0 alone writes the results
    group = init_from_environment(config.device)
    main_rank = group is None or group[0] == 0
    world_size = 1 if group is None else group[1]
    out, failed = Path(config.out), None
    if main_rank:
        try:
            out = prepare_output(config.out, config.overwrite, config.resume, world_size)
        except SpaconInputError as err:
            failed = err
    if group is not None and any_rank(failed is not None):
        raise failed or SpaconInputError("rank 0 could not prepare --out; see its message.")
    if failed is not None:
        raise failed
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    if adata is None:
        adata = read_input(config.adata)
    connectivity = None
    if not config.no_connectivity and config.connectivity is not None:
        connectivity = read_connectivity(config.connectivity, key=config.connectivity_key)
    lap("load")

    config = normalize_and_spatial_graph(adata, config)
    lap("spatial_graph")
    if not config.no_connectivity:
        pp.connectome_graph(
            adata, connectivity, unit_key=config.unit_key, threshold=config.threshold,
            top_k=config.top_k, negative=config.negative, symmetrize=config.symmetrize,
            spatial_key=config.spatial_key,
        )
    lap("connectome_graph")

    if config.encoder == "smoothing":
        if not main_rank:
            return adata, None
        model = None
        smoothing_embeddings(adata, config)
        lap("embedding")
    else:
        model = SpaCon(
            adata, hidden_dims=config.hidden_dims, seed=config.seed,
            connectome_key=None if config.no_connectivity else _keys.CONNECTOME_GRAPH,
        )
        model.train(config.epochs, mode=config.mode, batch_size=config.batch_size, lr=config.lr,
                    seed=config.seed, device=config.device, progress=config.progress and main_rank,
                    checkpoint=out / CHECKPOINT, checkpoint_interval=config.checkpoint_interval,
                    resume=config.resume)
        lap("training")
        if not main_rank:
            return adata, None
        model.embed(device=config.device)
        lap("embedding")

    counts = {}
    for i, alpha in enumerate(config.alpha):
        key = _keys.domain_for_alpha(alpha)
        tl.fuse(adata, alpha, key_added=f"X_spacon_alpha{alpha:g}")
        tl.domains(adata, method=config.method, n_domains=config.n_domains,
                   resolution=config.resolution, use_rep=f"X_spacon_alpha{alpha:g}",
                   seed=config.seed, key_added=key)
        if config.refine:
            tl.refine(adata, k=config.refine, key=key, spatial_key=config.spatial_key,
                      section_key=config.section_key, key_added=key)
        counts[f"{alpha:g}"] = int(adata.obs[key].nunique())
        if i == 0:
            adata.obs[_keys.DOMAIN] = adata.obs[key]
            adata.obsm[_keys.EMBEDDING_FUSED] = adata.obsm[f"X_spacon_alpha{alpha:g}"]
    lap("domains")

    figures = _figures(adata, config, out / "figures", model)
    lap("figures")
    if model is not None:
        model.save(out / "model", overwrite=True)
    write_h5ad(adata, out / "result.h5ad")
    lap("write")
    summary = {
        "parameters": {k: v for k, v in asdict(config).items()
                       if k not in ("progress", "resume", "checkpoint_interval")},
        "training": (model.train_params if model is not None else
                     {"encoder": "smoothing", **adata.uns[_keys.EMBEDDING_SPA]["params"]}),
        "loss_history": [] if model is None else [h["loss"] for h in model.history],
        "timings_seconds": timings,
        "n_domains": counts,
        "domain_keys": {f"{a:g}": _keys.domain_for_alpha(a) for a in config.alpha},
        "figures": figures,
        "versions": _versions(),
    }
    write_text(json.dumps(summary, indent=1, default=_jsonable), out / "summary.json")
    for name in checkpoint_files(world_size):  # the finished model is in DIR/model/
        (out / name).unlink(missing_ok=True)
    return adata, summary


def smoothing_embeddings(adata, config: RunConfig) -> None:
    """``--encoder smoothing``: expression PCs averaged over each graph, in the obsm keys of
    SpaCon's spatial and connectivity embeddings, so that ``tl.fuse`` and the domains use them.
    """
    from . import tl

    tl.smoothed_expression(adata, graph="spatial", n_hops=config.n_hops, seed=config.seed,
                           key_added=_keys.EMBEDDING_SPA)
    if not config.no_connectivity:
        tl.smoothed_expression(adata, graph="connectome", n_hops=config.n_hops,
                               seed=config.seed, key_added=_keys.EMBEDDING_CON)


def _figures(adata, config, folder: Path, model) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
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
    for alpha in config.alpha:
        key = _keys.domain_for_alpha(alpha)
        save(pl.domains(adata, key=key, section_key=section_key, section_order=config.section_order,
                        spatial_key=config.spatial_key), f"domains_alpha{alpha:g}.png")
        if section_key is not None:
            save(pl.section_divergence(adata, key=key, section_key=section_key,
                                       section_order=config.section_order),
                 f"section_divergence_alpha{alpha:g}.png")
    if adata.obsm[config.spatial_key].shape[1] == 3:
        save(pl.stack3d(adata, key=_keys.DOMAIN, spatial_key=config.spatial_key), "stack3d.png")
    save(pl.umap(adata, key=_keys.DOMAIN), "umap.png")
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


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
