"""The Allen mouse voxel connectivity model (Knox et al. 2019), kept factored.

``mouse_connectivity_models`` (``mcmodels.core.VoxelModelCache``) distributes the 100 µm
voxel x voxel model as two low-rank factors and the masks that say which voxel each row and
column is, in its cache directory::

    voxel_model/weights.csv.gz             n_source x rank   (rows: source voxels)
    voxel_model/nodes.csv.gz               rank x n_target   (columns: target voxels)
    voxel_model/source_mask_params.json    {"structure_ids": [...], "hemisphere_id": 2}
    voxel_model/target_mask_params.json    {"structure_ids": [...], "hemisphere_id": 3}
    annotation/ccf_2017/annotation_100.nrrd  CCF annotation volume (AP x DV x ML)
    structures.json                        the structure tree (id, structure_id_path)

The connectivity from source voxel ``i`` to target voxel ``j`` is ``weights[i] @ nodes[:, j]``
(about 2e5 x 4.5e5 values: never built here). A mask is every voxel of the annotation whose
structure descends from one of ``structure_ids``, cut to a hemisphere (1 left: ML index below
half the volume; 2 right: the rest; 3 both), in C order of the volume, as ``mcmodels`` builds it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import SpaconInputError
from .._utils import check_memory
from ._connectivity import Connectivity

logger = logging.getLogger(__name__)

MODEL_DIR = "voxel_model"
WEIGHTS = "weights.csv.gz"
NODES = "nodes.csv.gz"
SOURCE_MASK = "source_mask_params.json"
TARGET_MASK = "target_mask_params.json"
ANNOTATION = "annotation/ccf_2017/annotation_{resolution}.nrrd"
STRUCTURES = "structures.json"
SIDE = {1: "L", 2: "R"}


BYTES_PER_KEPT = 8  # a kept connection in CSR: float32 value + int32 column


@dataclass
class VoxelModel:
    """A voxel-level connectome as low-rank factors over masked voxels of a grid.

    Attributes
    ----------
    weights
        ``(n_source, rank)`` float32 factor of the source voxels.
    nodes
        ``(rank, n_target)`` float32 factor of the target voxels.
    source_voxels, target_voxels
        Grid indices ``(AP, DV, ML)`` of each row / column voxel, in C order of the grid.
    shape
        Shape of the grid (the annotation volume), e.g. ``(132, 80, 114)`` at 100 µm.
    resolution
        Voxel edge in µm.
    source_hemisphere
        Hemisphere of the source voxels: 1 left, 2 right (an ipsilateral model), 3 both.
    """

    weights: np.ndarray
    nodes: np.ndarray
    source_voxels: np.ndarray
    target_voxels: np.ndarray
    shape: tuple
    resolution: float = 100.0
    source_hemisphere: int = 3

    def __post_init__(self):
        if self.weights.ndim != 2 or self.nodes.ndim != 2:
            raise SpaconInputError("voxel model: weights and nodes must be 2-D matrices.")
        if self.weights.shape[1] != self.nodes.shape[0]:
            raise SpaconInputError(
                f"voxel model: weights have rank {self.weights.shape[1]} but nodes have "
                f"{self.nodes.shape[0]} rows; the two factors do not belong together."
            )
        for name, voxels, n in (("source", self.source_voxels, self.weights.shape[0]),
                                ("target", self.target_voxels, self.nodes.shape[1])):
            if len(voxels) != n:
                raise SpaconInputError(
                    f"voxel model: the {name} mask has {len(voxels)} voxels but the "
                    f"{'weights have' if name == 'source' else 'nodes have'} {n} "
                    f"{'rows' if name == 'source' else 'columns'}; the mask parameters, "
                    "annotation volume or structure tree do not match the factors."
                )
        self.source_flat = np.ravel_multi_index(tuple(self.source_voxels.T), self.shape)
        self.target_flat = np.ravel_multi_index(tuple(self.target_voxels.T), self.shape)

    @property
    def n_source(self) -> int:
        """Number of source voxels (rows)."""
        return self.weights.shape[0]

    @property
    def n_target(self) -> int:
        """Number of target voxels (columns)."""
        return self.nodes.shape[1]

    @property
    def midline(self) -> float:
        """Position of the midline along the ML axis, in µm."""
        return self.shape[2] * self.resolution / 2

    @property
    def labels(self) -> np.ndarray:
        """Unit label of each source voxel: its flat index in the grid, as a string."""
        return self.source_flat.astype(str)

    def source_positions(self) -> np.ndarray:
        """Centres of the source voxels in µm, CCF axis order (AP, DV, ML)."""
        return (self.source_voxels + 0.5) * self.resolution

    def __repr__(self):
        return (f"VoxelModel(n_source={self.n_source}, n_target={self.n_target}, "
                f"rank={self.weights.shape[1]}, resolution={self.resolution:g} µm)")

    def unit_graph(self, units, *, threshold: float | None = None, top_k: int | None = None,
                   max_block_bytes: float = 2.5e8) -> Connectivity:
        """The sparse connectivity between the given units, computed block by block.

        Parameters
        ----------
        units
            Unit labels that hold cells: a source voxel's label (see :attr:`labels`), or with
            :func:`~spacon.pp.assign_units`'s ``hemisphere="mirror"`` the label plus ``-L`` or
            ``-R`` for the side the cells lie on. Between sides, the model's ipsilateral
            source row is read at the mirrored target voxel (the brain taken as symmetric).
        threshold
            Keep values strictly above this (default: every positive value).
        top_k
            Keep at most each row's ``top_k`` strongest targets.
        max_block_bytes
            Memory for one block of rows of the dense unit x unit values.

        Returns
        -------
        A :class:`~spacon.io.Connectivity` over ``units`` (sorted, unique), float32 CSR.
        """
        units = np.unique(np.asarray(units).astype(str))
        rows, voxels, side = self._parse_units(units)
        same = self._target_columns(voxels)
        sided = side != ""
        mirror = None
        if sided.any():
            flipped = voxels.copy()
            flipped[:, 2] = self.shape[2] - 1 - flipped[:, 2]
            mirror = self._target_columns(flipped)
        n = len(units)
        block = max(1, int(max_block_bytes // (4 * n * (2 if mirror is not None else 1))))
        parts, kept = [], 0
        for start in range(0, n, block):
            stop = min(n, start + block)
            values = self.weights[rows[start:stop]] @ same
            if mirror is not None:
                other = self.weights[rows[start:stop]] @ mirror
                values = np.where(side[start:stop, None] == side[None, :], values, other)
            parts.append(_sparsify_block(values, start, threshold, top_k))
            kept += parts[-1].nnz
            # the blocks so far must leave room to join them (a low-rank model's values are
            # positive almost everywhere: without top_k or a threshold it is units x units)
            check_memory(kept * BYTES_PER_KEPT, f"the voxel unit graph of {n:,} units (about "
                         f"{kept / stop:,.0f} connections per unit so far)", "keep each "
                         "unit's strongest targets with top_k= (spacon prepare abc --top-k) or "
                         "a threshold=.")
        matrix = sp.vstack(parts).tocsr() if parts else sp.csr_matrix((n, n), dtype=np.float32)
        logger.info("voxel model: %d units, %d connections kept", n, matrix.nnz)
        return Connectivity(matrix, units)

    def _parse_units(self, units: np.ndarray):
        side = np.array([u[-1] if u[-2:] in ("-L", "-R") else "" for u in units])
        flat_text = np.array([u[:-2] if s else u for u, s in zip(units, side)])
        try:
            flat = flat_text.astype(np.int64)
        except ValueError as err:
            raise SpaconInputError(
                f"voxel model units must be source voxel labels (optionally with -L/-R), got "
                f"e.g. {units[0]!r}; assign cells with spacon.pp.assign_units first."
            ) from err
        rows = np.searchsorted(self.source_flat, flat)
        rows = np.minimum(rows, self.n_source - 1)
        bad = self.source_flat[rows] != flat
        if bad.any():
            raise SpaconInputError(
                f"{int(bad.sum())} units are not source voxels of the voxel model (e.g. "
                f"{units[bad][0]!r})."
            )
        return rows, np.column_stack(np.unravel_index(flat, self.shape)), side

    def _target_columns(self, voxels: np.ndarray) -> np.ndarray:
        """``nodes`` at these voxels' target columns (zero where a voxel is not a target)."""
        flat = np.ravel_multi_index(tuple(voxels.T), self.shape)
        cols = np.minimum(np.searchsorted(self.target_flat, flat), self.n_target - 1)
        found = self.target_flat[cols] == flat
        out = np.zeros((self.nodes.shape[0], len(flat)), dtype=np.float32)
        out[:, found] = self.nodes[:, cols[found]]
        return out


