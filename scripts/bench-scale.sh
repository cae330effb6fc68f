#!/usr/bin/env bash
# Scale benchmark: an archive of COUPLES x CAMERAS x FILES catalogued files (default 200 x 10 x 500 = 1,000,000),
# built once by `nightfox generate` (catalogue rows in bulk through the catalog traits; the blobs are absent, as on
# an external disk that is not mounted), beside a plain directory tree of the same shape. Prints, with its target:
#   - mount ready (the mount point answers `ls /`), daemon RSS after start and after a full `find`;
#   - `ls -l` of one camera folder cold, and `find` of the whole tree, each beside the same walk of the plain tree;
#   - `.by-hash`: a cold listing of its entry per blob (and RSS after it), a cold lookup of one name;
#   - `couple list`, `camera list`, `sessions`, `status`, `info`;
#   - `verify` finding every blob missing;
#   - the import of one more 1,000-file card into this archive against one into an empty archive (paired rounds).
# Env: BENCH_DIR (target/bench), COUPLES (200), CAMERAS (10), FILES (500), RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench
cargo build --release -q
nf="$(pwd)/target/release/nightfox"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
nc=${COUPLES:-200}; ncam=${CAMERAS:-10}; nfiles=${FILES:-500}; runs=${RUNS:-3}
total=$((nc * ncam * nfiles))
arch="$bench/scale-archive-${nc}x${ncam}x${nfiles}"
tree="$bench/scale-tree-${nc}x${ncam}x${nfiles}"
mkdir -p "$bench"

if [ ! -f "$arch.complete" ]; then
  rm -rf "$arch"
  "$nf" --archive "$arch" init >/dev/null
  echo "generating $total catalogued files in $arch" >&2
  t0=$(now); "$nf" --archive "$arch" generate --couples "$nc" --cameras "$ncam" --files "$nfiles" >/dev/null; t1=$(now)
  echo "generated in $(echo "$t1 - $t0" | bc) s" >&2
  touch "$arch.complete"
fi
if [ ! -f "$tree.complete" ]; then
  rm -rf "$tree"
  python3 - "$tree" "$nc" "$ncam" "$nfiles" <<'PY'
import os, sys
root, nc, ncam, nf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for c in range(nc):
    for k in range(ncam):
        d = os.path.join(root, "2020-01-01-gen-%05d" % c, "source", "modern", "gen-cam%03d" % k)
        os.makedirs(d, exist_ok=True)
        for i in range(nf):
            with open(os.path.join(d, "C%05d.MP4" % i), "wb") as f:
                f.write(b"nightfox generated clip\n")
PY
  touch "$tree.complete"
fi

mp="$bench/mnt-scale"; mkdir -p "$mp"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do mountpoint -q "$mp" 2>/dev/null || break; sleep 0.1; done
  mountpoint -q "$mp" 2>/dev/null && fusermount3 -u -z "$mp" 2>/dev/null || true
}
trap cleanup EXIT
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
secs() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now); echo "$t1 - $t0" | bc -l; }

drop
t0=$(now)
"$nf" --archive "$arch" mount "$mp" 2>"$bench/mnt-scale.log" & pid=$!
for _ in $(seq 1 6000); do ls "$mp" >/dev/null 2>&1 && mountpoint -q "$mp" && break; sleep 0.01; done
t1=$(now)
ready=$(echo "$t1 - $t0" | bc -l)
rss_start=$(rss_mb "$pid")

cam="2020-01-01-gen-$(printf %05d $((nc / 2)))/source/modern/gen-cam000"
declare -a ls_nf ls_native find_nf find_native
for r in $(seq 1 "$runs"); do
  if [ $((r % 2)) -eq 0 ]; then
    drop; ls_nf+=("$(secs ls -l "$mp/$cam")"); drop; ls_native+=("$(secs ls -l "$tree/$cam")")
  else
    drop; ls_native+=("$(secs ls -l "$tree/$cam")"); drop; ls_nf+=("$(secs ls -l "$mp/$cam")")
  fi
