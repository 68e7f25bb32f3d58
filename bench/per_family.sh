#!/usr/bin/env bash
# What one kernel of each family costs to validate, one family after another on this machine:
#   bench/per_family.sh [--count N] [--target cpu|cuda] [--workers W] [FAMILY...]   (default: every family of the target)
# Each family runs `pipeline/TARGET.py --families F --count N --seed 5 --workers W` (default 100 and 1) with a fresh
# Warp cache, and prints, from the run's run.json: pairs/s, worker-seconds per pair (seconds x workers / pairs), and the
# LLVM and NVRTC compile seconds per pair (stage_seconds, summed over workers). The last line is the mean cost of a pair of
# the families listed, drawn uniformly. Uses the Python of the Bazel environment (run `./bazelw test //...` once first) or $PYTHON.
set -euo pipefail
count=100 target=cpu workers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    *) break ;;
  esac
done
case "$target" in cpu|cuda) ;; *) echo "per_family.sh: --target must be cpu or cuda, got '$target'" >&2; exit 2 ;; esac
root=$(git rev-parse --show-toplevel)
py=${PYTHON:-$(ls "$(bazel info output_base 2>/dev/null)"/external/pyenv/venv/bin/python3 2>/dev/null || echo python3)}
cd "$root"
families=("$@")
if [ ${#families[@]} -eq 0 ]; then
  read -r -a families <<< "$(PYTHONPATH=. "$py" -c "from generator.families import families_for; print(' '.join(families_for('$target')))")"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-14s %8s %10s %10s %10s\n' family pairs/s s/pair llvm/pair nvrtc/pair
for f in "${families[@]}"; do
  out="$tmp/out-$f"
  WARP_CACHE_PATH="$tmp/cache-$f" PYTHONPATH=. "$py" "pipeline/$target.py" --families "$f" --count "$count" --seed 5 \
    --out "$out" --workers "$workers" --quiet >/dev/null 2>&1
  "$py" -c "
import json, sys
r = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2])); n = m['counts']['passed']; s = r['stage_seconds']
print(f\"{sys.argv[3]:<14} {r['pairs_per_s']:>8} {r['seconds'] * r['workers'] / n:>10.3f} {s.get('llvm', 0) / n:>10.3f} {s.get('nvrtc', 0) / n:>10.3f}\")
" "$out/run.json" "$out/manifest.json" "$f" | tee -a "$tmp/rows"
done
awk '{ s += $3; n += 1 } END { printf "%-14s %8s %10.3f\n", "mean", "", s / n }' "$tmp/rows"
