"use strict";
// The registry the data files hand their contents to (each is one `EXPLORE.kind(...)` call).
window.EXPLORE = {
  data: { meta: null, rows: {}, pairs: {}, facet: {}, search: {} },
  meta(m) { this.data.meta = m; },
  rows(k, v) { this.data.rows[k] = v; },
  pairs(k, v) { this.data.pairs[k] = v; },
  facet(k, deltas) { let s = 0; this.data.facet[k] = deltas.map((d) => (s += d)); },
  search(prefix, v) { this.data.search[prefix] = v; },
};
