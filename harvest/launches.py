"""Real launches: the wheel's own tests run on the CPU with Warp's launch hooked, and each
harvested kernel's first launch that can be stored as plain data recorded (extractor/launches.py).

`record_all(paths, workers)` runs every test module of the wheel among `paths` (each
`warp/tests/**/test_*.py` file a harvest reads; the wheel's examples are not run) in a process of
its own, as `python -m harvest.launches MODULE OUT`: CUDA hidden (the CPU's launches only, the
same on a GPU host), Python's, NumPy's and `default_rng()`'s seeds fixed, and every CPU
allocation zeroed (`extractor.launches.zeroed_cpu_memory`: what uninitialised memory holds would
make a launch's inputs differ from run to run). A module's launches count only once it ran to its end: one that fails to start,
crashes or passes `TIMEOUT` seconds is counted by reason in the manifest with none of its launches.
The modules are read in path order and a kernel keeps the first launch the first module that
launched it recorded, so the launches are a function of the wheel and the paths, whatever
`workers` (the second of two harvests, and //validator, record them again and find the same).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

from harvest.discover import warp_root

TIMEOUT = 300  # seconds for one test module, past which it counts as `timeout` with none of its launches
# test modules not run, for their time against what they record (measured here, 2 workers on 2 busy
# cores: seconds, launches recorded): the FEM tests (217-300 s, 5-29 each), the texture tests
# (325 s, 1), the volume tests (over 600 s), and the BVH, hash-grid, mesh-query, swept-volume and
# APIC-mesh tests (65-93 s, 0-1 each). Counted in the manifest as `skipped_slow`.
SLOW = ("warp.tests.fem.", "warp.tests.cuda.test_texture", "warp.tests.geometry.test_volume",
        "warp.tests.geometry.test_bvh", "warp.tests.geometry.test_hash_grid", "warp.tests.geometry.test_mesh_query_aabb",
        "warp.tests.geometry.test_swept_volume", "warp.tests.test_apic_mesh")
NOT_LAUNCHED = "not_launched"  # no test module the harvest ran launched the kernel on the CPU


def test_modules(paths) -> list[str]:
    """The wheel's test modules among `paths` (inside-the-wheel paths), as importable names, sorted
    (the `SLOW` ones included)."""
    return sorted(p[:-3].replace("/", ".") for p in set(paths)
                  if p.startswith("warp/tests/") and os.path.basename(p).startswith("test_") and p.endswith(".py"))


def _slow(module: str) -> bool:
    return any(module == s or (s.endswith(".") and module.startswith(s)) for s in SLOW)


def _run_module(module: str, tmp: str) -> tuple[str, dict | str, float]:
    """(module, its launches {"path:line": {"launch", "reason"}} or the reason it gave none, seconds)."""
    t0 = time.time()
    got = _run(module, tmp)
    return module, got, round(time.time() - t0, 1)


def _keep(found: dict, key: str, entry: dict) -> None:
    """A kernel keeps its first recorded launch, else the first reason it had none."""
    if key not in found or (found[key]["launch"] is None and entry["launch"] is not None):
        found[key] = entry


def _run(module: str, tmp: str) -> dict | str:
    out = os.path.join(tmp, f"{module}.json")
    cwd = os.path.join(tmp, module)
    os.makedirs(cwd, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONHASHSEED": "0", "WARP_CACHE_PATH": os.path.join(cwd, "kernel-cache")}
    try:
        proc = subprocess.run([sys.executable, "-m", "harvest.launches", module, out], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout"
    if proc.returncode != 0 or not os.path.exists(out):
        return f"exit_{proc.returncode}" if proc.returncode >= 0 else f"signal_{-proc.returncode}"
    with open(out) as f:
        return json.load(f)


def record_all(paths, workers: int, seconds: dict | None = None, progress=None) -> tuple[dict[str, dict], dict]:
    """({"path:first line": {"launch": launch or None, "reason": None or why not}}, the modules'
    counts {"run", "ran_to_end", "skipped_slow", "failed_by_reason"}); `seconds` gets each module's
    wall time (not part of the harvest: it depends on the machine); `progress` (run.Progress) is
    advanced as each module ends."""
    every = test_modules(paths)
    modules = [m for m in every if not _slow(m)]
    if progress is not None:
        progress.start(len(modules))
    with tempfile.TemporaryDirectory(prefix="harvest-launches-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(_run_module, m, tmp) for m in modules]
        for f in concurrent.futures.as_completed(futures):
            if progress is not None:
                progress.advance(1)
        ran = [f.result() for f in futures]
    if progress is not None:
        progress.done()
    done = {m: got for m, got, _ in ran}
    if seconds is not None:
        seconds.update({m: s for m, _, s in ran})
    found: dict[str, dict] = {}
    failed: dict[str, int] = {}
    for module in modules:
        got = done[module]
        if isinstance(got, str):
            failed[got] = failed.get(got, 0) + 1
            continue
        for key, entry in got.items():
            _keep(found, key, entry)
    counts = {"run": len(modules), "ran_to_end": len(modules) - sum(failed.values()),
              "skipped_slow": len(every) - len(modules), "failed_by_reason": dict(sorted(failed.items()))}
    return found, counts


def _seeded() -> None:
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    default_rng = np.random.default_rng
    np.random.default_rng = lambda seed=None, *a, **k: default_rng(0 if seed is None else seed, *a, **k)


def main(module: str, out: str) -> int:
    """Run one test module with launches recorded; write them to `out` (JSON) once it ends."""
    import unittest

    _seeded()
    from extractor import launches

    root = os.path.dirname(warp_root())
    found: dict[str, dict] = {}

    def on_launch(kernel, launch, reason):
        code = kernel.func.__code__
        path = os.path.relpath(os.path.realpath(code.co_filename), os.path.realpath(root))
        if not path.startswith("warp/"):
            return
        _keep(found, f"{path}:{code.co_firstlineno}", {"launch": launch, "reason": reason})

    with launches.zeroed_cpu_memory(), launches.recording(on_launch), open(os.devnull, "w") as devnull:
        suite = unittest.defaultTestLoader.loadTestsFromName(module)
        unittest.TextTestRunner(stream=devnull, verbosity=0).run(suite)
    with open(out, "w") as f:
        json.dump(found, f, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
