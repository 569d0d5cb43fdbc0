"""Write a result's report: ``DIR/report.html``, one page that opens offline in any browser."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .._errors import SpaconInputError
from ._page import render, with_size
from ._payload import find_domain_keys, payload

logger = logging.getLogger(__name__)

DEFAULT_MAX_POINTS = 200_000


def check_html_path(path: str | Path) -> None:
    """Refuse a report path that is not an ``.html`` file (a result's other files, an input;
    a folder is refused where the page is written).
    """
    if not Path(path).is_dir() and Path(path).suffix.lower() not in (".html", ".htm"):
        raise SpaconInputError(f"the report is a web page: name an .html file, got {str(path)!r}.")


def write_report(adata, path: str | Path, *, summary: dict | None = None,
                 domain_keys: dict[str, str] | None = None,
                 max_points: int = DEFAULT_MAX_POINTS, seed: int = 0,
                 title: str = "SpaCon result", section_key: str | None = None,
                 spatial_key: str | None = None) -> Path:
    """Write an interactive HTML report of a SpaCon result.

    Parameters
    ----------
    adata
        A result: ``obs['spacon_domain_alpha*']`` and ``obsm['spatial']``; uses
        ``uns['spacon']`` (loss), ``uns['spacon_markers']`` and
        ``uns['spacon_connectivity_prediction']`` when present.
    path
        The ``.html`` file to write (atomically).
    summary
        The run's ``summary.json`` record (parameters, timings, versions, domain keys).
    domain_keys
        ``{alpha label: obs column}`` of the domains to show, e.g. ``{"0": "domain_alpha0"}``
        (default: the summary's, or every ``obs['spacon_domain_alpha*']``).
    max_points
        Draw at most this many cells, each domain in proportion to its size.
    seed
        Seed of that sample.
    title
        Heading of the page.
    section_key
        ``obs`` column of sections (or separate samples) drawn as slices of their own
        (default: the summary's, else ``obs['section']`` when present).
    spatial_key
        ``obsm`` key of the coordinates (default: the summary's, else ``'spatial'``).

    Returns
    -------
    The path written. The page embeds plotly.js and needs no network.
    """
    from ..io import atomic_path

    if max_points < 1:
        raise SpaconInputError(f"max_points must be at least 1, got {max_points}.")
    check_html_path(path)
    data = payload(adata, summary, domain_keys=domain_keys, max_points=max_points, seed=seed,
                   section_key=section_key, spatial_key=spatial_key)
    page = with_size(render(data, title))
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(page)
    logger.info("wrote %s (%.1f MB)", path, len(page) / 1e6)
    return path


def report(directory: str | Path, *, out: str | Path | None = None,
           max_points: int = DEFAULT_MAX_POINTS, seed: int = 0) -> Path:
    """Write ``directory/report.html`` from the ``result.h5ad`` and ``summary.json`` there.

    The expression matrix is not read (the h5ad is opened backed), so large results are quick.
    """
    import anndata as ad

    directory = Path(directory)
    result = directory / "result.h5ad"
    if not result.exists():
        raise SpaconInputError(f"{directory} holds no result.h5ad; give the --out of spacon run.")
    if out is not None and Path(out).resolve() in {result.resolve(),
                                                    (directory / "summary.json").resolve()}:
        raise SpaconInputError(f"--out {out} is the result the report is made from; name an "
                               ".html file.")
    check_html_path(out or directory / "report.html")
    try:
        adata = ad.read_h5ad(result, backed="r")
    except Exception as err:
        raise SpaconInputError(f"could not read {result} as an h5ad file: {err}") from err
    summary = None
    if (directory / "summary.json").exists():
        try:
            summary = json.loads((directory / "summary.json").read_text())
        except json.JSONDecodeError as err:
            raise SpaconInputError(f"{directory}/summary.json is not valid JSON: {err}") from err
    try:
        try:
            find_domain_keys(adata, summary)
        except SpaconInputError as err:
            raise SpaconInputError(
                f"{result} holds no domains (a spacon predict result has none): spacon report "
                "shows the domains of spacon run, embed or domains; in Python, "
                "spacon.report.write_report(adata, ..., domain_keys=...) shows any column."
            ) from err
        return write_report(adata, out or directory / "report.html", summary=summary,
                            max_points=max_points, seed=seed, title=f"SpaCon result: {directory.name}")
    finally:
        adata.file.close()
