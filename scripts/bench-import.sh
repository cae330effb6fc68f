#!/usr/bin/env bash
# Import benchmark: `nightfox import` against `cp -r` + `sync`, and against `cp -r` + `sync` + `b3sum` of the
# copies, on the same generated set (a few 1 GiB files plus a thousand small ones), side by side in one run.
# Page caches are dropped before every run when root. Prints medians and ratios (lower time = better).
# The import runs twice per round: with the archive's own SQLite catalog (`nightfox`) and with a Postgres catalog
# (`nightfox_pg`: a PostgreSQL 15 started for this run on 127.0.0.1 by scripts/lib-pg.sh, a fresh database
# migrated before each run, outside the timing, as `init` of a studio seat finds it), paired with the SQLite run.
# And once more into an encrypted archive (`nightfox_enc`: `init --encrypt`, every blob sealed with AES-256-GCM
# as it lands), paired with the plain import (target <= 1.3x).
# Env: BENCH_DIR (default target/bench), BIG_FILES (3), BIG_MIB (1024), SMALL_FILES (1000), RUNS (3),
# NIGHTFOX_BIN (a built binary to run instead of `cargo build --release`), ONLY=resume (just the resume row),
# ONLY=catalog (just the nightfox arms, no resume row), PG=0 (no Postgres arm), ENC=0 (no encrypted arm),
# BASELINE=/path/to/an/older/nightfox (adds it as a column, paired with this build: the regression check of a
# refactor).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
. scripts/lib-pg.sh
scripts/setup.sh bench
if [ -n "${NIGHTFOX_BIN:-}" ]; then nf=$(realpath "$NIGHTFOX_BIN"); else
  cargo build --release -q
  nf="$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/nightfox"
fi
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
pg=${PG:-1}; [ "${ONLY:-}" = resume ] && pg=0
trap 'clean; pg_stop' EXIT
if [ "$pg" = 1 ]; then pg_start "$bench/pg-import"; fi

declare -A times
run_one() { # name command...
  local name=$1; shift
  clean
  if declare -F "prep_$1" >/dev/null; then "prep_$1"; fi
  drop
  local t0; t0=$(now)
  "$@"
  local t1; t1=$(now)
  times[$name]+=" $(echo "$t1 - $t0" | bc)"
}
cp_sync() { cp -r "$src" "$dst" && sync; }
cp_sync_b3() { cp -r "$src" "$dst" && sync && find "$dst" -type f -print0 | xargs -0 -n 256 b3sum >/dev/null; }
nf_import_with() { # binary [init flags...]
  "$1" --archive "$dst" init "${@:2}" >/dev/null
  local c; c=$("$1" --archive "$dst" couple add --name Bench --date 2025-01-01)
  "$1" --archive "$dst" import --couple "$c" "$src" >/dev/null
}
nf_import() { nf_import_with "$nf"; }
nf_import_enc() { nf_import_with "$nf" --encrypt; }
# The same import with the catalog in Postgres (its database made fresh and migrated by prep_, untimed).
prep_nf_import_pg() { pg_fresh_db nfbench_import; }
nf_import_pg() {
  pg_nf nfbench_import --archive "$dst" init --catalog "$(pg_url nfbench_import)" >/dev/null
  local c; c=$(pg_nf nfbench_import --archive "$dst" couple add --name Bench --date 2025-01-01)
  pg_nf nfbench_import --archive "$dst" import --couple "$c" "$src" >/dev/null
}
baseline_import() { nf_import_with "$BASELINE"; }

if [ "${ONLY:-}" != resume ]; then
order=(cp_sync cp_sync_b3 nightfox)
[ "${ONLY:-}" = catalog ] && order=(nightfox)
[ "$pg" = 1 ] && order+=(nightfox_pg)
enc=${ENC:-1}
[ "$enc" = 1 ] && order+=(nightfox_enc)
[ -n "${BASELINE:-}" ] && order+=(baseline)
fn_of() {
  case $1 in
    nightfox) echo nf_import ;; nightfox_pg) echo nf_import_pg ;; nightfox_enc) echo nf_import_enc ;;
    baseline) echo baseline_import ;; *) echo "$1" ;;
  esac
}
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

mib=$(echo "$bytes / 1048576" | bc)
m_nf=$(echo "${times[nightfox]}" | median)
echo
echo "import benchmark: $files files, $mib MiB, median of $runs runs, caches dropped before each"
shown=(cp_sync cp_sync_b3 nightfox)
[ "${ONLY:-}" = catalog ] && shown=(nightfox)
[ "$pg" = 1 ] && shown+=(nightfox_pg)
[ "$enc" = 1 ] && shown+=(nightfox_enc)
for n in "${shown[@]}"; do echo "  $n runs (s):${times[$n]}"; done
if [ "${ONLY:-}" != catalog ]; then
m_cp=$(echo "${times[cp_sync]}" | median)
m_b3=$(echo "${times[cp_sync_b3]}" | median)
printf '%-32s %9s %10s %12s\n' "run" "seconds" "MiB/s" "time ratio"
for n in "${shown[@]}"; do
  m=$(echo "${times[$n]}" | median)
  printf '%-32s %9.2f %10.0f %12s\n' "$n" "$m" "$(echo "$mib / $m" | bc -l)" "$(printf '%.2fx' "$(echo "$m / $m_cp" | bc -l)")"
done
echo
printf 'nightfox import / (cp + sync)          = %.2f  (target <= 1.5)\n' "$(echo "$m_nf / $m_cp" | bc -l)"
printf 'nightfox import / (cp + sync + b3sum)  = %.2f  (target < 1.0)\n' "$(echo "$m_nf / $m_b3" | bc -l)"
fi
if [ "$pg" = 1 ]; then
  r=$(ratios "${times[nightfox_pg]}" "${times[nightfox]}")
  printf 'nightfox import, Postgres / SQLite catalog = %.2f  (paired median of %d, per round %s= %s; target <= 1.2)\n' \
    "$(paired "${times[nightfox_pg]}" "${times[nightfox]}")" "$runs" "$r" "$(echo "$r" | spread)"
fi
if [ "$enc" = 1 ]; then
  r=$(ratios "${times[nightfox_enc]}" "${times[nightfox]}")
  printf 'nightfox import, encrypted / plain archive = %.2f  (paired median of %d, per round %s= %s; target <= 1.3)\n' \
    "$(paired "${times[nightfox_enc]}" "${times[nightfox]}")" "$runs" "$r" "$(echo "$r" | spread)"
fi
if [ -n "${BASELINE:-}" ]; then
  echo "  baseline runs (s):${times[baseline]}"
  printf 'nightfox import / baseline import       = %.2f  (paired median of %d; %s)\n' \
    "$(paired "${times[nightfox]}" "${times[baseline]}")" "$runs" "$BASELINE"
fi
fi
[ "${ONLY:-}" = catalog ] && exit 0

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
