"""The AnnData-facing SpaCon model: validate, train, embed, save and load."""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .. import _keys
from .._errors import SpaconInputError, TrainingInterrupted
from .._utils import (
    available_memory_bytes,
    check_memory,
    check_option,
    deterministic_algorithms,
    resolve_device,
    respect_thread_limit,
    seed_everything,
    unique_sorted,
)
from ..graph import FactoredGraph, NeighborSampler
from ..io import atomic_path
from ..nn import Adjacency, BlockAdjacency, SpaConModule
from ._checkpoint import (
    StopFlag,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from ._distributed import (
    all_sum,
    any_ranks,
    average_gradients,
    broadcast_module,
    process_group,
    same_on_all_ranks,
)
from ._graphs import connectome_graph_of, spatial_graph_of

logger = logging.getLogger(__name__)

TrainMode = Literal["auto", "full", "sampled"]
# bytes of training state per graph edge and layer (logits, weights, attention, dropout mask,
# their gradients, CSR indices and the cached transpose), measured on the CPU
BYTES_PER_EDGE_LAYER = 40
BYTES_PER_EDGE_INDEX = 48
# embedding: bytes per edge of one edge-list chunk (attention logits, weights, CSR), and
# copies of a chunk's node features (gathered input, transformed output, temporaries), both
# measured with benchmarks/bench_memory.py
BYTES_PER_EDGE_EMBED = 40
CHUNK_NODE_COPIES = 2.5
# default cap on sampled training steps (see SpaCon.train)
DEFAULT_SAMPLED_STEPS = 500


class SpaCon:
    """SpaCon on an AnnData: a dual-encoder graph attention autoencoder.

    The connectivity encoder sees each cell's connectome neighbours, the spatial encoder its
    spatial neighbours; a decoder with skip connections reconstructs expression. The two
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
        check_option("fusion", fusion, ("concat", "add"))
        hidden_dims = [int(d) for d in hidden_dims]
        if len(hidden_dims) != 3 or min(hidden_dims) < 1:
            raise SpaconInputError(f"hidden_dims needs three positive sizes, got {hidden_dims}.")
        self.params = {
            "hidden_dims": hidden_dims, "fusion": fusion, "dropout": float(dropout),
            "skip_connections": bool(skip_connections),
            "spatial_key": spatial_key, "connectome_key": connectome_key, "layer": layer,
            "seed": seed,
        }
        self.var_names = np.asarray(adata.var_names).astype(str)
        self._bind(adata)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.module = SpaConModule(
                adata.n_vars, hidden_dims, fusion, dropout,
                use_connectivity=connectome_key is not None, skip_connections=skip_connections,
            )
            self._init_output_scale()
        self.history: list[dict] = []
        self.train_params: dict = {}
        self.epochs_done = 0

    def _init_output_scale(self) -> None:
        """Start the decoder's last BatchNorm at each gene's mean, with a tenth of its spread.

        The published decoder ends in a BatchNorm whose output starts at mean 0, variance 1,
        while log-normalised expression has gene means of 1-4: with lr 1e-4 most early training
        would only move that offset. Starting from the data's scale spends it on structure.
        """
        x = self.features
        mean = np.asarray(x.mean(axis=0)).ravel()
        sq = x.multiply(x).mean(axis=0) if sp.issparse(x) else (x**2).mean(axis=0)
        std = np.sqrt(np.maximum(np.asarray(sq).ravel() - mean**2, 1e-6))
        bn = self.module.decoder.bn1
        with torch.no_grad():
            bn.bias.copy_(torch.from_numpy(mean.astype(np.float32)))
            bn.weight.copy_(torch.from_numpy(0.1 * std.astype(np.float32)))

    # ------------------------------------------------------------------ data
    def _bind(self, adata) -> None:
        """Attach ``adata``: check it and read its expression and graphs."""
        from ..pp import check_expression

        genes = np.asarray(adata.var_names).astype(str)
        if len(genes) != len(self.var_names) or (genes != self.var_names).any():
            missing = sorted(set(self.var_names) - set(genes))
            extra = sorted(set(genes) - set(self.var_names))
            raise SpaconInputError(
                "the data's genes differ from the model's: "
                f"{len(missing)} missing (e.g. {', '.join(missing[:5]) or '-'}), "
                f"{len(extra)} extra (e.g. {', '.join(extra[:5]) or '-'})"
                + ("" if missing or extra else ", same genes in another order")
                + "; subset and order adata with adata[:, model.var_names]."
            )
        layer = self.params["layer"]
        if layer is not None and layer not in adata.layers:
            raise SpaconInputError(f"adata.layers has no {layer!r}.")
        check_expression(adata)
        x = adata.X if layer is None else adata.layers[layer]
        self.adata = adata
        self.features = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(
            x, dtype=np.float32)
        self.spatial = spatial_graph_of(adata, self.params["spatial_key"])
        key = self.params["connectome_key"]
        self.connectome = None if key is None else connectome_graph_of(adata, key)

    def _x(self, nodes: np.ndarray | None, device) -> torch.Tensor:
        x = self.features if nodes is None else self.features[nodes]
        if sp.issparse(x):
            x = x.toarray()
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)

    def embed_bytes(self, max_edges: int = 20_000_000, reconstruct: bool = False) -> int:
        """Estimated peak memory of :meth:`embed`, in bytes.

        The dense expression and every layer's output for all cells, plus one chunk's work:
        its edges (or attention blocks) and its nodes' input and transformed features.
        """
        n, genes = self.spatial.n_cells, self.adata.n_vars
        dims = self.params["hidden_dims"]
        encoders = 2 if self.connectome is not None and self.module.use_connectivity else 1
        outputs = n * 4 * (genes + encoders * sum(dims) + (2 * genes if reconstruct else 0))
        # edge lists (cell-level graphs) cost per edge; factored graphs go one small dense
        # attention block per unit at a time
        edge_lists = [g.n_edges + n for g in (self.spatial, self.connectome)
                      if g is not None and g.unit_size.max() <= 1]
        chunk_edges = min(max_edges, max(edge_lists, default=0))
        chunk_nodes = n * 4 * (genes + dims[0]) * CHUNK_NODE_COPIES
        return int(outputs + chunk_edges * BYTES_PER_EDGE_EMBED + chunk_nodes)

    # ------------------------------------------------------------------ training
    def full_batch_bytes(self) -> int:
        """Estimated peak memory of one full-batch training step, in bytes."""
        n = self.spatial.n_cells
        e_spa = self.spatial.n_edges + n
        e_con = 0 if self.connectome is None else self.connectome.n_edges + n
        layers_con = 6 if self.connectome is not None else 0
        layers_spa = 3 if self.connectome is not None else 6
        edges = e_con * (layers_con * BYTES_PER_EDGE_LAYER + BYTES_PER_EDGE_INDEX) + e_spa * (
            layers_spa * BYTES_PER_EDGE_LAYER + BYTES_PER_EDGE_INDEX)
        dims = [self.adata.n_vars, *self.params["hidden_dims"]]
        nodes = n * 4 * (3 * sum(dims) * (2 if self.connectome is not None else 1) + 2 * dims[0])
        return int(edges + nodes)

    def train(
        self,
        epochs: int | None = None,
        *,
        mode: TrainMode = "auto",
        batch_size: int = 256,
        fanouts=(10, 5, 5),
        spatial_sampling: Literal["neighbors", "induced"] = "neighbors",
        spatial_fanout: int = 20,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        max_grad_norm: float = 5.0,
        loss: Literal["sum", "mean"] = "sum",
        memory_budget_gb: float = 4.0,
        seed: int | None = 0,
        device: str = "auto",
        progress: bool = True,
        rank: int = 0,
        world_size: int = 1,
        max_steps: int | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_interval: float = 300.0,
        resume: bool = False,
    ) -> SpaCon:
        """Train by reconstructing expression.

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
            edges per cell than the fan-outs would sample, else sampled.
        batch_size, fanouts
            Seed cells per batch and connectivity neighbours sampled per hop.
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
            Seed of dropout and sampling; the same seed gives the same CPU result.
        device
            ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        progress
            Show a progress bar with the running loss.
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

        Ctrl-C stops training between two steps, saves the checkpoint (when one is given) and
        raises :class:`spacon.model.TrainingInterrupted` saying how to resume.

        Returns
        -------
        The model itself; the loss per epoch is in :attr:`history`.
        """
        check_option("mode", mode, ("auto", "full", "sampled"))
        check_option("loss", loss, ("sum", "mean"))
        check_option("spatial_sampling", spatial_sampling, ("neighbors", "induced"))
        if batch_size < 1:
            raise SpaconInputError(f"batch_size must be >= 1, got {batch_size}.")
        group = process_group()
        if group is not None:
            if (rank, world_size) not in ((0, 1), group):
                raise SpaconInputError(
                    f"rank={rank}, world_size={world_size} disagree with the process group "
                    f"{group}; leave them out, they are taken from it.")
            rank, world_size = group
            if mode == "full":
                raise SpaconInputError(
                    "distributed training gives each rank its own seed cells: use "
                    "mode='sampled' (full-batch steps would repeat the same work on every rank).")
            mode = "sampled"
        if mode == "auto":
            mode = self._choose_mode(memory_budget_gb, fanouts)
        if mode == "full":
            check_memory(self.full_batch_bytes(), "full-batch training",
                         "use mode='sampled' (or 'auto'): its memory is bounded by the batch size "
                         "and fan-outs.")
        if epochs is None:
            epochs = 500 if mode == "full" else 20
            if mode == "sampled" and max_steps is None:
                max_steps = DEFAULT_SAMPLED_STEPS
        if int(epochs) < 1:
            raise SpaconInputError(f"epochs must be >= 1, got {epochs}.")
        device = resolve_device(device)
        respect_thread_limit()
        seed_everything(seed)
        if group is not None and seed is not None:
            torch.manual_seed(seed + rank)  # independent dropout on each rank
        params = {
            "epochs": int(epochs), "mode": mode, "batch_size": batch_size, "fanouts": list(fanouts),
            "spatial_sampling": spatial_sampling, "spatial_fanout": spatial_fanout, "lr": lr,
            "weight_decay": weight_decay, "max_grad_norm": max_grad_norm, "loss": loss,
            "seed": seed, "rank": rank, "world_size": world_size,
        }
        module = self.module.to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
        # position: next epoch and batch to run, and the running loss of that epoch
        pos = {"epoch": 0, "batch": 0, "total": 0.0, "count": 0, "steps": 0, "seconds": 0.0}
        history = list(self.history)
        checkpoint = None if checkpoint is None else Path(checkpoint)
        if checkpoint is not None and group is not None:
            checkpoint = checkpoint.with_name(f"{checkpoint.stem}.rank{rank}{checkpoint.suffix}")
        state, failed = None, None
        if resume and checkpoint is not None and checkpoint.exists():
            try:
                state = load_checkpoint(checkpoint, params)
            except SpaconInputError as err:
                failed = err
        if group is not None and resume and any_ranks([failed is not None], device)[0]:
            raise failed or SpaconInputError("another rank's checkpoint cannot be resumed; see "
                                             "its message.")
        if failed is not None:
            raise failed
        if state is not None:
            module.load_state_dict(state["module"])
            optimizer.load_state_dict(state["optimizer"])
            restore_rng(state)
            pos, history = state["position"], state["history"]
            logger.info("resuming training at epoch %d, batch %d", pos["epoch"], pos["batch"])
        if group is not None and resume and not same_on_all_ranks(
                [pos["epoch"], pos["batch"], pos["steps"]], device):
            raise SpaconInputError(
                "the ranks' checkpoints stop at different steps (or one is missing); resume "
                "from a set written together, or start again without resume.")
        if group is not None:
            broadcast_module(module)
        self.train_params = dict(params)
        module.train()
        if mode == "full":
            batches, n_batches = self._full_batch(device), 1
        else:
            sampler = NeighborSampler(
                self.connectome, self.spatial, fanouts, batch_size, spatial_sampling,
                spatial_fanout, seed=0 if seed is None else seed,
            )
            # every rank takes the same number of steps (the smallest shard's batches)
            n_batches = min(sampler.n_batches(r, world_size) for r in range(world_size))
            if n_batches == 0:
                raise SpaconInputError(
                    f"{world_size} ranks need at least {world_size} cells; the data have "
                    f"{sampler.n_cells}.")

        def save():
            if checkpoint is not None:
                save_checkpoint(checkpoint, module, optimizer, {
                    "train_params": params, "position": dict(pos), "history": list(history)})

        from tqdm.auto import tqdm

        total = epochs * n_batches if max_steps is None else min(epochs * n_batches, max_steps)
        bar = tqdm(total=total, initial=pos["epoch"] * n_batches + pos["batch"],
                   disable=not progress, desc="training", unit="step")
        start = time.perf_counter() - pos["seconds"]
        last_save = time.perf_counter()
        stop = StopFlag()
        partial: list[dict] = []
        with stop.catching_sigint(), deterministic_algorithms(device):
            while pos["epoch"] < epochs and not (max_steps is not None and pos["steps"] >= max_steps):
                steps = batches if mode == "full" else (
                    self._to_device(b, device) for b in itertools.islice(
                        sampler.epoch(pos["epoch"], rank, world_size, start=pos["batch"]),
                        n_batches - pos["batch"]))
                stopping = False
                for x, adj_con, adj_spa in steps:
                    optimizer.zero_grad(set_to_none=True)
                    _, _, x_hat = module(x, adj_con, adj_spa)
                    batch_loss = F.mse_loss(x_hat, x, reduction=loss)
                    batch_loss.backward()
                    if group is not None:
                        average_gradients(module)
                    torch.nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
                    optimizer.step()
                    value = batch_loss.item() / (len(x) if loss == "sum" else 1)
                    pos["total"] += value * len(x)
                    pos["count"] += len(x)
                    pos["batch"] += 1
                    pos["steps"] += 1
                    pos["seconds"] = time.perf_counter() - start
                    bar.update()
                    bar.set_postfix(loss=f"{value:.4g}")
                    due = time.perf_counter() - last_save >= checkpoint_interval
                    if group is not None:  # ranks stop and checkpoint at the same step
                        stopping, due = any_ranks([stop.requested, due], device)
                    else:
                        stopping = stop.requested
                    if stopping or (max_steps is not None and pos["steps"] >= max_steps):
                        break
                    if pos["batch"] < n_batches and due:
                        save()
                        last_save = time.perf_counter()
                if stopping:
                    save()
                    bar.close()
                    where = f" to {checkpoint}" if checkpoint is not None else ""
                    raise TrainingInterrupted(
                        f"training interrupted at epoch {pos['epoch']}, batch {pos['batch']}; "
                        f"checkpoint saved{where}" + (
                            "; run the same command with --resume (or train(..., resume=True)) "
                            "to continue." if checkpoint is not None else
                            " nowhere (no checkpoint file was given)."),
                        checkpoint,
                    )
                total_loss, count = (pos["total"], pos["count"]) if group is None else all_sum(
                    [pos["total"], pos["count"]], device)
                if pos["batch"] < n_batches:  # max_steps reached inside the epoch
                    partial = [{"epoch": len(history), "loss": total_loss / count,
                                "batches": pos["batch"]}]
                    break
                history.append({"epoch": len(history), "loss": total_loss / count})
                pos.update(epoch=pos["epoch"] + 1, batch=0, total=0.0, count=0)
                if mode != "full" or time.perf_counter() - last_save >= checkpoint_interval:
                    # (distributed runs are sampled: every rank saves at every epoch end)
                    save()
                    last_save = time.perf_counter()
        bar.close()
        pos["seconds"] = time.perf_counter() - start
        save()
        if group is not None:
            broadcast_module(module)  # batch-norm running statistics differ between ranks
        self.history = history + partial
        self.epochs_done = len(history)
        self.train_params["seconds"] = pos["seconds"]
        self.train_params["steps"] = pos["steps"]
        self.module.to("cpu")
        return self

    def _choose_mode(self, memory_budget_gb: float, fanouts) -> str:
        """Full batch when it fits the memory budget and the connectome is no denser than
        what sampling would visit (sum of fan-outs per cell); otherwise neighbour sampling,
        whose steps cost in proportion to the sampled subgraph, not the implied edges.
        """
        need = self.full_batch_bytes()
        free = available_memory_bytes()
        if free is not None:
            memory_budget_gb = min(memory_budget_gb, 0.8 * free / 1024**3)
        degree = 0.0 if self.connectome is None else self.connectome.n_edges / max(
            self.connectome.n_cells, 1)
        dense = degree > sum(f for f in fanouts if f > 0)
        mode = "sampled" if dense or need > memory_budget_gb * 1024**3 else "full"
        logger.info(
            "training mode %s: full batch would need %.2f GB (budget %.2f GB); connectome has "
            "%.0f edges per cell", mode, need / 1024**3, memory_budget_gb, degree,
        )
        return mode

    def _full_batch(self, device):
        x = self._x(None, device)
        adj_spa = Adjacency.from_scipy(self.spatial.expand()).to(device)
        adj_con = None if self.connectome is None else Adjacency.from_scipy(
            self.connectome.expand()).to(device)
        return [(x, adj_con, adj_spa)]

    def _to_device(self, batch, device):
        n = len(batch.n_id)
        x = self._x(batch.n_id, device)
        adj_spa = Adjacency.from_edges(*batch.spatial_edges, n, n).to(device)
        adj_con = None if batch.connectome_edges is None else Adjacency.from_edges(
            *batch.connectome_edges, n, n).to(device)
        return x, adj_con, adj_spa

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed(
        self,
        adata=None,
        *,
        reconstruct: bool = False,
        max_edges: int = 20_000_000,
        device: str = "auto",
        progress: bool = False,
    ):
        """Exact embeddings of every cell over full neighbourhoods, layer by layer.

        Each layer is computed for chunks of cells whose neighbourhoods together hold at most
        ``max_edges`` edges, so memory stays bounded however large the graphs are.

        Parameters
        ----------
        adata
            Data to embed (default: the training data). Without a connectome graph only the
            spatial encoder runs: this is how new tissue without connectivity is embedded.
        reconstruct
            Also write the decoder's reconstruction (needs the connectome graph).
        max_edges
            Edge budget of one chunk.
        device
            ``"auto"``, ``"cpu"`` or ``"cuda"``.
        progress
            Show a progress bar.

        Returns
        -------
        ``None``; sets ``obsm['X_spacon_spa']``, ``obsm['X_spacon_con']`` (when the data has a
        connectome graph), ``layers['spacon_reconstructed']`` (``reconstruct=True``) and
        ``uns['spacon']`` (parameters and loss history).
        """
        if adata is not None and adata is not self.adata:
            self._bind_checked(adata)
        adata = self.adata
        check_memory(self.embed_bytes(max_edges, reconstruct), "exact embedding",
                     "lower max_edges= (the chunk size) or embed on a machine with more memory.")
        device = resolve_device(device)
        module = self.module.to(device).eval()
        x = self._x(None, "cpu")
        run = _LayerWise(max_edges, device, progress)
        h1, h2, z_spa = run.encoder(module.encoder_spa, x, self.spatial)
        adata.obsm[_keys.EMBEDDING_SPA] = z_spa.numpy()
        if self.connectome is not None and module.use_connectivity:
            c1, c2, z_con = run.encoder(module.encoder_con, x, self.connectome)
            adata.obsm[_keys.EMBEDDING_CON] = z_con.numpy()
            if reconstruct:
                z = torch.cat([z_con, z_spa], 1) if module.fusion == "concat" else (
                    F.normalize(z_con, dim=1) + F.normalize(z_spa, dim=1))
                adata.layers[_keys.RECONSTRUCTED] = run.decoder(
                    module.decoder, h1 + c1, h2 + c2, z, self.connectome).numpy()
        elif reconstruct:
            if module.use_connectivity:
                raise SpaconInputError("reconstruction needs the connectome graph on the data.")
            adata.layers[_keys.RECONSTRUCTED] = run.decoder(
                module.decoder, h1, h2, z_spa, self.spatial).numpy()
        module.to("cpu")
        adata.uns[_keys.MODEL_UNS] = self._uns()

    def _uns(self) -> dict:
        from .. import __version__

        params = {k: v for k, v in self.params.items() if v is not None}
        train = {k: v for k, v in self.train_params.items() if v is not None}
        return {
            "params": params, "train_params": train, "version": __version__,
            "loss_history": np.array([h["loss"] for h in self.history], dtype=np.float64),
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Save to a directory.

        Writes ``model.pt`` (state_dict) and ``model.json`` (constructor parameters, gene
        names, package version, loss history), each atomically.
        """
        from .. import __version__

        path = Path(path)
        if (path / "model.pt").exists() and not overwrite:
            raise SpaconInputError(f"{path}/model.pt exists; pass overwrite=True to replace it.")
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "params": self.params, "train_params": self.train_params, "version": __version__,
            "var_names": self.var_names.tolist(), "history": self.history,
            "epochs_done": self.epochs_done,
        }
        with atomic_path(path / "model.pt") as tmp:
            torch.save(self.module.state_dict(), tmp)
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: str | Path, adata) -> SpaCon:
        """Load a model saved by :meth:`save` and attach ``adata`` (its genes must match)."""
        path = Path(path)
        if not (path / "model.json").exists() or not (path / "model.pt").exists():
            raise SpaconInputError(f"{path} is not a spacon model directory (model.json/model.pt).")
        meta = json.loads((path / "model.json").read_text())
        model = cls.__new__(cls)
        model.params = meta["params"]
        model.var_names = np.asarray(meta["var_names"])
        model._bind_checked(adata)
        model.module = SpaConModule(
            len(model.var_names), model.params["hidden_dims"], model.params["fusion"],
            model.params["dropout"], use_connectivity=model.params["connectome_key"] is not None,
            skip_connections=model.params.setdefault("skip_connections", True),
        )
        model.module.load_state_dict(torch.load(path / "model.pt", map_location="cpu"))
        model.history = meta["history"]
        model.train_params = meta["train_params"]
        model.epochs_done = meta["epochs_done"]
        return model

    def _bind_checked(self, adata) -> None:
        """Attach ``adata``; without a connectome graph on it, read only the spatial graph."""
        key = self.params["connectome_key"]
        if key is not None and not (
            _keys.connectivities(key) in adata.obsp or _keys.neighbors(key) in adata.uns
        ):
            saved, self.params["connectome_key"] = key, None
            try:
                self._bind(adata)
            finally:
                self.params["connectome_key"] = saved
        else:
            self._bind(adata)

    @classmethod
    def load_original(
        cls, path: str | Path, adata, *, hidden_dims=None, fusion: str = "concat", **kwargs
    ) -> SpaCon:
        """Load ``model_params.pth`` saved by the original SpaCon (PyPI ``spacon`` 0.1.x).

        The same weights on the same graphs give the same embeddings. ``hidden_dims`` is read
        from the checkpoint when not given.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "encoder_spa.conv1.lin_src" not in state:
            raise SpaconInputError(f"{path} is not a state_dict of the original SpaCon module.")
        dims = [state[f"encoder_spa.conv{i}.lin_src"].shape[1] for i in (1, 2, 3)]
        if hidden_dims is not None and list(hidden_dims) != dims:
            raise SpaconInputError(f"checkpoint has hidden_dims {dims}, not {list(hidden_dims)}.")
        n_genes = state["encoder_spa.conv1.lin_src"].shape[0]
        if n_genes != adata.n_vars:
            raise SpaconInputError(
                f"checkpoint was trained on {n_genes} genes, the data has {adata.n_vars}."
            )
        model = cls(adata, hidden_dims=dims, fusion=fusion, skip_connections=True, **kwargs)
        model.module.load_state_dict(translate_original_state(state))
        return model


def translate_original_state(state: dict) -> dict:
    """Rename the original SpaCon's state_dict keys to spacon's module layout."""
    out = {}
    for key, value in state.items():
        if key.endswith(".lin_dst"):
            continue  # the original shares one weight for sources and targets
        new = key.replace(".lin_src", ".weight").replace(".module.", ".")
        for i in (1, 2, 3):
            new = new.replace(f"conv{i}_.", f"conv{i}.").replace(f"bn{i}_.", f"bn{i}.")
        if new.endswith((".att_src", ".att_dst")):
            value = value.reshape(-1)
        out[new] = value
    return out


class _LayerWise:
    """Exact layer-by-layer inference in chunks of target cells with bounded edge counts."""

    def __init__(self, max_edges: int, device, progress: bool):
        self.max_edges = int(max_edges)
        self.device = device
        self.progress = progress

    def chunks(self, graph: FactoredGraph):
        """Consecutive runs of cells whose degrees (plus self-loops) sum to <= max_edges."""
        n = graph.n_cells
        cost = np.cumsum(graph.degree(np.arange(n)) + 1)
        lo = 0
        while lo < n:
            base = cost[lo - 1] if lo else 0
            hi = int(np.searchsorted(cost, base + self.max_edges, side="right"))
            hi = max(hi, lo + 1)
            yield np.arange(lo, min(hi, n))
            lo = hi

    def unit_chunks(self, graph: FactoredGraph):
        """Cells of consecutive units whose dense attention blocks sum to <= max_edges."""
        cost = np.cumsum(graph.unit_size * (graph.unit_degree + 1))
        lo = 0
        while lo < len(cost):
            base = cost[lo - 1] if lo else 0
            hi = max(int(np.searchsorted(cost, base + self.max_edges, side="right")), lo + 1)
            targets = graph.members[graph.member_ptr[lo] : graph.member_ptr[hi]]
            lo = hi
            if len(targets):
                yield targets

    def propagate(self, fn, h: torch.Tensor, graph: FactoredGraph) -> torch.Tensor:
        """Apply ``fn(x_nodes, adj)`` to every cell with its full neighbourhood.

        Factored graphs go by whole units, one dense attention block per unit; cell graphs by
        edge lists.
        """
        by_unit = graph.unit_size.max() > 1
        out = None
        local = np.full(graph.n_cells, -1, dtype=np.int64)
        for targets in self.unit_chunks(graph) if by_unit else self.chunks(graph):
            if by_unit:
                groups = graph.blocks(targets)
                sources = np.concatenate([src for _, src, _ in groups])
            else:
                edge_targets, sources = graph.neighbors(targets)
            local[targets] = np.arange(len(targets))
            extra = unique_sorted(sources[local[sources] < 0])
            local[extra] = np.arange(len(targets), len(targets) + len(extra))
            nodes = np.concatenate([targets, extra])
            if by_unit:
                adj = BlockAdjacency(
                    [(torch.from_numpy(pos), torch.from_numpy(local[src]), has_self)
                     for pos, src, has_self in groups],
                    len(targets), len(nodes),
                )
            else:
                adj = Adjacency.from_edges(edge_targets, local[sources], len(targets), len(nodes))
            local[nodes] = -1
            res = fn(h[torch.from_numpy(nodes)].to(self.device), adj.to(self.device)).cpu()
            if out is None:
                out = torch.empty((graph.n_cells, res.shape[1]), dtype=res.dtype)
            out[torch.from_numpy(targets)] = res
        return out

    def encoder(self, encoder, x, graph):
        """The three layer outputs of an encoder for every cell."""
        outs, h = [], x
        for i in range(3):
            h = self.propagate(lambda xs, adj, i=i: encoder.layer(i, xs, adj), h, graph)
            outs.append(h)
        return outs

    def decoder(self, decoder, h1, h2, z, graph):
        """The decoder's reconstruction for every cell."""
        h3_ = self.propagate(lambda xs, adj: F.elu(decoder.bn3(decoder.conv3(xs, adj))), z, graph)
        h2_ = self.propagate(
            lambda xs, adj: F.elu(decoder.bn2(decoder.conv2(xs, adj))), decoder.skip(h3_, h2),
            graph)
        return self.propagate(
            lambda xs, adj: decoder.bn1(decoder.conv1(xs, adj)), decoder.skip(h2_, h1), graph)
