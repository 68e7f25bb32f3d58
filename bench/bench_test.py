import json
import sys

import pytest

from bench import bench_main


def test_every_case_runs_and_the_table_has_each_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_main.main(["--count", "60", "--validate-count", "20", "--rss-small", "50", "--rss-large", "100",
                            "--workers", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["naive"]["pairs"] == 60 and r["codegen_only"]["pairs"] == 60
    assert r["full_validation"]["pairs"] == 20 and r["rss_small"]["pairs"] == 50 and r["rss_large"]["pairs"] == 100
    # the stages the README's table explains were all measured, in the mode they belong to
    assert {"spec", "import", "codegen", "record", "write"} <= set(r["codegen_only"]["stage_seconds"])
    assert not {"nvrtc", "llvm", "execute"} & set(r["codegen_only"]["stage_seconds"])
    assert {"nvrtc", "llvm", "execute"} <= set(r["full_validation"]["stage_seconds"])
    for k in ("codegen_only", "full_validation"):
        assert 0 < r[k]["share_warp_all"] <= 1 and r[k]["worker_peak_rss_mb"] > 50
    text = capsys.readouterr().out
    for row in ("naive", "codegen only", "full validation", "rss small", "rss large", "NVRTC to PTX"):
        assert row in text


def test_bad_size_is_a_one_line_error(capsys):
    assert bench_main.main(["--count", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --count must be >= 1"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