def _sparsify_block(values: np.ndarray, start: int, threshold, top_k) -> sp.csr_matrix:
    cut = 0.0 if threshold is None else threshold
    values = np.where(values > cut, values, 0).astype(np.float32)
    if top_k is not None and top_k < values.shape[1]:
        drop = np.argpartition(-values, top_k, axis=1)[:, top_k:]
        np.put_along_axis(values, drop, 0, axis=1)
    return sp.csr_matrix(values)


def read_voxel_model(directory, *, resolution: int = 100) -> VoxelModel:
    """Read the Allen voxel connectivity model from a ``VoxelModelCache`` directory, factored.

    Parameters
    ----------
    directory
        The cache directory of ``mcmodels.core.VoxelModelCache`` (see the module docstring for
        the files it holds).
    resolution
        Voxel size in µm of the annotation volume (the model exists at 100 µm).

    Returns
    -------
    A :class:`VoxelModel`: the two factors and the voxels of their rows and columns.
    """
    directory = Path(directory)
    files = {
        "weights": directory / MODEL_DIR / WEIGHTS, "nodes": directory / MODEL_DIR / NODES,
        "source": directory / MODEL_DIR / SOURCE_MASK,
        "target": directory / MODEL_DIR / TARGET_MASK,
        "annotation": directory / ANNOTATION.format(resolution=resolution),
        "structures": directory / STRUCTURES,
    }
    missing = [str(p.relative_to(directory)) for p in files.values() if not p.is_file()]
    if missing:
        raise SpaconInputError(
            f"{directory} is not a voxel model cache directory: {', '.join(missing)} "
            "missing (the layout of mouse_connectivity_models' VoxelModelCache)."
        )
    annotation = _read_annotation(files["annotation"])
    descendants = _descendants(files["structures"])
    masks = {}
    for name in ("source", "target"):
        params = _read_json(files[name])
        masks[name] = _mask_voxels(annotation, descendants, params, files[name].name)
    weights = _read_matrix(files["weights"])
    nodes = _read_matrix(files["nodes"])
    model = VoxelModel(
        weights, nodes, masks["source"][0], masks["target"][0], tuple(annotation.shape),
        float(resolution), masks["source"][1],
    )
    logger.info("read %r", model)
    return model


