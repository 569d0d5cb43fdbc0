"""The AnnData-facing SpaCon model: validate, train, embed, save and load."""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .. import _keys
from .._allocator import keep_freed_memory
from .._errors import SpaconInputError, SpaconWarning
from .._settings import settings
from .._utils import (
    check_anndata,
    check_memory,
    check_numbers,
    check_option,
    check_seed,
    choose_threads,
    cpu_threads,
    deterministic_algorithms,
    flush_denormals,
    jsonable,
    no_obs_column,
    resolve_device,
    warn_unused_highly_variable,
    whole_number,
    writable,
)
from ..graph import NeighborSampler
from ..io import atomic_path
from ..io._atomic import make_folder
from ..nn import SpaConModule
from ..pp._normalize import warn_if_counts
from ._adam import Adam
from ._batches import FullBatch, SampledBatches
from ._connectivity_map import FILE as CONNECTIVITY_MAP_FILE
from ._connectivity_map import ConnectivityMap
from ._data import (
    ModelData,
    check_genes,
    check_preprocessing,
    prepare_like,
    preprocessing_of,
)
from ._distributed import GroupSync, LocalSync, process_group
from ._inference import embed_all
from ._memory import choose_mode, embed_bytes, full_batch_bytes
from ._original import translate_original_state
from ._train import (
    DEFAULT_SAMPLED_STEPS,
    Checkpointer,
    TrainConfig,
    TrainMode,
    TrainState,
    fit,
)

logger = logging.getLogger(__name__)


class _Sum(float):
    """A sum of expression values: equal to another within rounding (a sparse X made dense sums
    its values in another order), not beyond it (normalised in place).
    """

    def __eq__(self, other):
        if not isinstance(other, float):
            return False
        a, b = float(self), float(other)
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))

    __hash__ = float.__hash__


