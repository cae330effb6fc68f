#!/usr/bin/env bash
# Export benchmark: `nightfox export` of a ~2 GiB couple (each file fsynced, read back from disk and compared,
# an ASC MHL history written) against the chain a user would run for the same proof: `cp -r` of the card, `sync`,
# then `ascmhl create -h xxh64` of the copy (the reference tool from scripts/setup.sh test). Paired rounds, the
# order rotated each round, caches dropped before each run when root. Prints medians and the paired ratio
# chain / nightfox (target > 1: the export is faster).
# Env: BENCH_DIR (target/bench), BIG_FILES (3), BIG_MIB (512), SMALL_FILES (500), RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench test
cargo build --release -q
nf="$(pwd)/target/release/nightfox"
ascmhl="$(pwd)/target/venv-ascmhl/bin/ascmhl"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
big=${BIG_FILES:-3}; big_mib=${BIG_MIB:-512}; small=${SMALL_FILES:-500}; runs=${RUNS:-3}
card="$bench/export-card-${big}x${big_mib}-${small}"
make_card "$card" "$big" "$big_mib" "$small"
work="$bench/export-work"
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
arch="$work/archive"
"$nf" --archive "$arch" init >/dev/null
couple=$("$nf" --archive "$arch" couple add --name "bench export" --date 2025-01-01)
mkdir -p "$work/card" && cp -r "$card/PRIVATE" "$card/DCIM" "$work/card/"
"$nf" --archive "$arch" import --couple "$couple" "$work/card" >/dev/null
rm -rf "$work/card"
files=$(find "$card" -type f ! -name .complete | wc -l)
mib=$(( $(du -sb --exclude=.complete "$card" | cut -f1) / 1048576 ))

nf_t=""; chain_t=""
run_nf() {
  rm -rf "$work/dest"; drop
  local t0 t1; t0=$(now)
  "$nf" --archive "$arch" export "$couple" "$work/dest" --layout original >/dev/null
  t1=$(now); nf_t+=" $(echo "$t1 - $t0" | bc)"
}
run_chain() {
  rm -rf "$work/copy"; mkdir -p "$work/copy"; drop
  local t0 t1; t0=$(now)
  cp -r "$card/PRIVATE" "$card/DCIM" "$work/copy/"
  sync
  "$ascmhl" create -h xxh64 "$work/copy" >/dev/null
  t1=$(now); chain_t+=" $(echo "$t1 - $t0" | bc)"
}
for r in $(seq 1 "$runs"); do
  if [ $((r % 2)) = 1 ]; then run_nf; run_chain; else run_chain; run_nf; fi
  echo "round $r/$runs: nightfox export ${nf_t##* } s, cp -r + sync + ascmhl create ${chain_t##* } s" >&2
done
echo
echo "export benchmark: $files files, $mib MiB, median of $runs paired runs (order rotated)"
for k in nf chain; do
  v="${k}_t"; m=$(echo "${!v}" | median)
  printf '%-8s %8.2f s %8.0f MiB/s   runs:%s\n' "$k" "$m" "$(echo "$mib / $m" | bc -l)" "${!v}"
done
printf 'chain / nightfox export (paired) = %.2f  (target > 1)\n' "$(paired "$chain_t" "$nf_t")"
