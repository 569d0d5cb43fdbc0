// Builds the report's plots from the data block; plotly.js (embedded above) draws them.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("spacon-data").textContent);

  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  const n = D.n_drawn;
  const coords = D.coords.map((c) => decode(c, Float32Array));
  const sliceCodes = decode(D.slices.codes, Uint16Array);
  const alphas = D.alphas.map((a) => Object.assign({}, a, {codes: decode(a.codes, Uint16Array)}));
  const labels = D.labels.map((l) => Object.assign({}, l, {codes: decode(l.codes, Uint16Array)}));
  // hover lines every alpha shares: cell id, section or slice, known labels
  const hoverBase = new Array(n);
  for (let i = 0; i < n; i++) {
    let text = "cell: " + D.cell_ids[i] + "<br>" + D.slices.title + ": " +
      D.slices.names[sliceCodes[i]];
    for (const l of labels) text += "<br>" + l.name + ": " + l.categories[l.codes[i]];
    hoverBase[i] = text;
  }
  const markerSize = Math.max(1.5, Math.min(8, 40 / Math.cbrt(Math.max(n, 1))));
  // no "share" button: it would upload the chart to plotly's cloud
  const config = {responsive: true, displaylogo: false, showSendToCloud: false,
                  showEditInChartStudio: false, showLink: false};

  function groups(alpha, keep) {
    // indices of the drawn cells of each domain, optionally only those where keep(i)
    const out = alpha.categories.map(() => []);
    for (let i = 0; i < n; i++) if (!keep || keep(i)) out[alpha.codes[i]].push(i);
    return out;
  }

  function domainTraces(alpha, keep, type, axes) {
    return groups(alpha, keep).map((idx, d) => {
      const name = alpha.categories[d];
      const trace = {
        type: type, mode: "markers", name: name, legendgroup: name,
        text: idx.map((i) => hoverBase[i] + "<br>domain: " + name),
        hovertemplate: "%{text}<extra></extra>",
        marker: {color: alpha.colours[d], size: type === "scatter3d" ? markerSize : 4},
      };
      ["x", "y", "z"].slice(0, axes.length).forEach((k, j) => {
        trace[k] = Float32Array.from(idx, (i) => coords[axes[j]][i]);
      });
      return trace;
    }).filter((t) => t.x.length > 0);
  }

  const alphaSelect = document.getElementById("alpha-select");
  const numeric = (a) => a.alpha !== "" && isFinite(Number(a.alpha));
  alphas.forEach((a, i) => alphaSelect.add(new Option(
    (numeric(a) ? "alpha = " + a.alpha : a.key) + "  (" + a.categories.length + " domains)", i)));
  const sectionSelect = document.getElementById("section-select");
  D.slices.names.forEach((s, i) => sectionSelect.add(new Option(s, i)));

  function drawScene(alpha) {
    const axis = (t) => ({title: {text: t}});
    if (D.dims === 3) {
      const layout = {
        margin: {l: 0, r: 0, t: 30, b: 0},
        legend: {title: {text: "domain"}, itemsizing: "constant"},
        scene: {aspectmode: "data", xaxis: axis(D.axis_titles[0]),
                yaxis: Object.assign(axis(D.axis_titles[1]), {autorange: "reversed"}),
                zaxis: axis(D.axis_titles[2])},
      };
      return Plotly.react("scene", domainTraces(alpha, null, "scatter3d", [0, 1, 2]), layout, config);
    }
    const layout = {
      margin: {l: 40, r: 0, t: 10, b: 40}, legend: {title: {text: "domain"}, itemsizing: "constant"},
      xaxis: axis("x"), yaxis: Object.assign(axis("y"), {autorange: "reversed", scaleanchor: "x"}),
    };
    return Plotly.react("scene", domainTraces(alpha, null, "scattergl", [0, 1]), layout, config);
  }

  function drawSection(alpha) {
    const s = Number(sectionSelect.value);
    const plane = D.slices.plane;
    const layout = {
      margin: {l: 40, r: 0, t: 30, b: 40}, title: {text: D.slices.names[s], font: {size: 14}},
      legend: {title: {text: "domain"}, itemsizing: "constant"},
      xaxis: {title: {text: "xyz"[plane[0]]}},
      yaxis: {title: {text: "xyz"[plane[1]]}, autorange: "reversed", scaleanchor: "x"},
    };
    const traces = domainTraces(alpha, (i) => sliceCodes[i] === s, "scattergl", plane);
    return Plotly.react("section-map", traces, layout, config);
  }

  function drawSizes(alpha) {
    const trace = {type: "bar", x: alpha.categories, y: alpha.sizes,
                   marker: {color: alpha.colours}, hovertemplate: "domain %{x}: %{y} cells<extra></extra>"};
    const layout = {margin: {l: 60, r: 10, t: 10, b: 40}, xaxis: {title: {text: "domain"}, type: "category"},
                    yaxis: {title: {text: "cells (all, not only those drawn)"}}};
    return Plotly.react("domain-sizes", [trace], layout, config);
  }

  function drawScores(alpha) {
    // the selection's score over the numbers of domains tried (solid), charged per doubling
    // (dashed: what the rule maximises), and the chosen number
    const sel = alpha.selection;
    const reason = document.getElementById("domain-reason");
    const div = document.getElementById("domain-scores");
    if (!sel || !Object.keys(sel.families).length) {
      reason.textContent = sel ? sel.reason : "not chosen from scores here: Leiden or " +
        "Louvain called the domains.";
      Plotly.purge(div);
      div.style.display = "none";
      return Promise.resolve();
    }
    div.style.display = "";
    reason.textContent = sel.reason;
    const colours = {mixture: "#1f77b4", tree: "#ff7f0e"};
    const names = {mixture: "mixtures", tree: "tree cuts"};
    const traces = [];
    for (const [family, t] of Object.entries(sel.families)) {
      traces.push({type: "scatter", mode: "lines", x: t.k, y: t.score, name: names[family] +
                   ": stability x modularity", line: {color: colours[family]}});
      if (sel.per_doubling != null) {
        traces.push({type: "scatter", mode: "lines", x: t.k, name: names[family] + ": charged " +
                     Math.round(100 * sel.per_doubling) + "% per doubling",
                     y: t.score.map((v, i) => v * Math.pow(1 - sel.per_doubling, Math.log2(t.k[i]))),
                     line: {color: colours[family], dash: "dash"}});
      }
    }
    if (sel.alternatives && sel.alternatives.k.length) {
      traces.push({type: "scatter", mode: "markers", x: sel.alternatives.k,
                   y: sel.alternatives.score, name: "also peaks: " + sel.alternatives.k.join(", "),
                   marker: {size: 9, color: "rgba(0,0,0,0)", line: {color: "black", width: 1.5}}});
    }
    const line = (x, colour, dash) => ({type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1,
                                       line: {color: colour, width: 1, dash: dash}});
    const shapes = [line(sel.chosen, "#d62728", "solid")];
    if (sel.shown !== sel.chosen) shapes.push(line(sel.shown, "#666666", "dot"));
    // the legend below the plot, where it leaves the plot its width on a phone
    const layout = {margin: {l: 60, r: 10, t: 20, b: 130}, shapes: shapes,
                    legend: {orientation: "h", x: 0, y: -0.22, yanchor: "top"},
                    xaxis: {title: {text: "number of domains (red: chosen, " + sel.chosen +
                            (sel.shown !== sel.chosen ? "; dotted: shown, " + sel.shown : "") + ")"}},
                    yaxis: {title: {text: "score"}}};
    return Plotly.react(div, traces, layout, config);
  }

  function drawLoss() {
    if (!D.loss.length) return Promise.resolve();
    const trace = {type: "scatter", mode: D.loss.length < 30 ? "lines+markers" : "lines",
                   x: D.loss.map((_, i) => i + 1), y: D.loss};
    // a schedule capped in steps stops within an epoch: its last point is part of one
    const training = (D.summary && D.summary.training) || {};
    const partial = training.steps && training.epochs && D.loss.length < training.epochs;
    const xTitle = partial ? "epoch (training stopped after " + training.steps + " steps; " +
      "the last point covers part of an epoch)" : "epoch";
    const layout = {margin: {l: 60, r: 10, t: 10, b: 40}, xaxis: {title: {text: xTitle}},
                    yaxis: {title: {text: training.loss === "mean" ? "mean squared error per cell and gene"
                                               : "reconstruction loss per cell"}}};
    return Plotly.newPlot("loss", [trace], layout, config);
  }

  function drawAll() {
    const alpha = alphas[Number(alphaSelect.value)];
    return Promise.all([drawScene(alpha), drawSection(alpha), drawSizes(alpha),
                        drawScores(alpha)]);
  }

  alphaSelect.addEventListener("change", drawAll);
  sectionSelect.addEventListener("change", () => drawSection(alphas[Number(alphaSelect.value)]));
  Promise.all([drawAll(), drawLoss()]).then(() => {
    window.spaconReady = true;
    document.body.dataset.ready = "true";
  }).catch((err) => {
    document.getElementById("errors").textContent = "could not draw the report: " + err;
    throw err;
  });
})();