class SpaCon:
    """SpaCon on an AnnData: a dual-encoder graph attention autoencoder.

    The connectivity encoder sees each cell's connectome neighbours, the spatial encoder its
    spatial neighbours; a decoder reconstructs expression from both (with the published
    skip connections from the encoders when ``skip_connections=True``; off by default). The two
    embeddings are later mixed by ``alpha`` (:func:`spacon.tl.fuse`).

    Parameters
    ----------
    adata
        Log-normalised expression in ``X`` (or ``layers[layer]``), a spatial graph from
        :func:`spacon.pp.spatial_graph` and, unless ``connectome_key=None``, a connectome graph
        from :func:`spacon.pp.connectome_graph`.
    hidden_dims
        Sizes of the three encoder layers.
    fusion
        ``"concat"`` or ``"add"`` (of L2-normalised vectors) of the two embeddings.
    dropout
        Attention dropout while training.
    skip_connections
        Feed the encoders' first two layers to the decoder, as published. Off by default: the
        skips let the decoder reconstruct from cell-level features, so the embeddings carry
        less; without them the spatial embedding finds the synthetic brain's regions far
        better (see the README, "How it differs from the original").
    spatial_key, connectome_key
        Keys of the graphs; ``connectome_key=None`` trains the spatial encoder alone.
    layer
        Use ``adata.layers[layer]`` instead of ``X``.
    seed
        Seed of the weight initialisation.
    """

    def __init__(
        self,
        adata,
        *,
        hidden_dims=(256, 64, 16),
        fusion: Literal["concat", "add"] = "concat",
        dropout: float = 0.1,
        skip_connections: bool = False,
        spatial_key: str = _keys.SPATIAL_GRAPH,
        connectome_key: str | None = _keys.CONNECTOME_GRAPH,
        layer: str | None = None,
        seed: int | None = 0,
    ):
        check_anndata(adata, "SpaCon")
        adata = writable(adata, False, "SpaCon (train, then embed)")
        warn_unused_highly_variable(adata, "SpaCon trains on", stacklevel=3)
        check_option("fusion", fusion, ("concat", "add"))
        check_numbers(dropout=dropout)
        if dropout is None or not 0 <= float(dropout) < 1:
            raise SpaconInputError(f"dropout must be in [0, 1), got {dropout!r}.")
        if not isinstance(skip_connections, (bool, np.bool_)):
            raise SpaconInputError(f"skip_connections must be True or False, got "
                                   f"{skip_connections!r}.")
        check_seed(seed)
        if isinstance(hidden_dims, (str, bytes)) or not hasattr(hidden_dims, "__len__") \
                or len(hidden_dims) != 3:
            raise SpaconInputError(f"hidden_dims needs three positive sizes, got {hidden_dims!r}.")
        try:
            hidden_dims = [whole_number("hidden_dims", d) for d in hidden_dims]
        except SpaconInputError:
            raise SpaconInputError(f"hidden_dims needs three positive sizes (whole numbers), "
                                   f"got {list(hidden_dims)!r}.") from None
        self.params = {
            "hidden_dims": hidden_dims, "fusion": fusion, "dropout": float(dropout),
            "skip_connections": bool(skip_connections),
            "spatial_key": spatial_key, "connectome_key": connectome_key, "layer": layer,
            "seed": seed,
        }
        self.var_names = np.asarray(adata.var_names).astype(str)
        if layer is not None and layer not in adata.layers:
            raise SpaconInputError(f"adata.layers has no {layer!r}.")
        warn_if_counts(adata, layer, "SpaCon models log-normalised expression")
        duplicated = pd.Index(self.var_names).duplicated()
        if duplicated.any():
            warnings.warn(f"adata.var_names has {int(duplicated.sum())} repeated gene names "
                          f"(e.g. '{self.var_names[duplicated][0]}'); a saved model is matched "
                          "to new tissue by gene name: call adata.var_names_make_unique() "
                          "first.", SpaconWarning, stacklevel=2)
        self.data = self._read(adata)
        self._signature = self._bound_signature()
        self.preprocessing = preprocessing_of(adata, spatial_key, connectome_key, layer)
        with _own_random_state():
            torch.manual_seed(_sampler_seed(seed))  # None: a fresh seed, as documented
            self.module = SpaConModule(
                adata.n_vars, hidden_dims, fusion, dropout,
                use_connectivity=connectome_key is not None, skip_connections=skip_connections,
            )
            self._init_output_scale()
        self._initial_digest = self._weights_digest()
        self.history: list[dict] = []
        self.train_params: dict = {}
        self.connectivity_map: ConnectivityMap | None = None

    def _bound_signature(self) -> tuple:
        """What the model read from its AnnData: cells, genes, the expression's sum (normalised
        in place after the model read it, e.g.), each graph's edges.
        """
        adata, sig = self.data.adata, [self.data.adata.n_obs, self.data.adata.n_vars]
        layer = self.params["layer"]
        x = adata.X if layer is None else adata.layers.get(layer)
        if x is not None:  # to a relative 1e-9: the same values stored otherwise sum alike
            values = x.data if sp.issparse(x) else np.asarray(x)
            sig.append(_Sum(float(np.sum(values, dtype=np.float64))))
        for key in (self.params["spatial_key"], self.params["connectome_key"]):
            graph = None if key is None else adata.obsp.get(_keys.connectivities(key))
            stored = None if key is None else adata.uns.get(_keys.neighbors(key))
            params = stored.get("params", {}) if isinstance(stored, dict) else {}
            sig += [None if graph is None else (graph.shape, graph.nnz),
                    params.get("n_edges"), params.get("implied_cell_edges")]
        return tuple(sig)

    def _architecture(self) -> str:
        """The model's build beyond its weights' shapes (which loading checks), as a checkpoint
        records it: a resume must train the same model.
        """
        p = self.params
        return (f"fusion={p['fusion']} dropout={p['dropout']:g} "
                f"skip_connections={p['skip_connections']}")

    def _check_data_unchanged(self) -> None:
        """Refuse to train or embed a model's own AnnData once it has changed in place: the
        model holds what it read (new graphs, filtered cells went unseen, or failed deep in
        anndata).
        """
        if getattr(self, "_signature", None) not in (None, self._bound_signature()):
            raise SpaconInputError(
                "the AnnData this model was made from has changed since (its cells, genes, "
                "expression or graphs): the model holds the data as it read them. Make a new "
                "spacon.SpaCon(adata) to train on the changed data, or embed it with "
                "model.embed(adata.copy()).")

    def _weights_digest(self) -> str:
        """A digest of every weight: equal to the one taken at construction while nothing has
        trained or loaded the model.
        """
        import hashlib

        h = hashlib.sha1()
        for tensor in self.module.state_dict().values():
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def _init_output_scale(self) -> None:
        """Start the decoder's last BatchNorm at each gene's mean, with a tenth of its spread.

        The published decoder ends in a BatchNorm whose output starts at mean 0, variance 1,
        while log-normalised expression has gene means of 1-4: with lr 1e-4 most early training
        would only move that offset. Starting from the data's scale spends it on structure.
        """
        x = self.data.features
        mean = np.asarray(x.mean(axis=0)).ravel()
        sq = x.multiply(x).mean(axis=0) if sp.issparse(x) else (x**2).mean(axis=0)
        std = np.sqrt(np.maximum(np.asarray(sq).ravel() - mean**2, 1e-6))
        bn = self.module.decoder.bn1
        with torch.no_grad():
            bn.bias.copy_(torch.from_numpy(mean.astype(np.float32)))
            bn.weight.copy_(torch.from_numpy(0.1 * std.astype(np.float32)))

    # ------------------------------------------------------------------ data
    def _read(self, adata, connectome_optional: bool = False) -> ModelData:
        return ModelData.from_adata(
            adata, self.var_names, layer=self.params["layer"],
            spatial_key=self.params["spatial_key"], connectome_key=self.params["connectome_key"],
            connectome_optional=connectome_optional)

    def __repr__(self) -> str:
        p = self.params
        encoders = "spatial + connectivity" if p["connectome_key"] is not None else "spatial"
        done = self.epochs_done
        trained = ("not trained" if not self.history else
                   f"{done} epoch{'s' if done != 1 else ''} trained"
                   + (", and part of one more" if len(self.history) > done else ""))
        return (f"SpaCon({self.adata.n_obs:,} cells x {len(self.var_names):,} genes; "
                f"{encoders} encoders, hidden_dims={list(p['hidden_dims'])}, "
                f"fusion={p['fusion']!r}; {trained})")

    @property
    def adata(self):
        """The training data."""
        return self.data.adata

    @property
    def epochs_done(self) -> int:
        """Complete epochs trained so far (a step-capped partial epoch does not count)."""
        return sum("batches" not in h for h in self.history)

    def full_batch_bytes(self) -> int:
        """Estimated peak memory of one full-batch training step, in bytes."""
        return full_batch_bytes(self.data, self.params["hidden_dims"])

    def embed_bytes(self, max_edges: int = 20_000_000, reconstruct: bool = False) -> int:
        """Estimated peak memory of :meth:`embed` on the training data, in bytes.

        ``max_edges`` and ``reconstruct`` are :meth:`embed`'s.
        """
        return embed_bytes(self.data, self.params["hidden_dims"], max_edges, reconstruct)

    # ------------------------------------------------------------------ training
    def train(
        self,
        epochs: int | None = None,
        *,
        mode: TrainMode = "auto",
        batch_size: int = 64,
        fanouts=(5, 3, 3),
        spatial_sampling: Literal["neighbors", "induced"] = "neighbors",
        spatial_fanout: int = 8,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        max_grad_norm: float = 5.0,
        loss: Literal["sum", "mean"] = "sum",
        memory_budget_gb: float = 4.0,
        seed: int | None = 0,
        device: str = "auto",
        threads: int | None = None,
        progress: bool | None = None,
        rank: int = 0,
        world_size: int = 1,
        max_steps: int | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_interval: float = 300.0,
        resume: bool = False,
        auxiliary=None,
    ) -> SpaCon:
        """Train by reconstructing expression.

        Training starts from the model's current weights: a second call continues training
        (with a new optimiser) and appends to :attr:`history`, as scvi-tools' ``train`` does;
        make a new :class:`SpaCon` to train from scratch. The seed fixes the batches and the
        dropout: a second call with the same seed draws the first call's again (another seed
        draws others).

        Parameters
        ----------
        epochs
            Passes over the cells. Default: 500 full-batch steps, or 20 sampled epochs but at
            most ``DEFAULT_SAMPLED_STEPS`` (500) batches: a batch's sampled subgraph grows with
            the data (up to ``batch_size`` times the product of the fan-outs), so larger data
            sets see more cells per step and need no more steps (measured in
            ``benchmarks/bench_scaling.py``).
        mode
            ``"full"``: one step per epoch on the whole graphs; ``"sampled"``: mini-batches by
            neighbour sampling; ``"auto"``: full-batch when its estimated memory
            (:meth:`full_batch_bytes`) fits ``memory_budget_gb`` and the connectome has no more
            edges per cell than the fan-outs would sample (at least 20), else sampled.
        batch_size, fanouts
            Seed cells per batch and connectivity neighbours sampled per hop (``-1``: all;
            a fan-out ``f`` draws ``f`` neighbours with replacement, repeats kept once, so a
            cell with many neighbours keeps a little under ``f`` distinct ones, each equally
            likely; a cell with at most ``f`` keeps all). The loss covers
            every cell of a batch's subgraph, so small batches with small fan-outs still train
            on thousands of cells a step: on the synthetic brain (6,000 cells, where 256 seeds
            with fan-outs 10/5/5 and 20 spatial neighbours reached every cell) 64 seeds with
            5/3/3 and 8 gave domains as good in 0.6 of the time, and on its 50,000-cell
            tier 500 such steps beat 50 of the former default's in less time
            (``benchmarks/bench_sampling.py``).
        spatial_sampling, spatial_fanout
            How the spatial encoder's neighbourhood is sampled (see
            :class:`spacon.graph.NeighborSampler`).
        lr, weight_decay, max_grad_norm
            Adam settings and gradient-norm clipping. The published learning rate is 1e-4;
            spacon defaults to 5e-3: with 5 sampled epochs on the synthetic brain it reaches a
            lower loss and far better alpha = 0 domains than 1e-3 (see the README).
        loss
            ``"sum"`` (as published) or ``"mean"`` squared error.
        memory_budget_gb
            Memory allowed for full-batch training in ``mode="auto"``.
        seed
            Seed of dropout and sampling; the same seed gives the same CPU result. The
            caller's random state (Python, NumPy, torch) is left as it was; ``None`` draws a
            fresh seed (recorded in the checkpoint, so a resumed run still matches).
        device
            ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        threads
            CPU threads for torch and BLAS. Default: ``OMP_NUM_THREADS`` when set, else the
            CPUs this process may use (affinity, cgroup quota) that other processes do not
            keep busy when training starts. The count is recorded in :attr:`train_params`. The
            same seed gives the same CPU result on any thread count (see
            :mod:`spacon.nn._invariant`; import spacon before torch computes anything, so that
            MKL's reproducible mode is in force).
        progress
            Show a progress bar with the running loss (default: unless
            ``spacon.settings.verbosity`` is ``"error"``).
        rank, world_size
            This process's shard of the seed cells. Under an initialised
            ``torch.distributed`` process group (e.g. launched by ``torchrun``) they are taken
            from it and training is data-parallel: each rank samples its own seed cells, the
            gradients are averaged over ranks after every step so all ranks hold the same
            model, and each rank checkpoints to ``<checkpoint>.rank<r>`` at the same steps.
            On GPUs call ``torch.cuda.set_device(local_rank)`` before (``spacon run`` under
            ``torchrun`` does).
        max_steps
            Stop after this many optimiser steps (e.g. to time a few batches); a partial last
            epoch is reported in :attr:`history` with its number of batches.
        checkpoint
            File to checkpoint training in (model, optimiser, random state, position in the
            epoch), written atomically at the end of every sampled epoch, at least every
            ``checkpoint_interval`` seconds, at the end of training and on Ctrl-C.
        checkpoint_interval
            Seconds between checkpoints within an epoch (full-batch epochs are one step each,
            so they are checkpointed on this clock too); ``0`` checkpoints after every step.
        resume
            Continue from ``checkpoint`` if it exists; the training parameters must be those
            it was written with. Resuming gives the result of an uninterrupted run.
        auxiliary
            An extra training objective (off by default: the published architecture),
            e.g. :class:`spacon.model.ConnectivityCodeObjective`: its loss is added to the
            reconstruction loss and its own parameters are trained with the model's. It is
            not checkpointed, so it cannot be resumed.

        Returns
        -------
        The model itself; the loss per epoch is in :attr:`history`.

        Notes
        -----
        Ctrl-C stops training between two steps, saves the checkpoint (when one is given) and
        raises :class:`spacon.model.TrainingInterrupted` saying how to resume.
        """
        if resume and checkpoint is None:
            raise SpaconInputError("resume=True needs checkpoint= (the file to resume from).")
        self._check_data_unchanged()
        config = TrainConfig(
            epochs, mode=mode, batch_size=batch_size, fanouts=fanouts,
            spatial_sampling=spatial_sampling, spatial_fanout=spatial_fanout, lr=lr,
            weight_decay=weight_decay, max_grad_norm=max_grad_norm, loss=loss, seed=seed,
            rank=rank, world_size=world_size, max_steps=max_steps,
            memory_budget_gb=memory_budget_gb, checkpoint_interval=checkpoint_interval,
            threads=threads, progress=(settings.verbosity != "error" if progress is None
                                       else progress),
            data=self.data.fingerprint(), model=self._architecture())
        device = resolve_device(device)
        sync = _sync(config, device)
        config = self._resolve(config, sync)
        self._check_trainable(config, sync)
        with _own_random_state(device), deterministic_algorithms(device), flush_denormals(), \
                keep_freed_memory(), cpu_threads(choose_threads(threads)) as n_threads:
            # independent dropout on each rank; None: a fresh seed, as documented
            torch.manual_seed(_sampler_seed(seed) + sync.rank)
            module, optimizer, checkpointer, state = self._start(
                config, sync, device, seed, n_threads, checkpoint, resume, auxiliary)
            sync.broadcast(module)
            self.train_params = config.resume_params()
            module.train()
            try:
                partial = fit(module, optimizer, self._batches(config, state, sync, device),
                              config, state, sync, checkpointer, auxiliary)
                sync.broadcast(module)  # batch-norm running statistics differ between ranks
            finally:
                self.module.to("cpu")
                if auxiliary is not None:
                    auxiliary.to("cpu")
        self.history = state.history + partial
        self.train_params.update(seconds=state.seconds, steps=state.steps, threads=state.threads)
        return self

    def _check_trainable(self, config: TrainConfig, sync) -> None:
        """Refuse training where the ranks hold different data, or where the model has a
        connectivity encoder and the data no connectome graph.
        """
        # every rank must train on the same data: 52 bits of the fingerprint, exact in float64
        if not sync.same([float(int(config.data[:13], 16))]):
            raise SpaconInputError(
                "the processes hold different training data (expression or graphs differ "
                "between ranks): every rank must read the same files with the same options.")
        # (after the ranks' check: every rank, with the same data, says it alike)
        if self.module.use_connectivity and self.data.connectome is None:
            key = self.params["connectome_key"]
            raise SpaconInputError(
                f"the model has a connectivity encoder but the data have no connectome graph "
                f"{key!r} to train it on: build one with spacon.pp.connectome_graph(adata, "
                f"connectivity, key_added={key!r}) and load the model again (the data loaded "
                "without one can only be embedded by the spatial encoder).")

    def _start(self, config: TrainConfig, sync, device, seed, n_threads: int, checkpoint,
               resume: bool, auxiliary):
        """The module on ``device``, its optimiser (over the auxiliary objective's parameters
        too), the checkpointer, and where training starts: the checkpoint's position when
        resuming, else the first step (the history so far kept).
        """
        module = self.module.to(device)
        parameters = list(module.parameters())
        if auxiliary is not None:
            if resume:
                raise SpaconInputError("training with an auxiliary objective cannot be "
                                       "resumed (it is not checkpointed).")
            parameters += list(auxiliary.to(device).parameters())
        optimizer = Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
        path = None if checkpoint is None else sync.checkpoint_path(Path(checkpoint))
        checkpointer = Checkpointer(path, module, optimizer, config)
        state = TrainState(history=list(self.history),
                           sampler_seed=sync.shared_int(_sampler_seed(seed)),
                           threads=n_threads)
        if resume:
            state = checkpointer.resume(state, sync)
            cap = config.max_steps  # the default schedule's cap when not given
            if cap is not None and state.steps > cap:
                warnings.warn(f"the checkpoint has run {state.steps} steps, more than "
                              f"max_steps={cap}: nothing is trained, and the model is "
                              "the checkpoint's.", SpaconWarning, stacklevel=3)
            state.threads = n_threads  # any count gives the same bits (nn._invariant)
        return module, optimizer, checkpointer, state

    def _threads(self, threads: int | None) -> int | None:
        """Threads to embed with: those given (``0`` refused), else those training used."""
        return threads if threads is not None else self.train_params.get("threads")

    def _resolve(self, config: TrainConfig, sync) -> TrainConfig:
        """Settle the mode (``"auto"``, distributed) and the default length of training."""
        mode, epochs, max_steps = config.mode, config.epochs, config.max_steps
        if sync.world_size > 1:
            if mode == "full":
                raise SpaconInputError(
                    "distributed training gives each rank its own seed cells: use "
                    "mode='sampled' (full-batch steps would repeat the same work on every rank).")
            mode = "sampled"
        if mode == "auto":
            mode = choose_mode(self.data, self.params["hidden_dims"], config.memory_budget_gb,
                               config.fanouts)
        if mode == "full":
            check_memory(self.full_batch_bytes(), "full-batch training",
                         "use mode='sampled' (or 'auto'): its memory is bounded by the batch size "
                         "and fan-outs.")
        if epochs is None:
            epochs = 500 if mode == "full" else 20
            if mode == "sampled" and max_steps is None:
                max_steps = DEFAULT_SAMPLED_STEPS
        return replace(config, mode=mode, epochs=epochs, max_steps=max_steps,
                       rank=sync.rank, world_size=sync.world_size)

    def _batches(self, config: TrainConfig, state: TrainState, sync, device):
        if config.mode == "full":
            return FullBatch(self.data, device)
        sampler = NeighborSampler(
            self.data.connectome, self.data.spatial, config.fanouts, config.batch_size,
            config.spatial_sampling, config.spatial_fanout, seed=state.sampler_seed,
            device=device)
        return SampledBatches(self.data, sampler, sync.rank, sync.world_size)

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed(
        self,
        adata=None,
        *,
        reconstruct: bool = False,
        max_edges: int = 20_000_000,
        device: str = "auto",
        threads: int | None = None,
    ):
        """Exact embeddings of every cell over full neighbourhoods, layer by layer.

        Each layer is computed for chunks of cells whose neighbourhoods together hold at most
        ``max_edges`` edges, so memory stays bounded however large the graphs are.

        Parameters
        ----------
        adata
            Data to embed (default: the training data). Without a connectome graph only the
            spatial encoder runs: this is how new tissue without connectivity is embedded.
            The model stays bound to its training data.
        reconstruct
            Also write the decoder's reconstruction (needs the connectome graph when the
            model has a connectivity encoder).
        max_edges
            Edge budget of one chunk.
        device
            ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads
            CPU threads (default: those training used, else chosen as :meth:`train` does).

        Returns
        -------
        ``None``; sets ``obsm['X_spacon_spa']``, ``obsm['X_spacon_con']`` (when the data has a
        connectome graph), ``layers['spacon_reconstructed']`` (``reconstruct=True``) and
        ``uns['spacon']`` (parameters, preprocessing and loss history).
        """
        if self._weights_digest() == self._initial_digest:
            warnings.warn("embedding with an untrained model: its weights are the random "
                          "start; call train() first.", SpaconWarning, stacklevel=3)
        max_edges = whole_number("max_edges", max_edges, 1)
        if adata is not None and adata is not self.adata:
            adata = writable(adata, False, "SpaCon.embed", stacklevel=4)  # (torch.no_grad's frame)
            check_preprocessing(adata, self.preprocessing, self.params.get("layer"))
        if adata is None or adata is self.adata:
            self._check_data_unchanged()
        data = self.data if adata is None or adata is self.adata else self._read(
            adata, connectome_optional=True)
        if reconstruct and self.module.use_connectivity and data.connectome is None:
            raise SpaconInputError("reconstruction needs the connectome graph on the data.")
        check_memory(embed_bytes(data, self.params["hidden_dims"], max_edges, reconstruct),
                     "exact embedding",
                     "lower max_edges= (the chunk size) or embed on a machine with more memory.")
        device = resolve_device(device)
        try:
            with cpu_threads(choose_threads(self._threads(threads))):
                out = embed_all(self.module.to(device).eval(), data, max_edges, device,
                                reconstruct)
        finally:
            self.module.to("cpu")
        data.adata.obsm[_keys.EMBEDDING_SPA] = out["spatial"].numpy()
        if out["connectivity"] is not None:
            data.adata.obsm[_keys.EMBEDDING_CON] = out["connectivity"].numpy()
        if out["reconstructed"] is not None:
            data.adata.layers[_keys.RECONSTRUCTED] = out["reconstructed"].numpy()
        data.adata.uns[_keys.MODEL_UNS] = self._uns()
        logger.info("embedded %d cells: obsm[%r]%s%s", data.adata.n_obs, _keys.EMBEDDING_SPA,
                    "" if out["connectivity"] is None else
                    f" and obsm[{_keys.EMBEDDING_CON!r}] (spacon.tl.fuse mixes them)",
                    "" if out["reconstructed"] is None else
                    f"; layers[{_keys.RECONSTRUCTED!r}]")

    def _uns(self) -> dict:
        from .. import __version__

        params = {k: v for k, v in self.params.items() if v is not None}
        train = {k: v for k, v in self.train_params.items() if v is not None}
        preprocessing = {k: {n: x for n, x in v.items() if x is not None}
                         for k, v in self.preprocessing.items() if v}
        return {
            "params": params, "train_params": train, "version": __version__,
            "preprocessing": preprocessing,
            "loss_history": np.array([h["loss"] for h in self.history], dtype=np.float64),
        }

    def prepare(self, adata, *, normalize: bool = True) -> list[str]:
        """Preprocess new tissue as the training data were, in place.

        Raw counts are normalised as the training data were (unless ``normalize=False``), and
        the spatial graph is built with the training settings when ``adata`` has none.

        Parameters
        ----------
        adata
            New tissue with the model's genes.
        normalize
            Normalise raw counts.

        Returns
        -------
        What was done, one phrase per step; ``X``, ``layers['counts']``,
        ``uns['spacon_normalize']`` and the spatial graph's ``obsp``/``uns`` keys are written.
        """
        check_anndata(adata, "SpaCon.prepare")
        return prepare_like(adata, self.preprocessing, spatial_key=self.params["spatial_key"],
                            normalize=normalize)

    # ------------------------------------------------------------------ connectivity
    def fit_connectivity_map(self, connectivity, *, unit_key: str | None = None,
                             embedding: np.ndarray | None = None, negative: str = "drop",
                             n_components: int = 10, seed: int = 0, device: str = "auto",
                             threads: int | None = None) -> SpaCon:
        """Fit the map from the spatial embedding to the training cells' connectivity rows.

        Ridge regression (penalty by a spatial cross-validation inside the training cells:
        runs of sections, units kept whole) from each training cell's spatial embedding to
        its row of ``connectivity`` (its unit's row, with ``unit_key``); negative values are
        dropped (``negative="absolute"``: their magnitude). :meth:`save` stores it beside the
        model, and :meth:`predict_connectivity` applies it to new tissue.

        Parameters
        ----------
        connectivity
            The training connectome (:class:`~spacon.io.Connectivity`, path or matrix).
        unit_key
            ``obs`` column of the training data mapping cells to connectivity units.
        embedding
            The training cells' spatial embedding when already computed (``obsm
            ['X_spacon_spa']`` after :meth:`embed`); computed otherwise.
        negative, n_components, seed
            Negative values; principal axes of the low-rank code; seed of the inner folds.
        device, threads
            As for :meth:`embed`.

        Returns
        -------
        The model itself, with :attr:`connectivity_map` set.
        """
        from ._connectivity_map import fit_on_training_data

        check_option("negative", negative, ("drop", "absolute", "error"))
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
                or n_components < 1:
            raise SpaconInputError(f"n_components must be a positive whole number, got "
                                   f"{n_components!r}.")
        if embedding is None:
            embedding = self._spatial_embedding(self.data, device, threads)
        embedding = np.asarray(embedding)
        width = self.params["hidden_dims"][-1]
        if embedding.shape != (self.adata.n_obs, width):
            raise SpaconInputError(
                f"embedding must be the training cells' spatial embedding, cells x {width} "
                f"({self.adata.n_obs} x {width}: obsm['X_spacon_spa'] after embed()), got "
                f"shape {embedding.shape}.")
        graph = self.preprocessing.get("spatial_graph") or {}
        self.connectivity_map = fit_on_training_data(
            self.adata, connectivity, embedding, unit_key=unit_key,
            section_key=graph.get("section_key"), spatial_key=graph.get("spatial_key",
                                                                        _keys.SPATIAL),
            negative=negative, n_components=n_components, seed=seed)
        return self

    def predict_connectivity(self, adata, *, unit_key: str | None = None,
                             key_added: str = _keys.CONNECTIVITY_CODE, device: str = "auto",
                             threads: int | None = None):
        """Predict the connectivity of new tissue from its spatial embedding.

        ``adata`` (the model's genes, log-normalised, with a spatial graph: see
        :meth:`prepare`) is embedded by the spatial encoder alone and each cell's embedding
        mapped by :attr:`connectivity_map` (:meth:`fit_connectivity_map`; ``spacon run``
        fits and saves one when it has a connectome) to a profile over the training
        connectome's targets.

        Parameters
        ----------
        adata
            New tissue; it needs no connectivity.
        unit_key
            ``obs`` column of ``adata``: predict each unit's profile (the mean of its cells').
        key_added
            ``obsm`` key of each cell's low-rank code.
        device, threads
            As for :meth:`embed`.

        Returns
        -------
        The predicted profiles as a :class:`pandas.DataFrame` (rows = cells or units,
        columns = the training connectome's target labels). They are ridge regression's
        predictions, so a target far from a cell's can come out slightly below 0 although no
        training value is; read them as relative strengths (``clip(lower=0)`` for a
        non-negative matrix). Sets ``obsm['X_spacon_spa']``,
        ``obsm[key_added]`` (each cell's predicted profile on the top principal axes of
        the training profiles) and ``uns['spacon_connectivity_map']`` (``targets``,
        ``components``, ``profile_mean``, ``alpha``, ``params``).
        """
        from ._connectivity_map import predicted_profiles

        if self.connectivity_map is None:
            raise SpaconInputError(
                "this model has no connectivity map: fit one with "
                "model.fit_connectivity_map(training_connectivity) on the training data "
                "(spacon run stores one in DIR/model when it trains with a connectome).")
        adata = writable(adata, False, "SpaCon.predict_connectivity")
        if unit_key is not None and unit_key not in adata.obs:
            raise SpaconInputError(no_obs_column(adata, unit_key, "connectivity units", "unit column "))
        data = self._read(adata, connectome_optional=True)
        check_preprocessing(adata, self.preprocessing, self.params.get("layer"))
        z = self._spatial_embedding(data, device, threads)
        cmap = self.connectivity_map
        profiles = predicted_profiles(cmap, adata, z, unit_key)
        adata.obsm[_keys.EMBEDDING_SPA] = z
        adata.obsm[key_added] = cmap.code(z)
        adata.uns[_keys.CONNECTIVITY_MAP] = {
            "targets": cmap.targets, "components": cmap.components,
            "profile_mean": cmap.profile_mean, "alpha": cmap.alpha,
            "params": {k: v for k, v in cmap.params.items() if v is not None}}
        return profiles

    def _spatial_embedding(self, data: ModelData, device: str, threads: int | None):
        """The spatial encoder's embedding of every cell of ``data`` (its connectome unused)."""
        device = resolve_device(device)
        try:
            with cpu_threads(choose_threads(self._threads(threads))), \
                    torch.no_grad():
                out = embed_all(self.module.to(device).eval(), replace(data, connectome=None),
                                20_000_000, device, False)
        finally:
            self.module.to("cpu")
        return out["spatial"].numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Save to a directory.

        Writes ``model.pt`` (state_dict), ``model.json`` (constructor parameters, gene
        names, package version, loss history) and, when one was fit,
        ``connectivity_map.npz`` (:meth:`fit_connectivity_map`), each atomically. A folder
        that holds a saved model already is refused unless ``overwrite=True``.
        """
        from .. import __version__

        path = Path(path)
        if (path / "model.pt").exists() and not overwrite:
            raise SpaconInputError(f"{path}/model.pt exists; pass overwrite=True to replace it.")
        meta = {
            "params": self.params, "train_params": self.train_params, "version": __version__,
            "var_names": self.var_names.tolist(), "history": self.history,
            "preprocessing": self.preprocessing,
        }
        # first, so that nothing is written when it fails
        text = json.dumps(meta, indent=1, default=jsonable)
        make_folder(path)
        with atomic_path(path / "model.pt") as tmp:
            torch.save(self.module.state_dict(), tmp)
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(text)
        if self.connectivity_map is not None:
            self.connectivity_map.save(path / CONNECTIVITY_MAP_FILE)
        else:  # never leave another model's map beside this one
            (path / CONNECTIVITY_MAP_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, adata, *, prepare: bool = False) -> SpaCon:
        """Load a model saved by :meth:`save` (or the ``model/`` of a ``spacon run`` output
        folder named by ``path``) and attach ``adata`` (its genes must match).

        ``adata`` needs the spatial graph (``prepare=True`` first preprocesses it as the
        training data were, see :meth:`prepare`); without a connectome graph the model embeds
        with its spatial encoder alone.
        """
        path = model_directory(path)
        check_anndata(adata, "SpaCon.load")
        meta = read_model_json(path)
        model = cls.__new__(cls)
        model.params = meta["params"]
        model.var_names = np.asarray(meta["var_names"])
        model.preprocessing = meta.get("preprocessing", {})
        if prepare:
            _check_genes_before_preparing(adata, model.var_names, model.preprocessing)
            model.prepare(adata)
        check_preprocessing(adata, model.preprocessing, model.params.get("layer"))
        model.data = model._read(adata, connectome_optional=True)
        model._signature = model._bound_signature()
        model.module = SpaConModule(
            len(model.var_names), model.params["hidden_dims"], model.params["fusion"],
            model.params["dropout"], use_connectivity=model.params["connectome_key"] is not None,
            skip_connections=model.params.setdefault("skip_connections", False),
        )
        model.module.load_state_dict(_read_weights(path, model.module))
        model._initial_digest = None  # saved weights: whatever they are, they were chosen
        model.history = meta["history"]
        model.train_params = meta["train_params"]
        has_map = (path / CONNECTIVITY_MAP_FILE).exists()
        model.connectivity_map = ConnectivityMap.load(path / CONNECTIVITY_MAP_FILE) if has_map \
            else None
        return model

    @classmethod
    def load_original(
        cls, path: str | Path, adata, *, hidden_dims=None, fusion: str | None = None, **kwargs
    ) -> SpaCon:
        """Load ``model_params.pth`` saved by the original SpaCon (PyPI ``spacon`` 0.1.x).

        The same weights on the same graphs give the same embeddings. ``hidden_dims`` and
        ``fusion`` are read from the checkpoint when not given (the decoder's first layer takes
        the fused embedding: twice the last dimension when concatenated, once when added).
        Other keyword arguments (``spatial_key``, ``connectome_key``, ``layer``, ``seed``,
        ``dropout``) go to :class:`SpaCon`.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "encoder_spa.conv1.lin_src" not in state:
            raise SpaconInputError(f"{path} is not a state_dict of the original SpaCon module.")
        dims = [state[f"encoder_spa.conv{i}.lin_src"].shape[1] for i in (1, 2, 3)]
        if hidden_dims is not None and list(hidden_dims) != dims:
            raise SpaconInputError(f"checkpoint has hidden_dims {dims}, not {list(hidden_dims)}.")
        first = state.get("decoder.conv3_.lin_src")
        found = None if first is None else {2 * dims[-1]: "concat", dims[-1]: "add"}.get(
            first.shape[0])
        if fusion is not None and found is not None and fusion != found:
            raise SpaconInputError(f"checkpoint was trained with fusion={found!r}, not "
                                   f"{fusion!r}; leave fusion= out to take it from the file.")
        fusion = fusion or found or "concat"
        n_genes = state["encoder_spa.conv1.lin_src"].shape[0]
        if n_genes != adata.n_vars:
            raise SpaconInputError(
                f"checkpoint was trained on {n_genes} genes, the data has {adata.n_vars}."
            )
        model = cls(adata, hidden_dims=dims, fusion=fusion, skip_connections=True, **kwargs)
        model.module.load_state_dict(translate_original_state(state))
        return model


