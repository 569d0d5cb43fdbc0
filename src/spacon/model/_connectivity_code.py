"""An optional auxiliary training objective: the spatial embedding also predicts a low-rank
code of each training cell's connectivity row.

The spatial encoder is trained to reconstruct expression only, so it has no reason to carry
connectivity information for tissue whose connectivity it never sees. With this objective a
small linear head maps the spatial embedding ``z_spa`` to the top principal components of the
cell's connectivity row (computed from the training cells' rows only), trained by squared
error on the cells whose connectivity is known. The target is fixed data, so no gradient
reaches it. Cells whose connectivity is unknown (held out) contribute nothing: their rows are
not in the code's inputs and they are masked out of the loss.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._errors import SpaconInputError
from ..nn._invariant import linear, squared_error
from ._connectivity_map import principal_axes


class ConnectivityCodeObjective(nn.Module):
    """The auxiliary loss of :meth:`spacon.SpaCon.train` (``auxiliary=``).

    Parameters
    ----------
    profiles
        Connectivity rows of every cell (sparse ``cells x targets``); only the rows of
        ``known`` cells are read, and the caller must have removed unknown cells' columns
        (e.g. held-out units) if they must not be seen.
    known
        Which cells' connectivity may be used (boolean, one per cell).
    n_components
        Principal components of the known rows that make the code.
    embedding_dim
        Size of the spatial embedding (the encoder's last hidden size).
    weight
        Weight of the loss relative to the reconstruction loss, per code dimension and cell
        (the code is standardised to unit variance per component).
    seed
        Seed of the head's initial weights.
    """

    def __init__(self, profiles, known: np.ndarray, n_components: int, embedding_dim: int,
                 weight: float = 1.0, seed: int = 0):
        super().__init__()
        if int(n_components) < 1:
            raise SpaconInputError(f"the connectivity code needs at least one component, got "
                                   f"{n_components}.")
        known = np.asarray(known, dtype=bool)
        profiles = sp.csr_matrix(profiles, dtype=np.float64)
        if profiles.shape[0] != len(known):
            raise SpaconInputError(f"{profiles.shape[0]} connectivity rows for {len(known)} "
                                   "cells.")
        if known.sum() < 2:
            raise SpaconInputError("the connectivity code needs at least two cells with "
                                   "known connectivity.")
        rows = profiles[np.flatnonzero(known)]
        axes, mean = principal_axes(rows, n_components)
        code = np.zeros((len(known), len(axes)), dtype=np.float32)
        raw = rows @ axes.T - mean @ axes.T
        sd = raw.std(axis=0)
        code[known] = raw / np.where(sd > 0, sd, 1.0)
        self.register_buffer("code", torch.from_numpy(code))
        self.register_buffer("known", torch.from_numpy(known))
        self.weight = float(weight)
        generator = torch.Generator().manual_seed(seed)
        self.head = nn.Linear(embedding_dim, len(axes))
        with torch.no_grad():
            bound = 1.0 / np.sqrt(embedding_dim)
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.zero_()

    def forward(self, z_spa: torch.Tensor, batch, reduction: str = "sum") -> torch.Tensor:
        """The weighted squared error of the code predicted from ``z_spa`` for ``batch``'s
        cells with known connectivity (``batch.n_id``: their global indices; ``None`` or
        absent for a full batch, whose rows are all cells in order).
        """
        n_id = getattr(batch, "n_id", None)
        if n_id is None:
            if len(z_spa) != len(self.known):
                raise SpaconInputError(
                    "the connectivity code needs each batch's cell ids (Batch.n_id); this "
                    "batch has none.")
            n_id = torch.arange(len(z_spa), device=z_spa.device)
        n_id = n_id.to(self.known.device)
        keep = self.known[n_id]
        if not keep.any():
            return z_spa.sum() * 0.0
        target = self.code[n_id[keep]]
        # the head's own call would sum its bias gradient on threads: one component's is
        # one total over the batch's known cells
        pred = linear(z_spa[keep.to(z_spa.device)], self.head.weight, self.head.bias)
        loss = squared_error(pred, target.to(pred.device), reduction)
        return self.weight * loss
