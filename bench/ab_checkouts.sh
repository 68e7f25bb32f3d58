#!/usr/bin/env bash
# Full-validation throughput of several commits, one after another on this machine:
#   bench/ab_checkouts.sh [--count N] [--reps R] [--target cpu|cuda] [--families F,G,...] COMMIT...   (HEAD's working tree counts as "HEAD")
# Each commit is checked out in a temporary worktree and runs `pipeline/cpu.py` (`generator/cpu.py` before the move; `pipeline/cuda.py`
# with --target cuda) `--count N --seed 5 --workers 2` with its own fresh Warp cache; pairs/s is read from the run's run.json.
# --families draws every commit's run from the same families (like for like: an older commit's default has fewer). Uses the
# Python of the Bazel environment (run `./bazelw test //...` once first) or $PYTHON.
set -euo pipefail
count=300 reps=2 target=cpu families=
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --families) families=$2; shift 2 ;;
    *) break ;;
  esac
done
case "$target" in cpu|cuda) ;; *) echo "ab_checkouts.sh: --target must be cpu or cuda, got '$target'" >&2; exit 2 ;; esac
root=$(git rev-parse --show-toplevel)
py=${PYTHON:-$(ls "$(bazel info output_base 2>/dev/null)"/external/pyenv/venv/bin/python3 2>/dev/null || echo python3)}
tmp=$(mktemp -d)
trap 'for d in "$tmp"/wt-*; do git -C "$root" worktree remove --force "$d" >/dev/null 2>&1 || true; done; rm -rf "$tmp"' EXIT
for c in "$@"; do
  if [ "$c" = HEAD ]; then ln -s "$root" "$tmp/wt-HEAD"; else git -C "$root" worktree add -q --detach "$tmp/wt-$c" "$c"; fi
done
for rep in $(seq "$reps"); do
  for c in "$@"; do
    out="$tmp/out-$c" cache="$tmp/cache-$c"
    rm -rf "$out" "$cache"
    # the generator's entry point: pipeline/cpu.py, or generator/cpu.py before the run loop moved
    script=pipeline/$target.py; [ -f "$tmp/wt-$c/$script" ] || script=generator/$target.py
    (cd "$tmp/wt-$c" && WARP_CACHE_PATH="$cache" PYTHONPATH=. "$py" "$script" --count "$count" --seed 5 \
      --out "$out" --workers 2 --quiet ${families:+--families "$families"} >/dev/null 2>&1)
    echo "rep $rep  $c  $("$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['pairs_per_s'], 'pairs/s', r['seconds'], 's')" "$out/run.json")"
  done
done