def _sync(config: TrainConfig, device):
    """The ranks training together: this process alone, or an initialised process group."""
    group = process_group()
    if group is None:
        return LocalSync() if (config.rank, config.world_size) == (0, 1) else _Shard(config)
    if (config.rank, config.world_size) not in ((0, 1), group):
        raise SpaconInputError(
            f"rank={config.rank}, world_size={config.world_size} disagree with the process "
            f"group {group}; leave them out, they are taken from it.")
    return GroupSync(*group, device)


class _Shard(LocalSync):
    """One shard of the seed cells trained alone (``rank``/``world_size`` without a group)."""

    def __init__(self, config: TrainConfig):
        self.rank, self.world_size = config.rank, config.world_size


def _check_genes_before_preparing(adata, var_names, preprocessing: dict) -> None:
    """:func:`check_genes`, and where raw counts hold more genes than the model's, the way to
    select them that keeps each cell's total as the training data's was: normalise first.
    """
    from ..pp._normalize import looks_like_counts

    norm = preprocessing.get("normalize")
    names = set(np.asarray(adata.var_names).astype(str))
    if (norm and len(names) > len(var_names) and names.issuperset(var_names)
            and looks_like_counts(adata, integer=norm.get("integer_counts", True))):
        raise SpaconInputError(
            f"the data hold the model's {len(var_names):,} genes and "
            f"{len(names) - len(var_names):,} more, as raw counts: normalise them with all their "
            "genes first, as the training data were, then select the model's (selecting first "
            "shifts each cell's total). With meta = the model directory's model.json read by "
            "json.load: norm = meta['preprocessing']['normalize']; spacon.pp.normalize(adata, "
            "target_sum=norm['target_sum'], genes=norm.get('genes')); adata = "
            "adata[:, meta['var_names']].copy(). spacon embed does this itself.")
    check_genes(adata, var_names)


