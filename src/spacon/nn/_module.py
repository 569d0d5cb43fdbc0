"""SpaCon's dual-encoder graph attention autoencoder (pure torch, knows nothing of AnnData)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._adjacency import Adjacency
from ._batch_norm import BatchNorm1d
from ._gat import GATConv, Projected
from ._invariant import elu

Fusion = Literal["concat", "add"]


class GATEncoder(nn.Module):
    """Three attention layers, each followed by BatchNorm; ELU after the first two."""

    def __init__(self, dims: list[int], dropout: float = 0.1):
        super().__init__()
        self.conv1 = GATConv(dims[0], dims[1], dropout)
        self.bn1 = BatchNorm1d(dims[1])
        self.conv2 = GATConv(dims[1], dims[2], dropout)
        self.bn2 = BatchNorm1d(dims[2])
        self.conv3 = GATConv(dims[2], dims[3], dropout)
        self.bn3 = BatchNorm1d(dims[3])

    def conv(self, i: int) -> GATConv:
        """The attention layer of layer ``i`` (0, 1, 2)."""
        return (self.conv1, self.conv2, self.conv3)[i]

    def layer(self, i: int, x: torch.Tensor | Projected, adj: Adjacency) -> torch.Tensor:
        """Layer ``i`` (0, 1, 2) alone: what layer-wise inference needs (``x`` may be
        projected by :meth:`conv` ``(i).project`` already).
        """
        conv, bn = [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)][i]
        out = bn(conv(x, adj))
        return elu(out) if i < 2 else out

    def forward(self, x: torch.Tensor, adj: Adjacency):
        """Return the three layers' outputs ``h1, h2, z``."""
        h1 = self.layer(0, x, adj)
        h2 = self.layer(1, h1, adj)
        return h1, h2, self.layer(2, h2, adj)


class GATDecoder(nn.Module):
    """Mirror of the encoder; skip connections from the encoders' first two layers optional."""

    def __init__(self, dims: list[int], dropout: float = 0.1, skip_connections: bool = True):
        super().__init__()
        self.skip_connections = skip_connections
        self.conv3 = GATConv(dims[3], dims[2], dropout)
        self.bn3 = BatchNorm1d(dims[2])
        self.conv2 = GATConv(dims[2], dims[1], dropout)
        self.bn2 = BatchNorm1d(dims[1])
        self.conv1 = GATConv(dims[1], dims[0], dropout)
        self.bn1 = BatchNorm1d(dims[0])

    def conv(self, i: int) -> GATConv:
        """The attention layer of decoder layer ``i`` (2, 1, 0 in the order they run)."""
        return (self.conv1, self.conv2, self.conv3)[i]

    def layer(self, i: int, x: torch.Tensor | Projected, adj: Adjacency) -> torch.Tensor:
        """Decoder layer ``i`` (2, 1, 0 in the order they run) alone, for layer-wise inference.

        ``x`` already holds the skip features where skip connections are on (and may be
        projected already).
        """
        conv, bn = [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)][i]
        out = bn(conv(x, adj))
        return elu(out) if i > 0 else out

    def forward(self, h1, h2, z, adj: Adjacency) -> torch.Tensor:
        """Reconstruct expression from the fused embedding ``z`` (and the skip features)."""
        h3_ = self.layer(2, z, adj)
        h2_ = self.layer(1, self.skip(h3_, h2), adj)
        return self.layer(0, self.skip(h2_, h1), adj)

    def skip(self, h: torch.Tensor, encoder_h: torch.Tensor | None) -> torch.Tensor:
        """Add the encoders' features when skip connections are on."""
        return h + encoder_h if self.skip_connections else h


class SpaConModule(nn.Module):
    """Two encoders (connectivity graph, spatial graph), fused, and a decoder.

    Parameters
    ----------
    n_genes
        Input features.
    hidden_dims
        Sizes of the three encoder layers, e.g. ``(256, 64, 16)``.
    fusion
        ``"concat"`` the two last-layer embeddings, or ``"add"`` their L2-normalised vectors.
    dropout
        Attention dropout.
    use_connectivity
        ``False`` builds the spatial encoder alone (data without a connectome); the decoder
        then runs on the spatial graph.
    skip_connections
        Add the encoders' first two layers to the decoder's (the published architecture).
        They let the decoder reconstruct without the embeddings, which then carry less: off
        by default in :class:`spacon.SpaCon` (see its ``skip_connections``).
    """

    def __init__(
        self,
        n_genes: int,
        hidden_dims=(256, 64, 16),
        fusion: Fusion = "concat",
        dropout: float = 0.1,
        use_connectivity: bool = True,
        skip_connections: bool = True,
    ):
        super().__init__()
        dims = [n_genes, *hidden_dims]
        if len(dims) != 4:
            raise ValueError("hidden_dims needs three sizes, e.g. (256, 64, 16)")
        if fusion not in ("concat", "add"):
            raise ValueError(f"fusion must be 'concat' or 'add', got {fusion!r}")
        self.fusion = fusion
        self.use_connectivity = use_connectivity
        self.encoder_spa = GATEncoder(dims, dropout)
        if use_connectivity:
            self.encoder_con = GATEncoder(dims, dropout)
        z_dim = 2 * dims[3] if (use_connectivity and fusion == "concat") else dims[3]
        self.decoder = GATDecoder([*dims[:3], z_dim], dropout, skip_connections)

    def forward(self, x, adj_con: Adjacency | None, adj_spa: Adjacency):
        """Return ``(z_con, z_spa, x_hat)``; ``z_con`` is ``None`` without connectivity."""
        h1, h2, z_spa = self.encoder_spa(x, adj_spa)
        if not self.use_connectivity:
            return None, z_spa, self.decoder(h1, h2, z_spa, adj_spa)
        h1_con, h2_con, z_con = self.encoder_con(x, adj_con)
        x_hat = self.decoder(h1 + h1_con, h2 + h2_con, self.fuse(z_con, z_spa), adj_con)
        return z_con, z_spa, x_hat

    def fuse(self, z_con: torch.Tensor, z_spa: torch.Tensor) -> torch.Tensor:
        """The decoder's input: both embeddings concatenated, or their unit vectors added."""
        if self.fusion == "concat":
            return torch.cat([z_con, z_spa], dim=1)
        return F.normalize(z_con, dim=1) + F.normalize(z_spa, dim=1)
