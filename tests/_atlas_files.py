"""Tiny files in the published layouts of the ABC atlas (abc_atlas_access) and the Allen voxel
model (mouse_connectivity_models' VoxelModelCache), with known truth, for the tests.

The grid is 12 (AP) x 8 (DV) x 10 (ML) voxels of 100 µm: dorsal row outside the brain, three
rows of cortex (MOp anterior, VISp posterior), one of fibre tracts, three of thalamus (LGd).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

SHAPE = (12, 8, 10)
RESOLUTION = 100
ROOT, GREY, CORTEX, MOP, VISP, TH, LGD, FIBRE = 997, 8, 315, 985, 385, 549, 170, 1009
STRUCTURES = [
    (ROOT, "root", [ROOT]), (GREY, "grey", [ROOT, GREY]),
    (CORTEX, "Isocortex", [ROOT, GREY, CORTEX]), (MOP, "MOp", [ROOT, GREY, CORTEX, MOP]),
    (VISP, "VISp", [ROOT, GREY, CORTEX, VISP]), (TH, "TH", [ROOT, GREY, TH]),
    (LGD, "LGd", [ROOT, GREY, TH, LGD]), (FIBRE, "fiber tracts", [ROOT, FIBRE]),
]
# parcellation_index -> (organ, category, division, structure, substructure), as Allen-CCF-2020
TERMS = {
    0: ("unassigned", "unassigned", "unassigned", "unassigned", "unassigned"),
    1: ("brain", "grey", "Isocortex", "MOp", "MOp2/3"),
    2: ("brain", "grey", "Isocortex", "VISp", "VISp4"),
    3: ("brain", "fiber tracts", "fiber tracts", "fiber tracts", "fiber tracts"),
    4: ("brain", "grey", "TH", "LGd", "LGd-co"),
}
PARCELLATION_OF = {0: 0, MOP: 1, VISP: 2, FIBRE: 3, LGD: 4}
DATASET = "Zhuang-ABCA-1"


def annotation() -> np.ndarray:
    vol = np.zeros(SHAPE, dtype=np.uint32)
    vol[:6, 1:4] = MOP
    vol[6:, 1:4] = VISP
    vol[:, 4] = FIBRE
    vol[:, 5:] = LGD
    return vol


def write_voxel_model(root, *, rank: int = 4, seed: int = 0, extra_source_rows: int = 0):
    """A VoxelModelCache directory; returns the dense source x target matrix and the masks."""
    import nrrd

    root = Path(root)
    rng = np.random.default_rng(seed)
    vol = annotation()
    (root / "annotation" / "ccf_2017").mkdir(parents=True)
    nrrd.write(str(root / "annotation" / "ccf_2017" / "annotation_100.nrrd"), vol)
    (root / "structures.json").write_text(json.dumps([
        {"id": i, "acronym": a, "structure_id_path": p} for i, a, p in STRUCTURES
    ]))
    grey = np.isin(vol, [MOP, VISP, LGD])
    source = grey.copy()
    source[..., : SHAPE[2] // 2] = False
    source_voxels, target_voxels = np.argwhere(source), np.argwhere(grey)
    model = root / "voxel_model"
    model.mkdir()
    for name, hemisphere in (("source", 2), ("target", 3)):
        (model / f"{name}_mask_params.json").write_text(
            json.dumps({"structure_ids": [GREY], "hemisphere_id": hemisphere})
        )
    weights = rng.gamma(1.0, 1.0, (len(source_voxels) + extra_source_rows, rank))
    nodes = rng.gamma(1.0, 1.0, (rank, len(target_voxels))) / len(target_voxels)
    pd.DataFrame(weights).to_csv(model / "weights.csv.gz", header=False, index=False)
    pd.DataFrame(nodes).to_csv(model / "nodes.csv.gz", header=False, index=False)
    dense = (weights.astype(np.float32) @ nodes.astype(np.float32))
    return dense, source_voxels, target_voxels


def write_abc(root, *, n_sections: int = 6, cells_per_section: int = 50, n_genes: int = 20,
              unregistered: int = 0, seed: int = 0):
    """An ABC download root for the Zhuang coronal data set; returns the cell table written."""
    import anndata as ad

    root = Path(root)
    rng = np.random.default_rng(seed)
    vol = annotation()
    n = n_sections * cells_per_section
    section = np.repeat(np.arange(n_sections), cells_per_section)
    ap = (0.15 + 0.2 * section) + rng.uniform(-0.02, 0.02, n)  # mm
    dv = rng.uniform(0.12, 0.79, n)
    ml = rng.uniform(0.02, 0.98, n)
    index = np.minimum((np.column_stack([ap, dv, ml]) * 10).astype(int), np.array(SHAPE) - 1)
    structure = vol[tuple(index.T)]
    labels = np.array([str(rng.integers(10**17, 10**18)) for _ in range(n)])
    # section labels numbered against the AP order, so the reader must order by position
    section_label = np.array([f"C57BL6J-1.{100 - 10 * s:03d}" for s in section])
    cells = pd.DataFrame({
        "cell_label": labels, "brain_section_label": section_label,
        "feature_matrix_label": "C57BL6J-1", "donor_label": "C57BL6J-1",
        "donor_genotype": "wt/wt", "donor_sex": "F", "cluster_alias": rng.integers(1, 50, n),
        "x": ml * 1.01, "y": dv * 0.99, "z": ap.round(1),
        "subclass_confidence_score": rng.random(n), "cluster_confidence_score": rng.random(n),
        "high_quality_transfer": True,
    })
    meta = root / "metadata" / DATASET / "20231215"
    meta.mkdir(parents=True)
    cells.to_csv(meta / "cell_metadata.csv", index=False)
    ccf = pd.DataFrame({"cell_label": labels, "x": ap, "y": dv, "z": ml,
                        "parcellation_index": [PARCELLATION_OF[s] for s in structure]})
    ccf_dir = root / "metadata" / f"{DATASET}-CCF" / "20230830"
    ccf_dir.mkdir(parents=True)
    ccf.iloc[unregistered:].to_csv(ccf_dir / "ccf_coordinates.csv", index=False)
    terms = root / "metadata" / "Allen-CCF-2020" / "20230630" / "views"
    terms.mkdir(parents=True)
    pd.DataFrame(
        [(i, *t) for i, t in TERMS.items()],
        columns=["parcellation_index", "organ", "category", "division", "structure",
                 "substructure"],
    ).to_csv(terms / "parcellation_to_parcellation_term_membership_acronym.csv", index=False)
    program = {MOP: 0, VISP: 1, LGD: 2, FIBRE: 3, 0: 3}
    rate = np.ones((n, n_genes))
    for i, s in enumerate(structure):
        block = program[int(s)]
        rate[i, 5 * block: 5 * block + 5] += 6
    counts = rng.poisson(rate).astype(np.float32)
    genes = pd.DataFrame({"gene_symbol": [f"Gene{g}" for g in range(n_genes)]},
                         index=[f"ENSMUSG{g:011d}" for g in range(n_genes)])
    expr = root / "expression_matrices" / DATASET / "20230830"
    expr.mkdir(parents=True)
    order = rng.permutation(n)  # the matrix lists cells in its own order
    for kind, values in (("raw", counts), ("log2", np.log2(counts + 1))):
        x = ad.AnnData(sp.csr_matrix(values[order]), var=genes,
                       obs=pd.DataFrame({"brain_section_label": section_label[order]},
                                        index=labels[order]))
        x.write_h5ad(expr / f"{DATASET}-{kind}.h5ad")
    cells["structure"] = structure
    cells["x_ccf"], cells["y_ccf"], cells["z_ccf"] = ap, dv, ml
    return cells.set_index("cell_label")
