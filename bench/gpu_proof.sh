#!/usr/bin/env bash
# The GPU proof (issue 15), without Bazel, on a machine with an NVIDIA GPU, from the repository
# root, after ../shared/gpu/stage.sh's three runs installed warp-lang into /tmp/site:
#
#   bash bench/gpu_proof.sh gen [COUNT]      # smoke run, then COUNT pairs per target (default 1000,
#                                            # i.e. about 100 of each family of each target)
#   bash bench/gpu_proof.sh validate [JOBS]  # re-validate both with --device cuda, JOBS validators
#                                            # in parallel over the shards (default 8)
#   bash bench/gpu_proof.sh timing [COUNT]   # //generator:cuda pairs/s with 1, 4 and 16 workers
#                                            # (WORKERS="16 4" to choose)
#
# Data lives under $GP (default /tmp/gp); logs, manifests and reports are packed into
# $OUT/gpu_proof_<phase>.tgz (or ./gpu_proof_<phase>.tgz without $OUT).
set -uo pipefail
phase=${1:?gen, validate or timing}
GP=${GP:-/tmp/gp}
OUTDIR=${OUT:-$PWD}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p "$GP/logs"
log() { echo "[$(date +%T)] $*" | tee -a "$GP/logs/$phase.log"; }
timed() {  # timed NAME CMD...: run, log its output and wall time, return its exit status
  local name=$1; shift
  local t0=$(date +%s.%N)
  "$@" >"$GP/logs/$name.out" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  log "$name: rc=$rc wall_s=$(python3 -c "print(round($t1-$t0,1))") :: $*"
  tail -n 15 "$GP/logs/$name.out" | sed 's/^/    /' | tee -a "$GP/logs/$phase.log"
  return $rc
}
pack() {
  (cd "$GP" && find . -maxdepth 3 \( -name '*.log' -o -name '*.out' -o -name 'manifest.json' -o -name 'run.json' \
      -o -name 'run_config.json' -o -name 'validation_report*.json' -o -name 'timing.json' -o -name 'gpu_by_family.json' \) -print0 \
    | tar czf "$OUTDIR/gpu_proof_$phase.tgz" --null -T -)
}
trap pack EXIT

case $phase in
gen)
  count=${2:-1000}
  log "$(nvidia-smi -L 2>&1 | head -2)"
  log "$(python3 -c 'import warp as wp, numpy; wp.init(); print("warp", wp.__version__, "numpy", numpy.__version__, [str(d) for d in wp.get_devices()])' 2>&1 | tail -1)"
  if [ "${SMOKE:-1}" = 1 ]; then
    timed smoke_gen python3 pipeline/cuda.py --count 20 --seed 7 --out "$GP/smoke" --workers 4 --quiet || exit 1
    timed smoke_val python3 -m validator "$GP/smoke" --device cuda || exit 1
  fi
  timed gen_cpu python3 pipeline/cpu.py --count "$count" --seed 1 --out "$GP/cpu" --workers 16 --quiet
  timed gen_cuda python3 pipeline/cuda.py --count "$count" --seed 1 --out "$GP/cuda" --workers 16 --quiet
  # per family: GPU verdicts and the largest GPU-vs-CPU difference the records carry
  python3 - "$GP" <<'PY' | tee -a "$GP/logs/gen.log"
import collections, glob, json, sys
for t in ("cpu", "cuda"):
    rows = collections.defaultdict(lambda: {"n": 0, "gpu": collections.Counter(), "bwd_gpu": collections.Counter(), "max_abs_diff": 0.0})
    for p in sorted(glob.glob(f"{sys.argv[1]}/{t}/shard-*.jsonl")):
        for line in open(p):
            r = json.loads(line)
            row = rows[r["family"]]
            row["n"] += 1
            g = r["checks"]["execute_gpu"]
            row["gpu"][g["status"]] += 1
            row["bwd_gpu"][r["checks"]["execute_backward_gpu"]["status"]] += 1
            row["max_abs_diff"] = max(row["max_abs_diff"], g.get("max_abs_diff", 0.0))
    json.dump(rows, open(f"{sys.argv[1]}/{t}/gpu_by_family.json", "w"), indent=1, default=dict)
    for fam, row in sorted(rows.items()):
        print(t, fam, row["n"], dict(row["gpu"]), "bwd_gpu", dict(row["bwd_gpu"]), "max_abs_diff %.3g" % row["max_abs_diff"])
PY
  ;;
validate)
  jobs=${2:-8}
  for t in cpu cuda; do
    rm -rf "$GP/val_$t"; mkdir -p "$GP/val_$t"
    i=0
    for s in "$GP/$t"/shard-*.jsonl; do
      d="$GP/val_$t/part$((i % jobs))"; mkdir -p "$d"; ln -s "$s" "$d/"; i=$((i + 1))
    done
    t0=$(date +%s.%N)
    for d in "$GP/val_$t"/part*; do
      python3 -m validator "$d" --device cuda --report "$d/validation_report.json" >"$d/validate.out" 2>&1 &
    done
    wait
    t1=$(date +%s.%N)
    log "validate $t: $jobs validators in parallel, wall_s=$(python3 -c "print(round($t1-$t0,1))")"
    python3 - "$GP/val_$t" <<'PY' | tee -a "$GP/logs/validate.log"
import glob, json, sys, collections
tot = collections.Counter(); gpu = collections.Counter(); reasons = collections.Counter(); notes = set(); fails = []
for p in sorted(glob.glob(sys.argv[1] + "/part*/validation_report.json")):
    r = json.load(open(p))
    tot.update(records=r["records"], passed=r["passed"], failed=r["failed"])
    gpu.update(r["execute_gpu"]); reasons.update(r["failures_by_reason"]); notes.update(r["execute_gpu_notes"])
    fails += r["failures"][:5]
print(dict(tot), "execute_gpu", dict(gpu), "failures", dict(reasons), sorted(notes))
for f in fails[:10]:
    print("  ", f)
PY
  done
  ;;
timing)
  count=${2:-160}
  for w in ${WORKERS:-1 4 16}; do
    rm -rf "$GP/timing_w$w"
    timed "timing_w$w" python3 pipeline/cuda.py --count "$count" --seed 3 --out "$GP/timing_w$w" --workers "$w" --quiet
  done
  WORKERS="${WORKERS:-1 4 16}" python3 - "$GP" "$count" <<'PY' | tee -a "$GP/logs/timing.log"
import json, sys
gp, count = sys.argv[1], int(sys.argv[2])
import os
rows = {}
for w in map(int, os.environ["WORKERS"].split()):
    try:
        rows[w] = json.load(open(f"{gp}/timing_w{w}/run.json"))
    except OSError as e:
        rows[w] = {"error": str(e)}
json.dump(rows, open(f"{gp}/timing.json", "w"), indent=1)
for w, r in rows.items():
    print(w, {k: r.get(k) for k in ("pairs_per_s", "seconds", "workers", "devices", "stage_seconds")})
PY
  ;;
*) echo "error: unknown phase $phase" >&2; exit 2 ;;
esac
