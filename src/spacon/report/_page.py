"""The report's HTML: one self-contained page with plotly.js, the data block and the tables."""

from __future__ import annotations

import html
import json
from importlib.resources import files

from ..tl._metrics import SCORE_NAMES as SCORES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 16px;
       color: #222; }
h1 { font-size: 1.5em; margin: 0.6em 0 0.2em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
.note { color: #555; font-size: 0.9em; } #errors { color: #b00; }
.controls { margin: 0.6em 0; } .controls label { margin-right: 1.5em; }
#scene { height: 640px; } #section-map { height: 520px; } #domain-sizes, #loss { height: 320px; }
#domain-scores { height: 480px; }
.wide { overflow-x: auto; }
.row { display: flex; gap: 16px; flex-wrap: wrap; } .row > div { flex: 1 1 480px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
"""

SIZE_PLACEHOLDER = "@@SPACON_FILE_SIZE@@"


def _table(rows, header=None) -> str:
    if not rows:
        return "<p class='note'>none</p>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header) if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return "not set" if value is None else str(value)


# options of the trained encoder, which a smoothing run (no training) does not use
TRAINING_ONLY = ("hidden_dims", "connectivity_code", "epochs", "mode", "batch_size", "lr",
                 "device")


# the run's tables: summary key, heading, column headers
RUN_TABLES = (("parameters", "Parameters", ("parameter", "value")),
              ("training", "Training", ("setting", "value")),
              ("timings_seconds", "Timings (seconds)", ("stage", "seconds")),
              ("n_domains", "Domains per alpha", ("alpha", "domains")),
              ("truth_scores", "Domains against the truth", ()),
              ("versions", "Versions", ("package", "version")))
# summary entries named for a reader
LABELS = {"data": "data digest (the same for the same cells, genes and graphs)"}


def _run_tables(summary: dict) -> str:
    parts = []
    if summary.get("command"):
        parts.append("<p>Command: <code>" + html.escape(summary["command"]) + "</code><br>"
                     + html.escape(", ".join(f"{what} {summary[key]}" for key, what in (
                         ("finished_utc", "finished (UTC)"),
                         ("working_directory", "in")) if summary.get(key)))
                     + "</p>")
    if (summary.get("training") or {}).get("encoder") == "smoothing":
        summary = {**summary, "parameters": {k: v for k, v in summary.get("parameters", {}).items()
                                             if k not in TRAINING_ONLY}}
    for key, title, header in RUN_TABLES:
        record = summary.get(key)
        if record and key == "truth_scores":
            parts.append(_truth_table(record))
        elif record:  # timings stay in the order of the stages
            items = record.items() if key == "timings_seconds" else sorted(record.items())
            parts.append(f"<h3>{title}</h3><div class='wide'>"
                         + _table([(LABELS.get(k, k), v) for k, v in items], header) + "</div>")
    return "".join(parts) or "<p class='note'>no summary.json was found for this result.</p>"


def _baseline_table(record: dict | None) -> str:
    """Domains of SpaCon and of the simple baselines against a truth
    (``summary['baselines']``: ``{"truths": {column title: obs column}, "planted": bool,
    "rows": {method: {column title: ARI, ..., "n_domains": k}}}``, as ``spacon demo`` and ``spacon run
    --baselines`` write it: :func:`spacon._baselines.baseline_summary`).
    """
    if not record:
        return ""
    truths = list(record["truths"])
    rows = [[method, *(f"{r[t]:.3f}" if isinstance(r.get(t), float) else r.get(t)
                       for t in truths), r.get("n_domains")]
            for method, r in record["rows"].items()]
    header = ["domains from", *(f"ARI vs {t} (obs['{record['truths'][t]}'])" for t in truths),
              "domains"]
    if record.get("planted"):
        against = "the planted truth"
    else:
        against = " and ".join(f"obs['{c}']" for c in record["truths"].values())
    against = html.escape(against, quote=False)
    return (f"<h2>Against {against}, beside simple baselines</h2><p class='note'>"
            "adjusted Rand index of each method's domains with the truth (1: the same "
            "partition, 0: chance).</p><div class='wide'>" + _table(rows, header) + "</div>")


def _truth_table(record: dict) -> str:
    """``--truth``'s scores: one row per alpha."""
    rows = [[alpha, *(scores.get(k) for k in SCORES)] for alpha, scores in record.items()
            if isinstance(scores, dict)]
    truth = html.escape(str(record.get("truth", "the truth")))
    return (f"<h3>Domains against the truth (obs['{truth}'])</h3>"
            + _table(rows, ["alpha", *SCORES.values()]))


def _marker_tables(markers: dict) -> str:
    if not markers:
        return ("<p class='note'>none in this result (spacon run and spacon domains find "
                "them unless given --markers 0; in Python, spacon.tl.marker_genes).</p>")
    def in_order(item):  # domains 0, 1, 2, ..., 10 (not 0, 1, 10, 2), names after numbers
        name = str(item[0])
        return (0, int(name), "") if name.isdigit() else (1, 0, name)

    return "".join(f"<h3>{html.escape(key)}</h3>" + _table(sorted(by_domain.items(),
                                                                 key=in_order),
                                                          ["domain", "top marker genes"])
                   for key, by_domain in markers.items())


def _prediction_table(metrics: dict) -> str:
    if not metrics:
        return ("<p class='note'>none in this result: spacon.tl.predict_connectivity stores "
                "its scores in the AnnData it is given (save it as this result's result.h5ad "
                "and run spacon report again); spacon evaluate connectivity writes its own "
                "metrics.json and figure instead.</p>")
    names = sorted({k for m in metrics.values() for k in m})
    return _table([[m, *(values.get(k) for k in names)] for m, values in metrics.items()],
                  ["method", *names])


def _jsonable(value):
    """NumPy scalars and arrays (as in a summary built in memory) as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def render(data: dict, title: str = "SpaCon result") -> str:
    """The page for :func:`spacon.report.payload`'s ``data``; its size is filled in later."""
    import plotly.offline

    drawn = (f"all {data['n_cells']:,} cells are drawn" if data["n_drawn"] == data["n_cells"] else
             f"{data['n_drawn']:,} of {data['n_cells']:,} cells are drawn (at most "
             f"{data['max_points']:,}, sampled in proportion to each domain's size)")
    block = json.dumps(data, separators=(",", ":"), default=_jsonable).replace("</", "<\\/")
    script = files(__package__).joinpath("_page.js").read_text()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="note">{drawn}. This file: {SIZE_PLACEHOLDER}; it works offline.</p>
<p id="errors"></p>
{_baseline_table(data['summary'].get('baselines'))}
<div class="controls">
 <label>domains at <select id="alpha-select" aria-label="alpha"></select></label>
 <span class="note">click a domain in the legend to hide or show it, double-click to show it
 alone; drag to rotate, scroll to zoom; hover a cell for its id, {data['slices']['title']},
 domain and labels</span>
</div>
<div id="scene"></div>
<h2>Per {data['slices']['title']}</h2>
<div class="controls"><label>{data['slices']['title']}
 <select id="section-select" aria-label="section"></select></label></div>
<div id="section-map"></div>
<h2>How the number of domains was chosen</h2>
<p class="note" id="domain-reason"></p><div id="domain-scores"></div>
<div class="row"><div><h2>Domain sizes</h2><div id="domain-sizes"></div></div>
<div><h2>Training loss</h2>{'<div id="loss"></div>' if data['loss'] else
 "<p class='note'>none: this result's embedding was not trained (e.g. --encoder "
 "smoothing averages expression over the graph).</p>"}</div></div>
<h2>Marker genes</h2>{_marker_tables(data['markers'])}
<h2>Connectivity prediction of held-out cells</h2>{_prediction_table(
        data['connectivity_prediction'])}
<h2>The run</h2>{_run_tables(data['summary'])}
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<script type="application/json" id="spacon-data">{block}</script>
<script type="text/javascript">{script}</script>
</body></html>
"""


def with_size(page: str) -> bytes:
    """The page, encoded, with its own size in place of the placeholder."""
    size_text = ""
    for _ in range(5):  # the size text changes the size a little: settle on a fixed point
        encoded = page.replace(SIZE_PLACEHOLDER, size_text).encode("utf-8")
        text = f"{len(encoded) / 1e6:.1f} MB ({len(encoded):,} bytes)"
        if text == size_text:
            break
        size_text = text
    return encoded
