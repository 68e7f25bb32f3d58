"""The file rule on its own (schemas/files.py): each test plants the hostile file a red team
used and checks the rule's answer; tools/hostile_files_test.py sends the same files through
every entry point."""

import os
import re
import subprocess
import sys
import time

import pytest

import schemas
from schemas import files


def test_quote_leaves_no_control_character_and_cuts_long_text():
    fake = "x\x1b[2K\r\x1b[32mok: 0 failed\n\u202egnp.\x07"
    q = files.quote(fake)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202e]", q)
    assert "\\x1b" in q and "\\x0a" in q and "\\u202e" in q
    assert files.quote("a" * 1000, 50) == "a" * 50 + "..."
    assert files.quote("\ud800") == "\\ud800"  # a lone surrogate never reaches an encoder
    assert files.quote("plain name_1.jsonl") == "plain name_1.jsonl"


def test_md_makes_markup_inert():
    for payload in ("<script>alert(1)</script>", "[x](javascript:alert(1))", "<img src=x onerror=alert(1)>",
                    "**bold** `code` | cell", "line\n# heading"):
        out = files.md(payload)
        assert "<" not in out and ">" not in out and "\n" not in out
        assert not re.search(r"(?<!\\)[\[\]`|*]", out), out


def test_fence_is_longer_than_any_backtick_run_inside():
    lines = files.fence("a ``` b ```` c", "sh")
    assert lines[0] == "`````sh" and lines[-1] == "`````"


def test_python_pattern_ends_at_the_end_of_the_text():
    pattern = schemas.load("run_manifest")["properties"]["shards"]["items"]["properties"]["path"]["pattern"]
    assert re.search(pattern, "shard-00000.jsonl\n")  # why: Python's $ matches before a final newline
    assert not re.search(schemas.python_pattern(pattern), "shard-00000.jsonl\n")
    assert re.search(schemas.python_pattern(pattern), "shard-00000.jsonl")
    v = schemas.validator({"type": "string", "pattern": pattern})
    assert not v.is_valid("shard-00000.jsonl\n") and v.is_valid("shard-00000.jsonl")


def test_check_name_matches_in_full():
    rx = re.compile(r"shard-[0-9]{5,}\.jsonl")
    assert files.check_name("shard-00000.jsonl", rx, "t") == "shard-00000.jsonl"
    for bad in ("shard-00000.jsonl\n", "../shard-00000.jsonl", "shard-00000.jsonl\x00", "/shard-00000.jsonl", None, 3):
        with pytest.raises(files.FileRefused):
            files.check_name(bad, rx, "t")


def test_open_regular_refuses_links_fifos_and_directories_without_blocking(tmp_path):
    target = tmp_path / "outside.jsonl"
    target.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(target)
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    t0 = time.monotonic()
    for name, kind in (("link.jsonl", "symbolic link"), ("fifo.jsonl", "FIFO"), ("dir.jsonl", "directory"),
                       ("missing.jsonl", "missing")):
        with pytest.raises(files.FileRefused, match=kind):
            files.open_regular(str(tmp_path / name), name)
    assert time.monotonic() - t0 < 2
    with files.open_regular(str(target)) as f:
        assert f.read() == b"{}\n"


def test_json_depth_is_measured_on_the_bytes_over_strings_and_escapes():
    assert files.json_depth(b'{"a": "[[[[\\"{{", "b": [1, [2, {"c": 3}]]}') == 4
    assert files.json_depth(b"[" * 1_000_000 + b"]" * 1_000_000) == files.MAX_JSON_DEPTH + 1
    value, why = files.decode_json(b"[" * 100_000 + b"]" * 100_000)
    assert value is None and "deeper than" in why


def test_an_overlong_line_is_one_short_error_and_the_next_line_reads(tmp_path):
    path = tmp_path / "shard-00000.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"a":1}\n' + b"7" * (3 << 20) + b"\n" + b'{"b":2}\n')
    with files.open_regular(str(path)) as f:
        got = list(files.lines(f, limit=1 << 20))
    assert [whole for _, whole in got] == [True, False, True]
    assert len(got[1][0]) == 1 << 20 and got[2][0] == b'{"b":2}\n'


def test_write_text_replaces_a_planted_link_and_never_writes_through_it(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    report = tmp_path / "report.json"
    report.symlink_to(outside)
    files.write_text(str(report), "{}")
    assert outside.read_text() == "keep me"
    assert not report.is_symlink() and report.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_unlisted_finds_data_files_links_and_fifos_without_following(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "notes.md").write_text("")
    (tmp_path / "l").symlink_to("/etc")
    os.mkfifo(tmp_path / "p")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "x.jsonl").write_text("")
    got = files.unlisted(str(tmp_path), {"a.jsonl"}, lambda rel: rel.endswith(".jsonl"), skip_dirs=("report",))
    assert got == ["b.jsonl", "l", "p"]


BOMB = r"""
import sys
sys.path.insert(0, sys.argv[2])
from schemas import files, release_rows
try:
    release_rows.open_parquet(sys.argv[1])
    print("opened")
except files.FileRefused as e:
    print("refused:", e)
# VmHWM: this process's own peak (ru_maxrss would carry the forking parent's across exec)
print("rss_kb", next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def test_a_parquet_bomb_is_refused_from_its_footer_before_anything_is_decompressed(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(tmp_path / "bomb.parquet")
    big = "A" * (300 << 20)  # 300 MB of one letter: a few hundred KB compressed
    pq.write_table(pa.table({"id": [big]}), path, compression="zstd")
    del big
    assert os.path.getsize(path) < 2 << 20
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", BOMB, path, repo], capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "uncompressed" in out.stdout, out.stdout + out.stderr
    rss_mb = int(out.stdout.split("rss_kb")[1]) / 1024
    assert rss_mb < 300, rss_mb  # nothing of the 300 MB was ever held


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
