#!/usr/bin/env bash
# Import benchmark: `nightfox import` against `cp -r` + `sync`, and against `cp -r` + `sync` + `b3sum` of the
# copies, on the same generated set (a few 1 GiB files plus a thousand small ones), side by side in one run.
# Page caches are dropped before every run when root. Prints medians and ratios (lower time = better).
# Env: BENCH_DIR (default target/bench), BIG_FILES (3), BIG_MIB (1024), SMALL_FILES (1000), RUNS (3),
# ONLY=resume (just the resume row), BASELINE=/path/to/an/older/nightfox (adds it as a column, paired with this
# build: the regression check of a refactor).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench
cargo build --release -q
nf="$(pwd)/target/release/nightfox"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
big=${BIG_FILES:-3}; big_mib=${BIG_MIB:-1024}; small=${SMALL_FILES:-1000}; runs=${RUNS:-3}
src="$bench/import-src-${big}x${big_mib}-${small}"

if [ ! -f "$src/.complete" ]; then
  echo "generating $big x $big_mib MiB + $small small files in $src" >&2
  rm -rf "$src"
  mkdir -p "$src/PRIVATE/M4ROOT/CLIP" "$src/DCIM"
  for i in $(seq 1 "$big"); do
    head -c $((big_mib << 20)) /dev/urandom >"$src/PRIVATE/M4ROOT/CLIP/C000$i.MP4"
  done
  python3 - "$src/DCIM" "$small" <<'PY'
import os, sys, random
d, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
for i in range(n):
    sub = os.path.join(d, "%03dMEDIA" % (100 + i // 200))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "IMG_%04d.JPG" % i), "wb") as f:
        f.write(os.urandom(random.randint(16 << 10, 512 << 10)))
PY
  touch "$src/.complete"
fi
bytes=$(du -sb --exclude=.complete "$src" | cut -f1)
files=$(find "$src" -type f ! -name .complete | wc -l)

dst="$bench/import-dst"
clean() { rm -rf "$dst"; sync; }

declare -A times
run_one() { # name command...
  local name=$1; shift
  clean; drop
  local t0; t0=$(now)
  "$@"
  local t1; t1=$(now)
  times[$name]+=" $(echo "$t1 - $t0" | bc)"
}
cp_sync() { cp -r "$src" "$dst" && sync; }
cp_sync_b3() { cp -r "$src" "$dst" && sync && find "$dst" -type f -print0 | xargs -0 -n 256 b3sum >/dev/null; }
nf_import_with() {
  "$1" --archive "$dst" init >/dev/null
  local c; c=$("$1" --archive "$dst" couple add --name Bench --date 2025-01-01)
  "$1" --archive "$dst" import --couple "$c" "$src" >/dev/null
}
nf_import() { nf_import_with "$nf"; }
baseline_import() { nf_import_with "$BASELINE"; }

if [ "${ONLY:-}" != resume ]; then
order=(cp_sync cp_sync_b3 nightfox)
[ -n "${BASELINE:-}" ] && order+=(baseline)
fn_of() { case $1 in nightfox) echo nf_import ;; baseline) echo baseline_import ;; *) echo "$1" ;; esac; }
for r in $(seq 1 "$runs"); do
  # Rotate the order every round so no method always runs first after generation or a delete.
  for k in $(seq 0 $((${#order[@]} - 1))); do
    n=${order[$(((k + r) % ${#order[@]}))]}
    run_one "$n" "$(fn_of "$n")"
  done
  line="round $r/$runs:"
  for n in "${order[@]}"; do line+=" $n ${times[$n]##* } |"; done
  echo "${line% |}" >&2
done
clean

m_cp=$(echo "${times[cp_sync]}" | median)
m_b3=$(echo "${times[cp_sync_b3]}" | median)
m_nf=$(echo "${times[nightfox]}" | median)
mib=$(echo "$bytes / 1048576" | bc)
echo
echo "import benchmark: $files files, $mib MiB, median of $runs runs, caches dropped before each"
for n in cp_sync cp_sync_b3 nightfox; do echo "  $n runs (s):${times[$n]}"; done
printf '%-32s %9s %10s %12s\n' "run" "seconds" "MiB/s" "time ratio"
for n in cp_sync cp_sync_b3 nightfox; do
  m=$(echo "${times[$n]}" | median)
  printf '%-32s %9.2f %10.0f %12s\n' "$n" "$m" "$(echo "$mib / $m" | bc -l)" "$(printf '%.2fx' "$(echo "$m / $m_cp" | bc -l)")"
done
echo
printf 'nightfox import / (cp + sync)          = %.2f  (target <= 1.5)\n' "$(echo "$m_nf / $m_cp" | bc -l)"
printf 'nightfox import / (cp + sync + b3sum)  = %.2f  (target < 1.0)\n' "$(echo "$m_nf / $m_b3" | bc -l)"
if [ -n "${BASELINE:-}" ]; then
  echo "  baseline runs (s):${times[baseline]}"
  printf 'nightfox import / baseline import       = %.2f  (paired median of %d; %s)\n' \
    "$(paired "${times[nightfox]}" "${times[baseline]}")" "$runs" "$BASELINE"
fi
fi

# Resume inside a file: `kill -9` at 50% of a 2 GiB file, then `resume`, against a fresh import of the same file
# (paired rounds, order rotated, caches dropped before each timed run). Env: RESUME_MIB (2048).
resume_mib=${RESUME_MIB:-2048}
rsrc="$bench/resume-src-$resume_mib"
if [ ! -f "$rsrc/.complete" ]; then
  rm -rf "$rsrc"; mkdir -p "$rsrc/CLIP"
  head -c $((resume_mib << 20)) /dev/urandom >"$rsrc/CLIP/C0001.MP4"
  touch "$rsrc/.complete"
fi
fresh_archive() { rm -rf "$dst"; "$nf" --archive "$dst" init >/dev/null; "$nf" --archive "$dst" couple add --name R --date 2025-01-01; }
declare -a t_fresh t_resume
for r in $(seq 1 "$runs"); do
  for k in 0 1; do
    if [ $(((k + r) % 2)) -eq 0 ]; then
      c=$(fresh_archive); drop
      t0=$(now); "$nf" --archive "$dst" import --couple "$c" "$rsrc/CLIP" >/dev/null; t1=$(now)
      t_fresh+=("$(echo "$t1 - $t0" | bc)")
    else
      c=$(fresh_archive)
      "$nf" --archive "$dst" import --couple "$c" "$rsrc/CLIP" >/dev/null 2>&1 &
      pid=$!
      for _ in $(seq 1 1200); do
        sz=$(stat -c %s "$dst"/tmp/*.part 2>/dev/null | sort -n | tail -1 || true)
        [ "${sz:-0}" -ge $((resume_mib << 19)) ] && break
        sleep 0.05
      done
      kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
      drop
      t0=$(now); "$nf" --archive "$dst" resume 1 >/dev/null; t1=$(now)
      t_resume+=("$(echo "$t1 - $t0" | bc)")
    fi
  done
  echo "resume round $r/$runs: fresh ${t_fresh[-1]} | resume after kill at 50% ${t_resume[-1]}" >&2
done
clean
printf 'resume after kill -9 at 50%% of %d MiB / fresh import = %.2f  (paired median of %d; target <= 0.6)\n' \
  "$resume_mib" "$(paired "${t_resume[*]}" "${t_fresh[*]}")" "$runs"
