// Shared by the views: fetching the JSON API, building tables and the outcome chart.
// Everything read from a ledger is put into the page as text (textContent), never as HTML.
"use strict";

const Views = (() => {
  // The query of this page (dag_id, run_id, task_id, map_index) passed on to the API.
  function query(extra) {
    const params = new URLSearchParams(window.location.search);
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params.toString();
  }

  // GET or POST to the API; resolves to the JSON answer, rejects with the answer's reason.
  async function call(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
      const error = new Error(response.status + ": " + detail);
      error.body = body;
      throw error;
    }
    return body;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function show(value) {
    return value === null || value === undefined || value === "" ? "" : String(value);
  }

  // A table of rows (objects) with the given columns [[key, title], ...].
  function table(columns, rows, numeric) {
    const head = el("tr", {}, columns.map(([, title]) => el("th", { text: title })));
    const body = rows.map((row) => el("tr", {}, columns.map(([key]) => {
      const value = typeof key === "function" ? key(row) : row[key];
      if (value instanceof Node) return el("td", {}, [value]);
      return el("td", { text: show(value), class: (numeric || []).includes(key) ? "num" : "" });
    })));
    return el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  // Outcome counts as horizontal bars, drawn as inline SVG (no chart library, nothing loaded).
  function chart(counts) {
    const ns = "http://www.w3.org/2000/svg";
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const rowHeight = 20, label = 170, width = 520;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(rowHeight * entries.length + 4));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "outcome counts");
    entries.forEach(([outcome, n], i) => {
      const y = i * rowHeight + 2;
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", "0");
      text.setAttribute("y", String(y + 14));
      text.textContent = outcome;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", String(label));
      bar.setAttribute("y", String(y + 3));
      bar.setAttribute("height", "14");
      bar.setAttribute("width", String(Math.max(1, ((width - label - 70) * n) / max)));
      bar.setAttribute("fill", /failed|invalid|needs|not_attempted|pending|kept/.test(outcome) ? "#c0392b" : "#2e86c1");
      const count = document.createElementNS(ns, "text");
      count.setAttribute("x", String(label + ((width - label - 70) * n) / max + 6));
      count.setAttribute("y", String(y + 14));
      count.textContent = String(n);
      svg.append(text, bar, count);
    });
    return svg;
  }

  function seconds(value) {
    if (value === null || value === undefined) return "";
    if (value < 120) return value.toFixed(1) + " s";
    if (value < 7200) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  function stateCell(state) {
    return el("span", { class: "state-" + state, text: state });
  }

  function fail(target, error) {
    target.replaceChildren(el("p", { class: "error", text: String(error.message || error) }));
  }

  return { query, call, el, table, chart, seconds, stateCell, fail };
})();
