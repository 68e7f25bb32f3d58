"""The cost of our own parts of a codegen-only pair, each timed alone in this process:

  python bench/parts.py [--count N] [--chunks C]      (from the repository root)
  PYTHONPATH=OTHER_CHECKOUT python bench/parts.py      (the same parts of another checkout's code)

- safety: `validator.checks.check_safety` per source, over the renderings of N kernels per target;
- spec: `generator.families.build_spec` per kernel (the grammar's draws and the liveness oracle);
- cut: `extractor.warp_adapter.cut_ir` per kernel, over C chunks (`pipeline.plan.CHUNK` kernels) per target, cut
  from Warp's codegen-only sources (`codegen_sources`), which are made once per chunk, untimed.

Only the public names the pipeline calls are used, so a checkout from before a change can be
timed with this file (the README's before/after figures). Prints one line per part, in ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/parts.py", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=500, help="kernels per target for safety and spec (default 500)")
    p.add_argument("--chunks", type=int, default=2, help="chunks (pipeline.plan.CHUNK kernels each) per target for the cut (default 2)")
    args = p.parse_args(argv)
    if args.count < 1 or args.chunks < 1:
        print("error: --count and --chunks must be >= 1", file=sys.stderr)
        return 2
    from extractor import warp_adapter
    from generator.families import build_spec, families_for
    from generator.render import render_source
    from pipeline.plan import CHUNK, kernel_plan
    from validator import checks

    for target in ("cpu", "cuda"):
        fams = families_for(target)
        plan = [kernel_plan(0, fams, k) for k in range(max(args.count, CHUNK * args.chunks))]
        t0 = time.perf_counter()
        specs = [build_spec(f, s) for f, s in plan[:args.count]]
        spec_ms = (time.perf_counter() - t0) / args.count * 1000
        sources = [render_source(s) for s in specs]
        t0 = time.perf_counter()
        for src in sources:
            checks.check_safety(src)
        safety_ms = (time.perf_counter() - t0) / len(sources) * 1000
        cut_s, kernels_cut = 0.0, 0
        for c in range(args.chunks):
            batch = [build_spec(f, s) for f, s in plan[CHUNK * c:CHUNK * (c + 1)]]
            with tempfile.TemporaryDirectory(prefix="warp-ir-parts-") as d:
                module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in batch}, d)
                cpp, cu = warp_adapter.codegen_sources(module, kernels)
                t0 = time.perf_counter()
                warp_adapter.cut_ir(kernels, cpp, cu, d)
                cut_s += time.perf_counter() - t0
                kernels_cut += len(kernels)
                warp_adapter.unload(module)
        print(f"{target}: spec {spec_ms:.3f} ms/kernel, safety {safety_ms:.3f} ms/source, "
              f"cut {cut_s / kernels_cut * 1000:.3f} ms/kernel ({args.count} kernels, {kernels_cut} cut)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
