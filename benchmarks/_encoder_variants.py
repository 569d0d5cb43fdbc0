"""Training recipes for SpaCon's spatial encoder, tried from outside ``spacon.model``.

A small full-batch trainer around spacon's own layers (``spacon.nn.GATEncoder``, ``GATConv``,
``Adjacency``): the encoder is SpaCon's; what varies is the input (genes or expression PCs), the
aggregation (attention or plain mean), the embedding size, the decoder (SpaCon's graph-attention
mirror, or a linear map), the loss (summed MSE of every cell's expression as SpaCon trains,
masked-feature reconstruction as GraphMAE, a contrastive term against shuffled
neighbourhoods as DGI/GraphST) and the training length and learning rate.

``train_variant(adata, name)`` writes ``obsm['X_spacon_spa']`` like ``SpaCon.embed``; names
are keys of ``VARIANTS`` or ``key=value`` overrides joined by ``+`` (e.g.
``"default+loss=mask+input=pca"``). Used by ``bench_encoders.py --variants`` and
``encoder_ablation.py``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from spacon import _keys
from spacon._utils import choose_threads
from spacon.graph._stored import spatial_graph_of
from spacon.nn import Adjacency, GATConv, GATEncoder
from spacon.nn._adjacency import aggregate

# SpaCon's spatial encoder as spacon.SpaCon trains it full-batch today
BASE = {
    "input": "genes", "agg": "gat", "dims": (256, 64, 16), "decoder": "gat", "loss": "sum",
    "mask_rate": 0.5, "contrast": 0.0, "epochs": 500, "lr": 5e-3, "weight_decay": 1e-4,
    "dropout": 0.1, "n_pcs": 30,
}
VARIANTS = {
    "default": {},
    "masked": {"loss": "mask", "input": "pca", "decoder": "gat"},
    "smoothing-init": {"agg": "smoothing", "input": "pca", "decoder": "linear", "loss": "mask"},
}


def parse(name: str) -> dict:
    """A variant's settings: a named variant, then ``key=value`` overrides joined by '+'."""
    parts = name.split("+")
    cfg = dict(BASE)
    for part in parts:
        if "=" not in part:
            cfg.update(VARIANTS[part])
            continue
        key, value = part.split("=", 1)
        if key == "dims":
            cfg[key] = tuple(int(v) for v in value.split(","))
        elif isinstance(BASE[key], (int, float)) and not isinstance(BASE[key], bool):
            cfg[key] = type(BASE[key])(float(value))
        else:
            cfg[key] = value
    return cfg


class MeanEncoder(nn.Module):
    """SpaCon's encoder with attention replaced by the plain neighbourhood mean."""

    def __init__(self, dims, dropout):
        super().__init__()
        self.lins = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm1d(b) for b in dims[1:])
        for lin in self.lins:
            nn.init.xavier_normal_(lin.weight, gain=1.414)

    def forward(self, x, adj):
        deg = (adj.indptr[1:] - adj.indptr[:-1]).to(x.dtype)
        values = 1.0 / deg[adj.row]
        outs, h = [], x
        for i, (lin, bn) in enumerate(zip(self.lins, self.bns)):
            h = bn(aggregate(values, lin(h), adj))
            h = F.elu(h) if i < 2 else h
            outs.append(h)
        return outs


class SharpGATConv(GATConv):
    """GATConv with the usual GAT score, LeakyReLU(0.2) instead of a sigmoid: attention weights
    are no longer confined within a factor e of uniform, so edges across a boundary can be
    turned down."""

    def forward(self, x, adj, return_attention_weights=False):
        h = x @ self.weight
        logits = F.leaky_relu((h @ self.att_src)[adj.indices] + (h[: adj.n_dst] @ self.att_dst)[
            adj.row], 0.2).clamp(-30, 30)
        weights = torch.exp(logits)
        total = torch.zeros(adj.n_dst, dtype=h.dtype).index_add_(0, adj.row, weights)
        alpha = weights / total[adj.row]
        return aggregate(F.dropout(alpha, self.dropout, self.training), h, adj)


def sharp_encoder(dims, dropout):
    encoder = GATEncoder(dims, dropout)
    for i in (1, 2, 3):
        setattr(encoder, f"conv{i}", SharpGATConv(dims[i - 1], dims[i], dropout))
    return encoder


class SmoothingEncoder(nn.Module):
    """Three linear mean-aggregation layers whose weights start at the identity: untrained, the
    embedding is exactly the 3-hop smoothing baseline; training can only move it from there."""

    def __init__(self, n_in, n_layers=3):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.eye(n_in)) for _ in range(n_layers))

    def forward(self, x, adj):
        deg = (adj.indptr[1:] - adj.indptr[:-1]).to(x.dtype)
        values = 1.0 / deg[adj.row]
        outs, h = [], x
        for w in self.weights:
            h = aggregate(values, h @ w, adj)
            outs.append(h)
        return outs