done
# A full find once each (cold), the mount's first: its RSS after it is the second figure.
drop; find_nf=$(secs find "$mp" -path "$mp/.by-hash" -prune -o -print)
rss_find=$(rss_mb "$pid")
drop; find_native=$(secs find "$tree" -print)
# `.by-hash` (an entry per blob): a listing streams in pages, a name is one lookup.
drop; byhash_ls=$(secs ls -f "$mp/.by-hash")
byhash_n=$(ls -f "$mp/.by-hash" | grep -vc '^\.\.\?$' || true)
rss_byhash=$(rss_mb "$pid")
h=$(printf 'nightfox generated clip: couple %d, camera %d, file %d\n' $((nc / 3)) 0 7 | b3sum --no-names)
drop; byhash_stat=$(secs stat "$mp/.by-hash/$h.MP4")
stat "$mp/.by-hash/$h.MP4" >/dev/null || echo "bench-scale: .by-hash/$h.MP4 not found" >&2

cli_row() { # name args...
  local name=$1; shift
  local t; t=$(secs "$nf" --archive "$arch" "$@")
  printf '  %-40s %8.3f s   (target < 0.5 s)\n' "$name" "$t"
}

echo
echo "scale benchmark: $total catalogued files ($nc couples x $ncam cameras x $nfiles), blobs absent"
printf '  %-40s %8.2f s   (target < 1 s)\n' "mount ready (ls / answers)" "$ready"
printf '  %-40s %8s MB  (target < 150 MB)\n' "daemon RSS after start" "$rss_start"
printf '  %-40s %8s MB  (target < 300 MB)\n' "daemon RSS after a full find" "$rss_find"
printf '  %-40s %8.3f s   native %.3f s (target < 0.05 s)\n' "ls -l of a $nfiles-file camera folder, cold" \
  "$(echo "${ls_nf[*]}" | median)" "$(echo "${ls_native[*]}" | median)"
printf '  %-40s %8.2f s   native %.2f s = %.2fx (target <= 3x)\n' "find of the whole tree, cold" \
  "$find_nf" "$find_native" "$(echo "$find_nf / $find_native" | bc -l)"
printf '  %-40s %8.2f s   %s entries, daemon RSS after it %s MB\n' "ls -f of .by-hash, cold" "$byhash_ls" \
  "$byhash_n" "$rss_byhash"
printf '  %-40s %8.3f s\n' "stat of one .by-hash name, cold" "$byhash_stat"
cleanup; pid=""
cli_row "couple list" couple list
cli_row "camera list" camera list
cli_row "sessions" sessions
cli_row "status" status
cli_row "info of one file" info "$cam/C00007.MP4"
t0=$(now); "$nf" --archive "$arch" verify >"$bench/scale-verify.txt" 2>&1 || true; t1=$(now)
printf '  %-40s %8.2f s   (target < 60 s), %s lines, last: %s\n' "verify, every blob missing" \
  "$(echo "$t1 - $t0" | bc -l)" "$(wc -l <"$bench/scale-verify.txt")" "$(tail -n1 "$bench/scale-verify.txt")"

# One more 1,000-file card: into a copy of this archive against into an empty one (paired, order turned).
card="$bench/scale-card"
if [ ! -d "$card" ]; then
  mkdir -p "$card/DCIM/100MEDIA"
  for i in $(seq -w 1 1000); do head -c 20000 /dev/urandom >"$card/DCIM/100MEDIA/IMG_$i.JPG"; done
fi
big="$bench/scale-import-big"; small="$bench/scale-import-empty"
import_into() { # archive -> seconds
  local c; c=$("$nf" --archive "$1" couple add --name "Card $RANDOM" --date 2026-01-01)
  drop; secs "$nf" --archive "$1" import --couple "$c" "$card"
}
declare -a t_big t_small
for r in $(seq 1 "$runs"); do
  rm -rf "$big" "$small"; cp -a "$arch" "$big"; "$nf" --archive "$small" init >/dev/null
  if [ $((r % 2)) -eq 0 ]; then t_big+=("$(import_into "$big")"); t_small+=("$(import_into "$small")")
  else t_small+=("$(import_into "$small")"); t_big+=("$(import_into "$big")"); fi
done
rm -rf "$big" "$small"
printf '  %-40s %8.2f s   empty archive %.2f s = %.2fx paired (target <= 1.2x)\n' "import of a 1,000-file card" \
  "$(echo "${t_big[*]}" | median)" "$(echo "${t_small[*]}" | median)" "$(paired "${t_big[*]}" "${t_small[*]}")"
echo "  runs: ls -l mount ${ls_nf[*]} | native ${ls_native[*]}; import big ${t_big[*]} | empty ${t_small[*]}"