def _sampler_seed(seed: int | None) -> int:
    """The sampler's seed: ``seed``, or a fresh one for ``seed=None``."""
    return int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed


@contextlib.contextmanager
def _own_random_state(device=None):
    """Seed and draw inside without touching the caller's torch random state (CPU and every
    CUDA device: ``torch.manual_seed`` seeds them all).
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield


MODEL_JSON_KEYS = ("params", "var_names", "history", "train_params")


def read_model_json(path: Path) -> dict:
    """``model.json`` of a saved model, refused by name when it is not one :meth:`SpaCon.save`
    wrote (cut short, edited, another program's).
    """
    try:
        meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise SpaconInputError(f"{path / 'model.json'} is not readable JSON ({err}): the file "
                               "is damaged or cut short; save the model again.") from None
    missing = [k for k in MODEL_JSON_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise SpaconInputError(f"{path / 'model.json'} is not a spacon model's: it has no "
                               f"{', '.join(missing)}; save the model again.")
    params = meta["params"]
    if not isinstance(params, dict) or not {"hidden_dims", "fusion", "dropout",
                                            "connectome_key"} <= set(params):
        raise SpaconInputError(f"{path / 'model.json'}: its params lack the model's sizes "
                               "(hidden_dims, fusion, dropout, connectome_key); save the model "
                               "again.")
    return meta


def _read_weights(path: Path, module) -> dict:
    """``model.pt``'s weights, checked against the module ``model.json`` describes."""
    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    except PermissionError as err:
        raise SpaconInputError(f"cannot read {path / 'model.pt'}: {err.strerror}.") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        # torch's kinds for a file that is not its own (a cut zip archive: OSError)
        raise SpaconInputError(f"{path / 'model.pt'} is not a saved spacon model's weights "
                               f"({type(err).__name__}): the file is damaged or cut short; "
                               "save the model again.") from None
    expected = module.state_dict()
    if not isinstance(state, dict):
        raise SpaconInputError(f"{path / 'model.pt'} holds no weights (a state_dict).")
    wrong = [k for k in expected if k not in state or tuple(state[k].shape)
             != tuple(expected[k].shape)] + [k for k in state if k not in expected]
    if wrong:
        raise SpaconInputError(
            f"{path / 'model.pt'} does not match {path / 'model.json'}: {len(wrong)} weights "
            f"differ in name or size (first: {wrong[0]}); the two files come from different "
            "models. Save the model again, both files together.")
    return state


def model_directory(path: str | Path) -> Path:
    """The saved model ``path`` names: the folder itself, or ``path/model`` when ``path`` is
    the output folder of ``spacon run``.
    """
    path = Path(path)
    if not path.is_dir():
        raise SpaconInputError(f"no spacon model in {str(path)!r}: "
                               + ("it is a file, not a folder." if path.exists() else
                                  "it does not exist."))
    if not (path / "model.json").exists() and (path / "model" / "model.json").exists():
        path = path / "model"
    if (path / "model.json").exists() and (path / "model.pt").exists():
        return path
    hint = ""
    summary = path / "summary.json"
    if summary.exists():
        try:
            encoder = json.loads(summary.read_text())["training"].get("encoder")
        except (ValueError, KeyError, AttributeError):
            encoder = None
        if encoder == "smoothing":
            hint = (" That run used --encoder smoothing, which trains no model: run again with "
                    "--encoder spacon for a model to apply to new tissue.")
    raise SpaconInputError(f"no spacon model in {str(path)!r} (model.json and model.pt, or a "
                           f"run's output folder holding model/).{hint}")
