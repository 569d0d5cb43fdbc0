"""Exact layer-wise inference: every cell over its full neighbourhoods, in bounded chunks.

Training sees sampled neighbourhoods; embedding does not sample. Each layer is computed for
all cells before the next, for chunks of target cells whose neighbourhoods hold at most
``max_edges`` edges, so memory stays bounded however large the graphs are. The layers are
the module's own (:meth:`GATEncoder.layer`, :meth:`GATDecoder.layer`,
:meth:`SpaConModule.fuse`): one source of truth for what a layer computes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..graph import FactoredGraph
from ..graph._ops import unique_sorted
from ..nn import Adjacency, BlockAdjacency
from ..nn._gat import Projected


class LayerWise:
    """Layer-by-layer inference in chunks of target cells with bounded edge counts.

    Parameters
    ----------
    max_edges
        Edge budget of one chunk (a factored graph's dense attention blocks count their
        cells x sources).
    device
        Where each chunk is computed; results are gathered on the CPU.
    """

    def __init__(self, max_edges: int, device):
        self.max_edges = int(max_edges)
        self.device = device

    def encoder(self, encoder, x: torch.Tensor, graph: FactoredGraph) -> list[torch.Tensor]:
        """The three layer outputs ``h1, h2, z`` of an encoder for every cell."""
        outs, h = [], x
        for i in range(3):
            h = self.propagate(lambda xs, adj, i=i: encoder.layer(i, xs, adj), h, graph,
                               encoder.conv(i))
            outs.append(h)
        return outs

    def decoder(self, decoder, h1, h2, z, graph: FactoredGraph) -> torch.Tensor:
        """The decoder's reconstruction for every cell (``h1, h2``: the skip features)."""
        h = self.propagate(lambda xs, adj: decoder.layer(2, xs, adj), z, graph,
                           decoder.conv(2))
        h = self.propagate(lambda xs, adj: decoder.layer(1, xs, adj), decoder.skip(h, h2),
                           graph, decoder.conv(1))
        return self.propagate(lambda xs, adj: decoder.layer(0, xs, adj), decoder.skip(h, h1),
                              graph, decoder.conv(0))

    def propagate(self, fn, h: torch.Tensor, graph: FactoredGraph, conv) -> torch.Tensor:
        """Apply ``fn(x_nodes, adj)`` to every cell with its full neighbourhood.

        Factored graphs go by whole units, one dense attention block per unit; their chunks'
        sources can span most cells (a dense connectome), so the layer's ``conv`` projects
        every cell once and chunks take rows of that. Cell graphs go by edge lists.
        """
        by_unit = graph.unit_size.max() > 1
        if by_unit:
            h = self.project(conv, h)
        out = None
        local = np.full(graph.n_cells, -1, dtype=np.int64)
        for targets in self._unit_chunks(graph) if by_unit else self._chunks(graph):
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
            index = torch.from_numpy(nodes)
            rows = (h.rows(index.to(self.device)) if by_unit
                    else h.index_select(0, index).to(self.device))
            res = fn(rows, adj.to(self.device)).cpu()
            if out is None:
                out = torch.empty((graph.n_cells, res.shape[1]), dtype=res.dtype)
            out.index_copy_(0, torch.from_numpy(targets), res)
        return out

    def project(self, conv, h: torch.Tensor, rows: int = 65536) -> Projected:
        """``conv.project`` of every row of ``h``, on the device, ``rows`` rows at a time."""
        parts = [conv.project(h[lo:lo + rows].to(self.device)) for lo in range(0, len(h), rows)]
        return Projected(*(torch.cat(p) for p in zip(*parts)))

    def _chunks(self, graph: FactoredGraph):
        """Consecutive runs of cells whose degrees (plus self-loops) sum to <= max_edges."""
        n = graph.n_cells
        cost = np.cumsum(graph.degree(np.arange(n)) + 1)
        lo = 0
        while lo < n:
            base = cost[lo - 1] if lo else 0
            hi = max(int(np.searchsorted(cost, base + self.max_edges, side="right")), lo + 1)
            yield np.arange(lo, min(hi, n))
            lo = hi

    def _unit_chunks(self, graph: FactoredGraph):
        """Cells of consecutive units whose dense attention blocks sum to <= max_edges; a unit
        whose block alone is larger goes a slice of its cells at a time (each cell's attention
        is its own row: a region-level unit of 5,000 cells over 100,000 sources was one
        block of 5e8 values).
        """
        cost = np.cumsum(graph.unit_size * (graph.unit_degree + 1))
        lo = 0
        while lo < len(cost):
            base = cost[lo - 1] if lo else 0
            hi = int(np.searchsorted(cost, base + self.max_edges, side="right"))
            if hi <= lo:  # this unit alone exceeds max_edges
                cells = graph.members[graph.member_ptr[lo] : graph.member_ptr[lo + 1]]
                step = max(1, self.max_edges // (int(graph.unit_degree[lo]) + 1))
                for start in range(0, len(cells), step):
                    yield cells[start : start + step]
                lo += 1
                continue
            targets = graph.members[graph.member_ptr[lo] : graph.member_ptr[hi]]
            lo = hi
            if len(targets):
                yield targets


def embed_all(module, data, max_edges: int, device, reconstruct: bool) -> dict:
    """Both encoders' embeddings (and the reconstruction) of every cell of ``data``.

    Returns
    -------
    ``{"spatial": z_spa, "connectivity": z_con or None, "reconstructed": x_hat or None}``
    as CPU tensors. Without a connectome graph on ``data`` only the spatial encoder runs.
    """
    run = LayerWise(max_edges, device)
    x = data.expression()
    h1, h2, z_spa = run.encoder(module.encoder_spa, x, data.spatial)
    out = {"spatial": z_spa, "connectivity": None, "reconstructed": None}
    if module.use_connectivity and data.connectome is not None:
        c1, c2, z_con = run.encoder(module.encoder_con, x, data.connectome)
        out["connectivity"] = z_con
        if reconstruct:
            out["reconstructed"] = run.decoder(module.decoder, h1 + c1, h2 + c2,
                                               module.fuse(z_con, z_spa), data.connectome)
    elif reconstruct and not module.use_connectivity:
        out["reconstructed"] = run.decoder(module.decoder, h1, h2, z_spa, data.spatial)
    return out
