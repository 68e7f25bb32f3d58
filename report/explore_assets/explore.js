"use strict";
// The explorer's list and pair pages. Every string that comes from a record is put into the
// document as text (textContent, createTextNode, option text), never as markup; links are built
// from row numbers and encodeURIComponent'd values only.
(function () {
  const D = window.EXPLORE.data;
  const PAGE = 50;
  const STATUS = { p: "passed", f: "failed", i: "inconclusive", n: "not_run", "-": "absent", "?": "unknown" };

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const kid of kids) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return node;
  }

  const loading = {};
  function load(path) { // a data script, once; resolves when it has run
    if (!loading[path]) {
      loading[path] = new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = path;
        s.onload = () => resolve();
        s.onerror = () => reject(new Error("cannot load " + path));
        document.head.append(s);
      });
    }
    return loading[path];
  }
  const pad = (k) => String(k).padStart(6, "0");
  async function rowChunk(k) { await load("data/rows/" + pad(k) + ".js"); return D.rows[k]; }
  async function pairChunk(k) { await load("data/pairs/" + pad(k) + ".js"); return D.pairs[k]; }
  async function facetRows(k) { await load("data/facets/" + pad(k) + ".js"); return D.facet[k]; }
  function hex(s) { return Array.from(new TextEncoder().encode(s), (b) => b.toString(16).padStart(2, "0")).join(""); }

  function params() { return new URLSearchParams(location.hash.slice(1)); }
  function setParams(p) { location.hash = p.toString(); }

  function intersect(a, b) {
    const out = [];
    let i = 0, j = 0;
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) { out.push(a[i]); i++; j++; } else if (a[i] < b[j]) i++; else j++;
    }
    return out;
  }

  async function searchRows(q) {
    const M = D.meta;
    const want = M.search.filter((p) => q.startsWith(p) || p.startsWith(q)).slice(0, 64);
    const rows = new Set();
    for (const p of want) {
      await load("data/search/" + hex(p) + ".js");
      for (const [key, row] of D.search[p]) if (key.startsWith(q)) rows.add(row);
    }
    return Array.from(rows).sort((a, b) => a - b);
  }

  // The rows matching the filters in `p` (null: every row), and the filters' names.
  async function matching(p) {
    const M = D.meta;
    let rows = null;
    for (const kind of ["config", "split", "family", "check", "builtin"]) {
      const v = p.get(kind);
      if (!v) continue;
      const hit = (M.facets[kind] || []).find((x) => x[0] === v);
      const got = hit ? await facetRows(hit[1]) : [];
      rows = rows === null ? got : intersect(rows, got);
    }
    const q = (p.get("q") || "").trim().toLowerCase();
    if (q.length >= 2) {
      const got = await searchRows(q);
      rows = rows === null ? got : intersect(rows, got);
    }
    return rows;
  }

  function select(kind, label, values, current) {
    const s = el("select", { id: "f-" + kind, name: kind });
    s.append(el("option", { value: "" }, "any"));
    for (const v of values) {
      const o = el("option", {}, v);
      o.value = v;
      if (v === current) o.selected = true;
      s.append(o);
    }
    s.addEventListener("change", () => { const p = params(); if (s.value) p.set(kind, s.value); else p.delete(kind); p.delete("page"); setParams(p); });
    return el("label", {}, label + " ", s);
  }

  function filters(p) {
    const M = D.meta;
    const box = el("div", { id: "filters" });
    for (const kind of ["config", "split", "family", "check", "builtin"]) {
      const values = (M.facets[kind] || []).map((x) => x[0]);
      box.append(select(kind, kind, values, p.get(kind) || ""));
    }
    const q = el("input", { id: "q", type: "search", placeholder: "id or kernel name" });
    q.value = p.get("q") || "";
    const go = el("button", { id: "go", type: "button" }, "Search");
    const run = () => { const pp = params(); if (q.value.trim()) pp.set("q", q.value.trim()); else pp.delete("q"); pp.delete("page"); setParams(pp); };
    go.addEventListener("click", run);
    q.addEventListener("keydown", (ev) => { if (ev.key === "Enter") run(); });
    box.append(el("label", {}, "search ", q), go);
    return box;
  }

  async function renderList() {
    const M = D.meta, p = params();
    const rows = await matching(p);
    const total = rows === null ? M.rows : rows.length;
    const per = Math.min(500, Math.max(5, parseInt(p.get("per") || String(PAGE), 10) || PAGE));
    const pages = Math.max(1, Math.ceil(total / per));
    const page = Math.min(pages, Math.max(1, parseInt(p.get("page") || "1", 10) || 1));
    const first = (page - 1) * per;
    const want = [];
    for (let k = first; k < Math.min(total, first + per); k++) want.push(rows === null ? k : rows[k]);
    const chunks = {};
    for (const r of want) { const c = Math.floor(r / M.rows_per_chunk); if (!chunks[c]) chunks[c] = await rowChunk(c); }
    const body = el("tbody");
    for (const r of want) {
      const [id, name, c, s, f, letters] = chunks[Math.floor(r / M.rows_per_chunk)][r % M.rows_per_chunk];
      const marks = el("span", { class: "letters" }, letters);
      marks.title = M.checks.map((n, i) => n + ": " + (STATUS[letters[i]] || "?")).join("\n");
      body.append(el("tr", { class: "row" }, el("td", {}, el("a", { href: "pair.html#row=" + r, class: "pair-link" }, id)),
        el("td", {}, name), el("td", {}, M.values.config[c]), el("td", {}, M.values.split[s]),
        el("td", {}, M.values.family[f]), el("td", {}, marks)));
    }
    const head = el("tr", {}, ...["id", "kernel", "config", "split", "family", "checks"].map((h) => el("th", {}, h)));
    const pager = el("div", { id: "pager" });
    const move = (to) => { const pp = params(); pp.set("page", String(to)); setParams(pp); };
    const prev = el("button", { id: "prev", type: "button" }, "Previous"), next = el("button", { id: "next", type: "button" }, "Next");
    prev.disabled = page <= 1; next.disabled = page >= pages;
    prev.addEventListener("click", () => move(page - 1));
    next.addEventListener("click", () => move(page + 1));
    pager.append(prev, el("span", { id: "page" }, "page " + page + " of " + pages), next);
    const legend = el("p", { class: "legend" }, "checks, one letter each (p passed, f failed, i inconclusive, n not run, - absent): " + M.checks.join(", "));
    const app = document.getElementById("app");
    app.replaceChildren(el("h1", {}, M.title), filters(p), el("p", { id: "count" }, total + " matching pairs"),
      el("table", { id: "rows" }, el("thead", {}, head), body), pager, legend);
  }

  function codeView(hl, prefix, linkBase) {
    const classes = D.meta.classes;
    const [text, runs] = hl;
    const pre = el("pre", { class: "code", id: prefix });
    let line = 1, pos = 0;
    let span = el("span", { class: "line", id: prefix + "-L1" }, el("span", { class: "lno" }, "1"));
    const lines = [span];
    const newLine = () => { line++; span = el("span", { class: "line", id: prefix + "-L" + line }, el("span", { class: "lno" }, String(line))); lines.push(span); };
    for (let i = 0; i < runs.length; i += 2) {
      const cls = classes[runs[i]] || "";
      const piece = text.slice(pos, pos + runs[i + 1]);
      pos += runs[i + 1];
      const parts = piece.split("\n");
      parts.forEach((part, j) => {
        if (j > 0) newLine();
        if (part) span.append(cls ? el("span", { class: cls }, part) : document.createTextNode(part));
      });
    }
    if (linkBase !== null) {
      lines.forEach((s, k) => {
        const m = /<L (\d+)>\s*$/.exec(s.textContent);
        if (m) s.append(el("a", { class: "llink", href: linkBase + "&L=" + m[1] + "&at=" + (k + 1), "data-line": m[1] }, "\u2192 Python line " + m[1]));
      });
    }
    pre.append(...lines);
    return pre;
  }

  function valueTable(rows) {
    const body = el("tbody");
    for (const [name, dtype, shape, cells, n] of rows) {
      const more = n > cells.length ? " \u2026 (" + n + " values)" : "";
      body.append(el("tr", {}, el("td", {}, name), el("td", {}, dtype), el("td", {}, shape), el("td", { class: "cells" }, cells.join(", ") + more)));
    }
    return el("table", { class: "values" }, el("thead", {}, el("tr", {}, ...["name", "dtype", "shape", "values"].map((h) => el("th", {}, h)))), body);
  }

  function pairsTable(rows, head, id) {
    const body = el("tbody");
    for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
    return el("table", { id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), body);
  }

  async function renderPair() {
    const M = D.meta, p = params();
    const row = parseInt(p.get("row") || "0", 10) || 0;
    const app = document.getElementById("app");
    if (row < 0 || row >= M.rows) { app.replaceChildren(el("p", { id: "missing" }, "no pair " + row + " in this release")); return; }
    const P = (await pairChunk(Math.floor(row / M.pairs_per_chunk)))[row % M.pairs_per_chunk];
    const views = P.code.filter((c) => c[0] !== "source");
    const view = views.find((c) => c[0] === p.get("view")) || views[0];
    const base = "#row=" + row + "&view=" + encodeURIComponent(view[0]);
    const tabs = el("div", { class: "tabs" });
    for (const c of views) {
      const b = el("button", { type: "button", id: "tab-" + c[0], class: c === view ? "on" : "" }, c[1]);
      b.addEventListener("click", () => { const pp = params(); pp.set("view", c[0]); pp.delete("L"); setParams(pp); });
      tabs.append(b);
    }
    const py = P.code.find((c) => c[0] === "source");
    const left = el("div", { class: "pane" }, el("h3", {}, "Python"), codeView(py[3], "py", null));
    const right = el("div", { class: "pane" }, el("h3", {}, view[1]), tabs, codeView(view[3], "ir", base));
    const facts = [["id", P.id], ["config", P.config], ["split", P.split], ["family", P.family], ["target", P.target],
      ["seed", P.seed], ["skeleton", P.skeleton_hash], ["launch dim", P.dim]];
    const nav = el("p", {});
    if (row > 0) nav.append(el("a", { href: "#row=" + (row - 1), id: "prev-pair" }, "\u2190 previous pair"), " ");
    if (row + 1 < M.rows) nav.append(el("a", { href: "#row=" + (row + 1), id: "next-pair" }, "next pair \u2192"));
    const parts = [el("h1", { id: "kernel" }, P.kernel_name), nav, pairsTable(facts, ["field", "value"], "facts"),
      el("div", { class: "side" }, left, right),
      el("h2", {}, "Checks"), pairsTable(P.checks.map(([n, s, why]) => [n, el("span", { class: "status-" + s }, s), why]), ["check", "status", "reason"], "checks"),
      el("h2", {}, "Inputs"), valueTable(P.inputs), el("h2", {}, "Outputs"), valueTable(P.outputs),
      el("h2", {}, "Gradient example")];
    if (P.grad.note) parts.push(el("p", {}, P.grad.note));
    else parts.push(pairsTable(Object.entries(P.grad.fields), ["field", "value"], "grad"), valueTable(P.grad.g));
    parts.push(el("h2", {}, "Builtins called"), el("p", { id: "builtins" }, P.builtins.join(", ") || "none"),
      el("h2", {}, "Provenance"), pairsTable(P.provenance, ["field", "value"], "provenance"));
    for (const n of P.notes) parts.push(el("p", { class: "note" }, n));
    app.replaceChildren(...parts);
    document.title = P.kernel_name + " \u2014 " + M.title;
    const L = p.get("L");
    if (L) {
      const target = document.getElementById("py-L" + parseInt(L, 10));
      if (target) { target.classList.add("hit"); target.scrollIntoView({ block: "nearest" }); }
      const from = document.getElementById("ir-L" + parseInt(p.get("at") || "0", 10));
      if (from) { // the generated line the link was followed from: marked, and scrolled to in its pane
        from.classList.add("hit");
        const pre = document.getElementById("ir");
        pre.scrollTop = Math.max(0, from.offsetTop - pre.clientHeight / 3); // pre is the line's offsetParent
      }
    }
  }

  function show(error) {
    document.getElementById("app").replaceChildren(el("p", { id: "error" }, String(error)));
  }
  function render() {
    const kind = document.body.dataset.page;
    const job = kind === "list" ? renderList() : renderPair();
    job.then(() => { const b = document.body.dataset; if (!b.firstRenderMs) b.firstRenderMs = performance.now().toFixed(1); b.ready = location.hash; document.body.dataset.renders = String(1 + (parseInt(document.body.dataset.renders || "0", 10))); }).catch(show);
  }
  window.addEventListener("hashchange", render);
  document.addEventListener("DOMContentLoaded", render);
})();
