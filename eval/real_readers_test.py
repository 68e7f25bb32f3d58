"""The readers of a release that holds the real config (kernels of the warp-lang wheel, no
oracle): //report counts it in a section of its own (per folder of the wheel and split, what
each harvest left out, the builtins real kernels call and which no synthetic kernel calls),
//report:explore and //eval leave it out, and the synthetic facts are those of the synthetic
rows alone. A small harvest is released beside a small run, through the real tools.
"""

from __future__ import annotations

import collections
import json
import os
import sys

import pytest

from tools.testing import fresh_dir, read_manifest, tmp_root

TMP = tmp_root("/tmp/real_readers_test")


@pytest.fixture(scope="module")
def dist():
    import pipeline
    from harvest import run as harvest_run
    from tools import release

    harvest = fresh_dir(TMP, "harvest")
    os.makedirs(harvest)
    harvest_run.harvest(harvest, 2, 40, harvest_run.Progress(True))
    run = fresh_dir(TMP, "run")
    pipeline.run(pipeline.RunConfig("cpu", 8, 3, run, ["arith"], workers=1, quiet=True, archs=["sm_90"]))
    out = fresh_dir(TMP, "dist")
    assert release.main(["--in", run, harvest, "--out", out, "--version", "1.0.0"]) == 0
    return out


def _real_rows(dist: str) -> list[dict]:
    import pyarrow.parquet as pq

    m = read_manifest(dist)
    return [r for f in m["files"] if f.get("config") == "real" and f["path"].endswith(".parquet")
            for r in pq.read_table(os.path.join(dist, f["path"])).to_pylist()]


def test_the_report_counts_the_real_config_in_its_own_section(dist):
    from report import coverage, report_main

    out = os.path.join(TMP, "report")
    assert report_main.main([dist, "--out", out]) == 0
    with open(os.path.join(out, "facts.json")) as f:
        facts = json.load(f)["facts"]
    m, rows = read_manifest(dist), _real_rows(dist)
    real = facts["real"]
    assert real["records"] == len(rows) == m["counts"]["configs"]["real"]["records"]
    per = collections.Counter((r["wheel_dir"], r["split"]) for r in rows)
    assert {(d, s): n for d, v in real["by_dir"].items() for s, n in v.items() if s != "total" and n} == dict(per)
    calls = collections.Counter(b for r in rows for b in coverage.called(r["source"]))
    assert real["builtins"] == len(calls) and real["top_builtins"] == dict(sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])))
    (inp,) = real["inputs"]
    assert inp["published"] == m["real"]["inputs"][0]["published"]
    # the synthetic facts are the synthetic rows' alone
    assert facts["release"]["configs"] == ["cpu"]
    assert facts["coverage"]["configs"].keys() == {"cpu"}
    with open(os.path.join(out, "report.md")) as f:
        text = f.read()
    assert "## Real kernels" in text and f"holds {len(rows)} kernels" in text


def test_the_explorer_and_eval_leave_the_real_config_out(dist):
    from eval.rows import read_split
    from report import explore_main

    meta = explore_main.build(dist, dist, os.path.join(TMP, "explore"))
    m = read_manifest(dist)
    assert meta["rows"] == m["counts"]["configs"]["cpu"]["records"]
    with open(os.path.join(TMP, "explore", "index.html")) as f:
        assert "real config" in f.read()
    rows = read_split(dist, "train")
    assert rows and {r["family"] for r in rows} == {"arith"}  # the run's one family: no real row
    assert len(rows) == m["counts"]["configs"]["cpu"]["splits"]["train"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
