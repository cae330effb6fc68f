#!/usr/bin/env bash
# Ingest directory benchmark, side by side in one run: `cp -r` and `rsync -a` of a generated ~2 GiB card into the
# mount's /ingest/<couple>/ against the same into a plain directory on the archive's disk followed by `sync`.
# The nightfox time runs until every file is committed (fsynced, re-hashed from disk, catalogued). Caches are
# dropped before each run when root. Prints medians and the ratio plain / nightfox (target >= 0.7).
# With passthrough (root, Linux 6.9+) writers write straight into the staging files; MOUNT_ARGS=--no-passthrough
# measures the path where every write goes through the daemon.
# Env: BENCH_DIR (target/bench), BIG_FILES (3), BIG_MIB (512), SMALL_FILES (500), RUNS (3), MOUNT_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench
cargo build --release -q
nf="$(pwd)/target/release/nightfox"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
big=${BIG_FILES:-3}; big_mib=${BIG_MIB:-512}; small=${SMALL_FILES:-500}; runs=${RUNS:-3}
card="$bench/ingest-card-${big}x${big_mib}-${small}"
make_card "$card" "$big" "$big_mib" "$small"
files=$(find "$card" -type f ! -name .complete | wc -l)
mib=$(( $(du -sb --exclude=.complete "$card" | cut -f1) / 1048576 ))
work="$bench/ingest-work"
rm -rf "$work"; mkdir -p "$work/mnt" "$work/plain"
arch="$work/archive"
"$nf" --archive "$arch" init >/dev/null
# shellcheck disable=SC2086
RUST_LOG=nightfox=info "$nf" --archive "$arch" mount "$work/mnt" ${MOUNT_ARGS:-} 2>"$work/mount.log" &
mpid=$!
cleanup() {
  kill -TERM "$mpid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
  mountpoint -q "$work/mnt" && fusermount3 -u -z "$work/mnt" || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 150); do mountpoint -q "$work/mnt" && break; sleep 0.1; done

declare -A times
n=0
committed() { # couple -> files catalogued
  "$nf" --archive "$arch" couple list --json | python3 -c "import json,sys; c=[x for x in json.load(sys.stdin) if x['folder_name']==sys.argv[1]]; print(c[0]['file_count'] if c else 0)" "$1"
}
nf_run() { # tool
  n=$((n + 1))
  local c; c=$("$nf" --archive "$arch" couple add --name "run $n $1" --date 2025-01-01)
  drop
  local t0 t1; t0=$(now)
  if [ "$1" = cp ]; then cp -r "$card/." "$work/mnt/ingest/$c/"; else rsync -a --exclude .complete "$card/" "$work/mnt/ingest/$c/"; fi
  for _ in $(seq 1 6000); do [ "$(committed "$c")" -ge "$files" ] && break; sleep 0.05; done
  t1=$(now)
  times[nightfox_$1]+=" $(echo "$t1 - $t0" | bc)"
}
plain_run() { # tool
  rm -rf "$work/plain/x"; mkdir -p "$work/plain/x"; drop
  local t0 t1; t0=$(now)
  if [ "$1" = cp ]; then cp -r "$card/." "$work/plain/x/"; else rsync -a --exclude .complete "$card/" "$work/plain/x/"; fi
  sync
  t1=$(now)
  times[plain_$1]+=" $(echo "$t1 - $t0" | bc)"
}
for r in $(seq 1 "$runs"); do
  plain_run cp; nf_run cp; plain_run rsync; nf_run rsync
  echo "round $r/$runs: plain cp ${times[plain_cp]##* } nightfox cp ${times[nightfox_cp]##* } plain rsync ${times[plain_rsync]##* } nightfox rsync ${times[nightfox_rsync]##* }" >&2
done
echo
pt_state=$(grep -o 'passthrough=[a-z]*' "$work/mount.log" | tail -n1 || true)
echo "ingest benchmark: $files files, $mib MiB, median of $runs runs (nightfox: until every file is committed); ${pt_state:-passthrough=unknown}"
for k in plain_cp nightfox_cp plain_rsync nightfox_rsync; do
  m=$(echo "${times[$k]}" | median)
  printf '%-16s %8.2f s %8.0f MiB/s   runs:%s\n' "$k" "$m" "$(echo "$mib / $m" | bc -l)" "${times[$k]}"
done
for t in cp rsync; do
  p=$(echo "${times[plain_$t]}" | median); q=$(echo "${times[nightfox_$t]}" | median)
  printf '%-5s into /ingest: throughput vs plain dir + sync = %.2f  (target >= 0.7)\n' "$t" "$(echo "$p / $q" | bc -l)"
done