def _read_matrix(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        return pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    except Exception as err:
        raise SpaconInputError(f"could not read {path}: {err}") from err


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SpaconInputError(f"could not read {path}: {err}") from err


def _read_annotation(path: Path) -> np.ndarray:
    try:
        import nrrd
    except ModuleNotFoundError as err:
        raise SpaconInputError(
            "reading the CCF annotation volume (.nrrd) needs pynrrd: pip install 'spacon[atlas]'."
        ) from err
    try:
        annotation, _ = nrrd.read(str(path))
    except Exception as err:
        raise SpaconInputError(f"could not read the annotation volume {path}: {err}") from err
    if annotation.ndim != 3:
        raise SpaconInputError(f"{path.name} is not a 3-D volume (shape {annotation.shape}).")
    return annotation


def _descendants(path: Path) -> dict[int, set[int]]:
    """Each structure id -> itself and every structure below it."""
    tree = _read_json(path)
    if isinstance(tree, dict):  # an API response: {"msg": [...]}
        tree = tree.get("msg", [])
    out: dict[int, set[int]] = {}
    for structure in tree:
        try:
            sid = int(structure["id"])
            id_path = structure["structure_id_path"]
        except (KeyError, TypeError, ValueError) as err:
            raise SpaconInputError(
                f"{path.name}: each structure needs 'id' and 'structure_id_path'."
            ) from err
        if isinstance(id_path, str):  # "/997/8/567/" as the API returns it
            id_path = [int(p) for p in id_path.strip("/").split("/") if p]
        for ancestor in id_path:
            out.setdefault(int(ancestor), set()).add(sid)
    return out


def _mask_voxels(annotation, descendants, params, name: str):
    try:
        structure_ids = [int(s) for s in params["structure_ids"]]
        hemisphere = int(params.get("hemisphere_id", 3))
    except (KeyError, TypeError, ValueError) as err:
        raise SpaconInputError(f"{name} needs 'structure_ids' (and 'hemisphere_id').") from err
    unknown = [s for s in structure_ids if s not in descendants]
    if unknown:
        raise SpaconInputError(f"{name}: structure ids {unknown[:5]} are not in the tree.")
    ids = set().union(*(descendants[s] for s in structure_ids))
    mask = np.isin(annotation, np.fromiter(ids, dtype=np.int64))
    midline = annotation.shape[2] // 2
    if hemisphere == 1:
        mask[..., midline:] = False
    elif hemisphere == 2:
        mask[..., :midline] = False
    return np.argwhere(mask), hemisphere
