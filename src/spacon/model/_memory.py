"""Memory estimates of full-batch training and exact embedding, and the training-mode choice."""

from __future__ import annotations

import logging
import math

from .._utils import available_memory_bytes
from ._data import ModelData

logger = logging.getLogger(__name__)

# bytes of training state per graph edge and layer (logits, weights, attention, dropout mask,
# their gradients, CSR indices and the cached transpose), measured on the CPU
BYTES_PER_EDGE_LAYER = 40
BYTES_PER_EDGE_INDEX = 48
# embedding: bytes per edge of one edge-list chunk (attention logits, weights, CSR), and
# copies of a chunk's node features (gathered input, transformed output, temporaries), both
# measured with benchmarks/bench_memory.py
BYTES_PER_EDGE_EMBED = 40
CHUNK_NODE_COPIES = 2.5


def full_batch_bytes(data: ModelData, hidden_dims) -> int:
    """Estimated peak memory of one full-batch training step, in bytes."""
    n = data.n_cells
    e_spa = data.spatial.n_edges + n
    e_con = 0 if data.connectome is None else data.connectome.n_edges + n
    layers_con = 6 if data.connectome is not None else 0
    layers_spa = 3 if data.connectome is not None else 6
    edges = e_con * (layers_con * BYTES_PER_EDGE_LAYER + BYTES_PER_EDGE_INDEX) + e_spa * (
        layers_spa * BYTES_PER_EDGE_LAYER + BYTES_PER_EDGE_INDEX)
    dims = [data.n_genes, *hidden_dims]
    nodes = n * 4 * (3 * sum(dims) * (2 if data.connectome is not None else 1) + 2 * dims[0])
    return int(edges + nodes)


def embed_bytes(data: ModelData, hidden_dims, max_edges: int, reconstruct: bool) -> int:
    """Estimated peak memory of exact layer-wise embedding, in bytes.

    The dense expression and every layer's output for all cells, plus one chunk's work: its
    edges (or attention blocks) and its nodes' input and transformed features.
    """
    n, genes = data.n_cells, data.n_genes
    encoders = 2 if data.connectome is not None else 1
    outputs = n * 4 * (genes + encoders * sum(hidden_dims) + (2 * genes if reconstruct else 0))
    # edge lists (cell-level graphs) cost per edge; factored graphs go one small dense
    # attention block per unit at a time
    edge_lists = [g.n_edges + n for g in (data.spatial, data.connectome)
                  if g is not None and g.unit_size.max() <= 1]
    chunk_edges = min(max_edges, max(edge_lists, default=0))
    chunk_nodes = n * 4 * (genes + hidden_dims[0]) * CHUNK_NODE_COPIES
    return int(outputs + chunk_edges * BYTES_PER_EDGE_EMBED + chunk_nodes)


# a connectome with at most this many edges per cell trains full batch when it fits memory:
# the sum of the former default fan-outs (10/5/5), kept when they were reduced so that the
# same data train the same way (a full-batch step over so few edges is cheap and exact)
FULL_BATCH_DEGREE = 20


def choose_mode(data: ModelData, hidden_dims, memory_budget_gb: float, fanouts) -> str:
    """``"full"`` when a full-batch step fits the memory budget and the connectome is no
    denser than what sampling would visit (sum of fan-outs per cell, at least
    ``FULL_BATCH_DEGREE``), else ``"sampled"``, whose steps cost in proportion to the sampled
    subgraph, not the implied edges.
    """
    need = full_batch_bytes(data, hidden_dims)
    free = available_memory_bytes()
    if free is not None:
        memory_budget_gb = min(memory_budget_gb, 0.8 * free / 1024**3)
    degree = 0.0 if data.connectome is None else data.connectome.n_edges / max(
        data.connectome.n_cells, 1)
    # a fan-out of -1 samples every neighbour: sampling would visit as many edges as full batch
    visits = math.inf if min(fanouts) < 0 else max(sum(fanouts), FULL_BATCH_DEGREE)
    dense = degree > visits
    too_big = need > memory_budget_gb * 1024**3
    mode = "sampled" if dense or too_big else "full"
    visits = "all" if visits == math.inf else visits
    edges = f"the connectome has {degree:.0f} edges per cell"
    why = (f"{edges}, more than sampling visits ({visits})" if dense else
           "that is over the budget" if too_big else
           "it fits (no connectome: the spatial encoder alone)" if data.connectome is None else
           f"it fits, and {edges}, no more than sampling would visit ({visits})")
    logger.info("training mode %s: full batch would need %.2f GB (budget %.2f GB); %s", mode,
                need / 1024**3, memory_budget_gb, why)
    return mode
