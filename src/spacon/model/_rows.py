"""Expression held on the training device once, and the rows of a batch gathered there."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import available_memory_bytes
from ..graph import _ops as ops

# share of a GPU's free memory that dense expression may take
DENSE_SHARE = 0.25


class ExpressionRows:
    """Cells x genes expression on ``device``; :meth:`rows` gives a batch's dense rows.

    On the CPU the features are used as they are (SciPy's row gather for CSR). On a GPU they
    are copied there once: dense when they take at most a quarter of its free memory, else as
    CSR whose rows are gathered on the GPU.

    Parameters
    ----------
    features
        Expression, float32, dense or CSR.
    device
        The training device.
    """

    def __init__(self, features: np.ndarray | sp.csr_matrix, device):
        self.device = torch.device(device)
        self.features = features
        self.n_genes = features.shape[1]
        self.dense = None
        if ops.is_cpu(self.device):
            return
        if not sp.issparse(features) or _fits(features.shape, self.device):
            self.dense = torch.as_tensor(sp.csr_matrix(features).toarray() if sp.issparse(
                features) else np.asarray(features), device=self.device)
            return
        self.indptr = ops.as_index(features.indptr, self.device)
        self.indices = ops.as_index(features.indices, self.device)
        self.data = torch.as_tensor(features.data, dtype=torch.float32, device=self.device)

    def rows(self, cells) -> torch.Tensor:
        """Dense float32 expression of ``cells`` (indices from the sampler) on the device."""
        if ops.is_cpu(self.device):
            x = self.features[np.asarray(cells)]
            return torch.from_numpy(np.ascontiguousarray(x.toarray() if sp.issparse(x) else x))
        if self.dense is not None:
            return self.dense[cells]
        start = self.indptr[cells]
        row, offset = ops.spread(self.indptr[cells + 1] - start)
        at = start[row] + offset
        out = torch.zeros((len(cells), self.n_genes), dtype=torch.float32, device=self.device)
        out[row, self.indices[at]] = self.data[at]
        return out


def _fits(shape: tuple[int, int], device: torch.device) -> bool:
    """Whether dense expression of ``shape`` takes at most ``DENSE_SHARE`` of free memory."""
    free = (torch.cuda.mem_get_info(device)[0] if device.type == "cuda"
            else available_memory_bytes() or 0)
    return shape[0] * shape[1] * 4 <= DENSE_SHARE * free
