"""//bench as a user runs it: the parts benchmark times each part of both targets, every case
runs and its table has each row, and bad sizes or unfinished release runs are one-line errors.
"""

import json
import sys

import pytest

from bench import bench_main


def test_the_parts_benchmark_times_each_part_for_both_targets(capsys):
    from bench import parts

    assert parts.main(["--count", "5", "--chunks", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["cpu", "cuda"]
    for ln in lines:
        assert "spec " in ln and "safety " in ln and "cut " in ln and "(5 kernels, 50 cut)" in ln, ln
    assert parts.main(["--count", "0"]) == 2


def test_every_case_runs_and_the_table_has_each_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_main.main(["--count", "60", "--validate-count", "20", "--rss-small", "50", "--rss-large", "100",
                            "--scale-count", "20", "--release-small", "20", "--release-large", "40",
                            "--workers", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    # the executor rows: the same 20 kernels, validated, by 1 and 2 local workers and by Ray tasks
    assert [r[k]["pairs"] for k in ("local_1", "local_2", "ray")] == [20, 20, 20]
    assert [r[k]["executor"] for k in ("local_1", "local_2", "ray")] == ["local", "local", "ray"]
    assert r["ray"]["mode"] == "full validation on Ray" and r["ray"]["stage_seconds"]["llvm"] > 0
    # release, verify and report ran as children over releases of 20 and 40 records, each measured
    assert (r["release_small"]["records"], r["release_large"]["records"]) == (20, 40)
    for k in ("release_small", "release_large"):
        for step in ("release", "verify", "report"):
            assert r[k][f"{step}_peak_rss_mb"] > 30 and r[k][f"{step}_seconds"] > 0
    assert r["naive"]["pairs"] == 60 and r["codegen_only"]["pairs"] == 60
    assert r["full_validation"]["pairs"] == 20 and r["rss_small"]["pairs"] == 50 and r["rss_large"]["pairs"] == 100
    # the stages the README's table explains were all measured, in the mode they belong to
    assert {"spec", "import", "codegen", "record", "write"} <= set(r["codegen_only"]["stage_seconds"])
    assert not {"nvrtc", "llvm", "execute"} & set(r["codegen_only"]["stage_seconds"])
    assert {"nvrtc", "llvm", "execute"} <= set(r["full_validation"]["stage_seconds"])
    for k in ("codegen_only", "full_validation"):
        assert 0 < r[k]["share_warp_all"] <= 1 and r[k]["worker_peak_rss_mb"] > 50
    text = capsys.readouterr().out
    for row in ("naive", "codegen only", "full validation", "rss small", "rss large", "NVRTC to PTX", "local 1",
                "local 2", "full validation on Ray", "release peak RSS", "verify peak RSS", "report peak RSS"):
        assert row in text


def test_bad_size_is_a_one_line_error(capsys):
    assert bench_main.main(["--count", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --count must be >= 1"
    assert bench_main.main(["--release-large", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --release-large must be >= 0"
    assert bench_main.main(["--cases", "naive,speed"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown case speed; known: naive, codegen_only")


def test_release_runs_must_be_two_finished_runs(tmp_path, capsys):
    assert bench_main.main(["--release-runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --release-runs needs two finished runs") and str(tmp_path) in err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
