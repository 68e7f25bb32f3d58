#!/usr/bin/env bash
# Do two commits write the same bytes? A fixed 50-pair run of each target (seed 5, one worker)
# from each commit, then shards, stats, run_config and manifest compared byte for byte.
#   bash bench/same_bytes.sh d6380ef HEAD      # the run loop's move to pipeline/ (issue 16)
# Uses the Bazel-made venv's python (or $PY); each commit runs from its own temporary worktree.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
py=${PY:-$(ls -d "$HOME"/.cache/bazel/_bazel_root/*/external/pyenv/venv/bin/python3 | head -1)}
tmp=$(mktemp -d)
trap 'for d in "$tmp"/wt-*; do git -C "$root" worktree remove --force "$d" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
for c in "$@"; do
  git -C "$root" worktree add -q --detach "$tmp/wt-$c" "$c"
  for t in cpu cuda; do
    script=pipeline/$t.py; [ -f "$tmp/wt-$c/$script" ] || script=generator/$t.py
    (cd "$tmp/wt-$c" && PYTHONPATH=. "$py" "$script" --count 50 --seed 5 --out "$tmp/out-$c-$t" --workers 1 --quiet \
      >/dev/null 2>&1)
  done
done
rc=0
first=$1; shift
for c in "$@"; do
  for t in cpu cuda; do
    for f in manifest.json run_config.json shard-00000.jsonl shard-00000.stats.json; do
      if cmp -s "$tmp/out-$first-$t/$f" "$tmp/out-$c-$t/$f"; then echo "same   $t/$f ($first, $c)"
      else echo "DIFFER $t/$f ($first, $c)"; rc=1; fi
    done
  done
done
exit $rc
