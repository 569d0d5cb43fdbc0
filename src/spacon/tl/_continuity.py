"""3-D continuity of domains: Jensen-Shannon divergence between adjacent sections."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_anndata, labels_column


def section_divergence(
    adata, *, key: str = _keys.DOMAIN, section_key: str = "section", section_order=None
) -> pd.DataFrame:
    """Jensen-Shannon divergence of domain composition between adjacent sections.

    Base 2, in [0, 1], for each pair of adjacent sections; low values mean domains continue
    smoothly through the stack. Cells without a domain (NaN) are left out; a pair with a
    section that has none labelled gets NaN.

    Parameters
    ----------
    adata
        Annotated data with domains and sections in ``obs``.
    key
        ``obs`` column of domains.
    section_key, section_order
        Sections and their order (see :func:`spacon.pp.section_codes`).

    Returns
    -------
    A table with columns ``section``, ``next_section``, ``js_divergence``.
    """
    check_anndata(adata, "spacon.tl.section_divergence")
    from ..pp import section_codes

    codes, order = section_codes(adata, section_key, section_order)
    domain = pd.Categorical(labels_column(adata, key)).codes
    labelled = domain >= 0  # cells without a domain (NaN) are left out
    if not labelled.any():
        raise SpaconInputError(f"adata.obs[{key!r}] has no domain for any cell (all NaN).")
    table = pd.crosstab(np.asarray(codes)[labelled], domain[labelled]).reindex(
        range(len(order)), fill_value=0).to_numpy(dtype=float)
    counts = table.sum(axis=1)
    share = table / np.maximum(counts, 1)[:, None]
    rows = [  # NaN beside a section with no labelled cells
        (order[i], order[i + 1], float(jensenshannon(share[i], share[i + 1], base=2) ** 2)
         if counts[i] and counts[i + 1] else np.nan)
        for i in range(len(order) - 1)
    ]
    return pd.DataFrame(rows, columns=["section", "next_section", "js_divergence"])
