"""The ``spacon`` command line: ``simulate``, ``run``, ``demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._errors import SpaconInputError

logger = logging.getLogger("spacon")

SIMULATE_README = """\
Synthetic brain written by `spacon simulate` (spacon {version}).

Files
  {name}.h5ad      {n_cells} cells x {n_genes} genes, raw negative-binomial counts in X
  connectome.npz   {n_units} x {n_units} unit-level connectivity (rows = sources), unit ids in
                   its `labels` array; obs['unit'] maps each cell to its unit. It implies
                   {implied:,} cell-cell edges, never materialised.

Ground truth (obs columns)
  cell_type  cell types, mixed everywhere (expression-only clustering finds these)
  region     spatially contiguous molecular regions  -> recovered at alpha = 0
  module     groups of spatially distant, strongly connected regions -> recovered at alpha = 1

Coordinates: obsm['spatial'] = (x, y{z}) in micrometres; obs['section'] gives the section,
ordered {first} .. {last}.

Run spacon on it:
  spacon run --adata {name}.h5ad --connectivity connectome.npz --unit-key unit \\
      --section-key section --radius {radius:.0f} --z-radius {z_radius:.0f} --alpha 0 1 --out result
"""


def _simulate(args) -> int:
    from . import __version__
    from .datasets import synthetic_brain
    from .io import save_npz, write_h5ad, write_text

    out = Path(args.out)
    files = [out / f"{args.name}.h5ad", out / "connectome.npz", out / "README.txt"]
    _refuse_existing(files, args.overwrite)
    adata, conn = synthetic_brain(
        args.n_cells, args.n_genes, args.n_sections, n_regions=args.n_regions,
        n_modules=args.n_modules, seed=args.seed,
    )
    info = adata.uns["synthetic_brain"]
    write_h5ad(adata, files[0])
    save_npz(files[1], conn.matrix, conn.labels)
    write_text(
        SIMULATE_README.format(
            version=__version__, name=args.name, n_cells=adata.n_obs, n_genes=adata.n_vars,
            n_units=info["n_units"], implied=info["implied_cell_edges"],
            z=", z" if adata.obsm["spatial"].shape[1] == 3 else "",
            first=info["section_order"][0], last=info["section_order"][-1],
            radius=info["suggested_radius"], z_radius=info["suggested_z_radius"],
        ),
        files[2],
    )
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _refuse_existing(files, overwrite: bool) -> None:
    existing = [str(f) for f in files if Path(f).exists()]
    if existing and not overwrite:
        raise SpaconInputError(
            f"output exists already: {', '.join(existing)}; choose another --out or pass "
            "--overwrite."
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``spacon`` command."""
    parser = argparse.ArgumentParser(
        prog="spacon",
        description="Integrate spatial transcriptomics with brain connectivity (SpaCon).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate", help="write a synthetic brain with ground truth",
        description="Write a synthetic brain (h5ad + unit-level connectome + README.txt) with "
        "planted cell types, regions and distant connectivity modules.",
    )
    sim.add_argument("--n-cells", type=int, default=6000)
    sim.add_argument("--n-genes", type=int, default=300)
    sim.add_argument("--n-sections", type=int, default=12, help="1 gives a single 2-D section")
    sim.add_argument("--n-regions", type=int, default=16)
    sim.add_argument("--n-modules", type=int, default=4)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--name", default="synthetic_brain", help="base name of the .h5ad file")
    sim.add_argument("--out", required=True, help="output directory")
    sim.add_argument("--overwrite", action="store_true", help="replace existing output files")
    sim.set_defaults(func=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spacon`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except SpaconInputError as err:
        print(f"spacon {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spacon {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