class Model(nn.Module):
    def __init__(self, n_in, n_out, cfg):
        super().__init__()
        dims = [n_in, *cfg["dims"]]
        if cfg["agg"] == "smoothing":
            dims = [n_in, n_in, n_in, n_in]
            self.encoder = SmoothingEncoder(n_in)
        elif cfg["agg"] == "gat":
            self.encoder = GATEncoder(dims, cfg["dropout"])
        elif cfg["agg"] == "sharp":
            self.encoder = sharp_encoder(dims, cfg["dropout"])
        else:
            self.encoder = MeanEncoder(dims, cfg["dropout"])
        z = dims[-1]
        if cfg["decoder"] == "gat":
            self.decoder = GATEncoder([z, dims[2], dims[1], n_out], cfg["dropout"])
        else:
            self.decoder = nn.Linear(z, n_out)
        self.mask_token = nn.Parameter(torch.zeros(n_in))
        self.discriminator = nn.Bilinear(z, z, 1)

    def encode(self, x, adj):
        return self.encoder(x, adj)[-1]

    def decode(self, z, adj):
        if isinstance(self.decoder, GATEncoder):
            return self.decoder(z, adj)[-1]
        return self.decoder(z)


def features(adata, cfg, seed, graph=None):
    """Input and target: log expression (genes) or its PCs, both standardised per column
    for the PCA input; the target is always what the input is."""
    from spacon.tl._smooth import expression_pcs

    if cfg["input"] == "pca":
        x = expression_pcs(adata, cfg["n_pcs"], seed=seed).astype(np.float32)
        x = x / x[:, 0].std()
    elif cfg["input"] == "multispati":  # the components that vary most smoothly in space
        from spacon.tl._spatial_pca import N_INPUT_PCS, multispati

        pcs = expression_pcs(adata, N_INPUT_PCS, seed=seed)
        x = multispati(pcs, graph, cfg["n_pcs"])[0].astype(np.float32)
        x = x / x[:, 0].std()
    else:
        x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def loss_of(model, x, adj, cfg, gen):
    n = x.shape[0]
    if cfg["loss"] == "mask":
        masked = torch.rand(n, generator=gen) < cfg["mask_rate"]
        x_in = torch.where(masked[:, None], model.mask_token[None], x)
        z = model.encode(x_in, adj)
        x_hat = model.decode(z, adj)
        # scaled cosine error on the masked cells (GraphMAE), gamma 2
        cos = F.cosine_similarity(x_hat[masked], x[masked], dim=1)
        loss = ((1 - cos) ** 2).mean()
    else:
        z = model.encode(x, adj)
        x_hat = model.decode(z, adj)
        loss = F.mse_loss(x_hat, x, reduction=cfg["loss"])
    if cfg["contrast"] > 0:
        # DGI/GraphST: a cell's embedding against its neighbourhood summary, versus the
        # embedding of shuffled features in the same graph
        perm = torch.randperm(n, generator=gen)
        z_fake = model.encode(x[perm], adj)
        deg = (adj.indptr[1:] - adj.indptr[:-1]).to(x.dtype)
        summary = torch.sigmoid(F.normalize(aggregate(1.0 / deg[adj.row], z, adj), dim=1))
        real = model.discriminator(z, summary).squeeze(1)
        fake = model.discriminator(z_fake, summary).squeeze(1)
        bce = F.binary_cross_entropy_with_logits(
            torch.cat([real, fake]), torch.cat([torch.ones(n), torch.zeros(n)]))
        scale = loss.detach() / bce.detach().clamp_min(1e-8) if cfg["loss"] == "sum" else 1.0
        loss = loss + cfg["contrast"] * scale * bce
    return loss


def train_variant(adata, name: str = "default", *, connectome: bool = False, seed: int = 0,
                  spatial_key: str = _keys.SPATIAL_GRAPH) -> dict:
    """Train one recipe full-batch on the spatial graph; write ``obsm['X_spacon_spa']``."""
    cfg = parse(name)
    # denormal floats (tiny gradients and Adam moments) made CPU steps 2.3 times slower
    torch.set_flush_denormal(True)
    # scanpy's numba steps reset torch's thread count; on a shared CPU the extra OpenMP thread
    # made each step ten times slower in wall time
    torch.set_num_threads(choose_threads())
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    graph = spatial_graph_of(adata, spatial_key)
    x = features(adata, cfg, seed, graph)
    adj = Adjacency.from_scipy(graph.expand())
    model = Model(x.shape[1], x.shape[1], cfg)
    if cfg["decoder"] == "gat" and cfg["input"] == "genes":
        # as SpaCon: start the output BatchNorm at each gene's mean and a tenth of its spread
        with torch.no_grad():
            model.decoder.bn3.bias.copy_(x.mean(0))
            model.decoder.bn3.weight.copy_(0.1 * x.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    t0 = time.perf_counter()
    history = []
    model.train()
    for _ in range(cfg["epochs"]):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, x, adj, cfg, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        history.append(loss.item())
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        adata.obsm[_keys.EMBEDDING_SPA] = model.encode(x, adj).numpy()
    return {"variant": name, **cfg, "seconds": round(seconds, 1),
            "loss_first": history[0] if history else float("nan"),
            "loss_last": history[-1] if history else float("nan")}
