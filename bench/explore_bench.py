"""`./bazelw run //bench:explore -- [--pairs 2000] [--rows 100000] [--release DIST] [--repeat 5]
[--workers W] [--json OUT]`: how fast the explorer's pages render in headless Chromium.

Makes a release of the PAIRS kernels generated that pass (half CPU, half CUDA, every family; or
takes DIST), builds
its explorer with //report:explore's code and times, from navigation start to the end of the first
render (the page's own `performance.now()`), the first list page, a filtered list page (family and
builtin) and a pair page, REPEAT times each (the median is reported). Then the same for ROWS rows:
the release's rows repeated under fresh ids (copy k of row r is `<id>-k`) through the explorer's
own data pass, so the list, facet and search files have ROWS rows' worth of data while each text
is highlighted once. Pages load only the chunks they show, so the times should not grow with rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from runtime.process import caller_path


def make_release(pairs: int, workers: int, tmp: str) -> str:
    """A real release of `pairs` validated pairs (CPU and CUDA, every family)."""
    import pipeline
    from bench.harness import families_for
    from tools import release

    runs = []
    for target, n in (("cpu", pairs - pairs // 2), ("cuda", pairs // 2)):
        out = os.path.join(tmp, f"run_{target}")
        pipeline.run(pipeline.RunConfig(target, n, 0, out, families_for(target), workers, quiet=True))
        runs.append(out)
    dist = os.path.join(tmp, "dist")
    if release.main(["--in", *runs, "--out", dist, "--version", "1.0.0"]) != 0:
        raise RuntimeError("the release of the benchmark's runs failed")
    return dist


class _Repeating:
    """The explorer's highlighter, remembering its last few answers (each text comes `copies`
    times in a row)."""

    def __init__(self, hl):
        self.hl, self.classes, self.memo = hl, hl.classes, {}

    def __call__(self, text: str, language: str) -> list:
        key = (language, text)
        if key not in self.memo:
            if len(self.memo) > 16:
                self.memo.clear()
            self.memo[key] = self.hl(text, language)
        return self.memo[key]


def scaled_site(dist: str, rows: int, out: str) -> dict:
    """The explorer of `dist` with its rows repeated to `rows` rows (see the module's note)."""
    from report import explore_pass, explore_site
    from report import facts as facts_mod
    from report.release_reader import open_shard

    m, light, measured = facts_mod.load_release(dist, dist)
    facts = facts_mod.build(m, light, measured, 0, 1, dist, dist)["facts"]
    archs = sorted(set(m["toolchain"]["ptx_archs"]))
    p = explore_pass.Pass(out, m, archs, {r["at"]: r["builtins"] for rs in light.values() for r in rs})
    p.hl = _Repeating(p.hl)
    originals = []
    for f in sorted((f for f in m["files"] if f["path"].endswith(".parquet")), key=lambda f: f["config"]):
        with open_shard(dist, f["path"], dist) as pf:
            originals += [(f, k, r) for k, r in enumerate(pf.read().to_pylist())]
    copies = -(-rows // len(originals))
    for f, k, r in originals:
        for c in range(copies):
            if p.n == rows:
                break
            p.row(dict(r, id=f"{r['id']}-{c}"), f["config"], f["path"], k)
    meta = p.finish()
    explore_site.write_assets(out)
    explore_site.write_pages(out, m, meta, facts, {})
    return meta


def first_render_ms(d, url: str) -> float:
    """Milliseconds from navigation start to the end of the page's first render."""
    d.get("about:blank")
    d.get(url)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        ms = d.execute_script("return document.body && document.body.dataset.firstRenderMs")
        if ms:
            if d.find_elements("id", "error"):
                raise RuntimeError(f"{url}: {d.find_element('id', 'error').text}")
            return float(ms)
        time.sleep(0.01)
    raise RuntimeError(f"{url}: no render within 60 s")


def time_pages(site: str, meta: dict, repeat: int) -> dict:
    """Median first-render times (ms) of the list, a filtered list and a pair page of `site`."""
    from urllib.parse import quote

    fam = max(meta["facets"]["family"], key=lambda x: x[2])[0]
    builtin = max(meta["facets"].get("builtin", [["", 0, 0]]), key=lambda x: x[2])[0]
    urls = {"list": "list.html", "list_filtered": f"list.html#family={quote(fam)}&builtin={quote(builtin)}",
            "pair": f"pair.html#row={meta['rows'] // 2}"}
    from report.explore_browser import headless_chromium

    d = headless_chromium()
    try:
        out = {"browser": f"{d.capabilities.get('browserName')} {d.capabilities.get('browserVersion')}"}
        for name, rel in urls.items():
            times = [first_render_ms(d, f"file://{os.path.abspath(site)}/{rel}") for _ in range(repeat)]
            out[f"{name}_ms"] = round(statistics.median(times), 1)
            out[f"{name}_ms_all"] = [round(t, 1) for t in times]
        return out
    finally:
        d.quit()


def site_bytes(site: str) -> int:
    return sum(os.path.getsize(os.path.join(b, n)) for b, _, names in os.walk(site) for n in names)


def measure(dist: str, rows: int, repeat: int, tmp: str) -> dict:
    from report import explore_main

    results = {}
    site = os.path.join(tmp, "site")
    t0 = time.monotonic()
    if explore_main.main([dist, "--out", site]) != 0:
        raise RuntimeError("//report:explore failed")
    with open(os.path.join(site, "data", "meta.js")) as f:
        meta = json.loads(f.read()[len("EXPLORE.meta("):-3].replace("<\\/", "</"))
    results["release"] = dict(rows=meta["rows"], build_seconds=round(time.monotonic() - t0, 1),
                              site_mb=round(site_bytes(site) / 2**20, 1), **time_pages(site, meta, repeat))
    shutil.rmtree(site)
    if rows:
        big = os.path.join(tmp, "site_big")
        t0 = time.monotonic()
        meta = scaled_site(dist, rows, big)
        results["scaled"] = dict(rows=meta["rows"], build_seconds=round(time.monotonic() - t0, 1),
                                 site_mb=round(site_bytes(big) / 2**20, 1), **time_pages(big, meta, repeat))
        shutil.rmtree(big)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //bench:explore --", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=2000, help="kernels generated for the release made here (default 2000; those that pass are its pairs)")
    p.add_argument("--rows", type=int, default=100000, help="rows of the scaled explorer (default 100000; 0: skip)")
    p.add_argument("--release", metavar="DIST", help="an existing release to use instead of making one")
    p.add_argument("--repeat", type=int, default=5, help="page loads per figure (default 5; the median is given)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="workers making the release")
    p.add_argument("--json", help="also write the results here (JSON)")
    args = p.parse_args(argv)
    if args.pairs < 2 or args.rows < 0 or args.repeat < 1 or args.workers < 1:
        print("error: --pairs must be >= 2, --rows >= 0, --repeat and --workers >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="warp-ir-bench-explore-") as tmp:
        dist = caller_path(args.release) if args.release else make_release(args.pairs, args.workers, tmp)
        results = measure(dist, args.rows, args.repeat, tmp)
    for k, r in results.items():
        print(f"{k:8s} {r['rows']:>8} rows  site {r['site_mb']:>8} MB  built in {r['build_seconds']:>7} s  "
              f"first list page {r['list_ms']} ms  filtered list {r['list_filtered_ms']} ms  pair page {r['pair_ms']} ms  "
              f"({r['browser']})")
    if args.json:
        with open(caller_path(args.json), "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
