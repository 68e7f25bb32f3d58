"""//bench:explore as a user runs it, at toy sizes: a real release of 20 pairs is made, its explorer
and a 300-row scaled one are built and every page is timed in headless Chromium."""

import json
import sys

import pytest

from bench import explore_bench


def test_every_page_is_timed_at_both_sizes(tmp_path, capsys):
    out = tmp_path / "explore.json"
    assert explore_bench.main(["--pairs", "20", "--rows", "300", "--repeat", "2", "--workers", "2",
                               "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert 15 <= r["release"]["rows"] <= 20 and r["scaled"]["rows"] == 300  # the pairs that passed
    for k in ("release", "scaled"):
        for page in ("list", "list_filtered", "pair"):
            assert 0 < r[k][f"{page}_ms"] < 60000 and len(r[k][f"{page}_ms_all"]) == 2
        assert r[k]["site_mb"] > 0 and r[k]["build_seconds"] > 0 and r[k]["browser"].startswith("chrom")
    text = capsys.readouterr().out
    assert "first list page" in text and "pair page" in text


def test_bad_sizes_are_one_line_errors(capsys):
    assert explore_bench.main(["--pairs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
