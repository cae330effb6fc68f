#!/usr/bin/env bash
# Mount benchmark, side by side in one run: reading blob files natively, the nightfox mount with kernel
# passthrough, the nightfox copy path (--no-passthrough), the copy path with verified reads (--verify-reads), and bindfs (a peer FUSE filesystem) over the same
# objects directory. Sequential read (dd bs=1M, cold after dropping caches, and warm), random 4 KiB and 64 KiB
# reads (fio), and find / ls -lR / du -s over 20,000 files in 200 directories against a plain tree of the same
# shape (and bindfs over it). Prints throughput and ratios to native (higher = better for reads; for walks the
# ratio is time / native time, lower = better).
# Warm rows hold the file in memory while they run (mmap + mlock, see `hold` in bench-lib.sh): this VM pages out
# idle page cache within seconds.
# Every measurement is taken RUNS times, the four columns one after the other in each round (their order turned by
# one each round); the median is printed, and each ratio is the median of the per-round ratios to native (the runs
# are listed too). A last column pairs the copy path with bindfs directly. The idle CPU of both daemons ends it.
# An encrypted column reads the same clip from an encrypted archive (`init --encrypt`: sealed with AES-256-GCM in
# 64 KiB chunks, decrypted on the copy path) and is paired with the copy path (target: sequential >= 0.7x).
# Env: BENCH_DIR (target/bench), BIG_MIB (1024), FIO_SECONDS (5), WALK_COUPLES (20), WALK_CAMERAS (10),
#      WALK_FILES (100), RUNS (5), BASELINE=/path/to/an/older/nightfox (adds its passthrough and copy-path mounts
#      as two more columns, each on its own twin archive, and prints this build / baseline per row, paired: the
#      regression check of a refactor), NIGHTFOX_BIN (a built binary instead of `cargo build --release`),
#      WALKS=0 (the read rows only).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench
if [ -n "${NIGHTFOX_BIN:-}" ]; then nf=$(realpath "$NIGHTFOX_BIN"); else
  cargo build --release -q
  nf="$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/nightfox"
fi
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
big_mib=${BIG_MIB:-1024}; fio_s=${FIO_SECONDS:-5}; runs=${RUNS:-5}
nc=${WALK_COUPLES:-20}; ncam=${WALK_CAMERAS:-10}; nfiles=${WALK_FILES:-100}
arch="$bench/mount-archive-${big_mib}-${nc}x${ncam}x${nfiles}"
# The plain tree has the mount's shape: <couple>/source/modern/<camera>/<file>.
tree="$bench/mount-tree-shaped-${nc}x${ncam}x${nfiles}"
[ "$(id -u)" -eq 0 ] || echo "note: not root: caches cannot be dropped and passthrough is unavailable" >&2

if [ ! -f "$tree.complete" ]; then
  rm -rf "$tree"
  python3 - "$tree" "$nc" "$ncam" "$nfiles" <<'PY'
import os, sys
root, nc, ncam, nf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for c in range(nc):
    for k in range(ncam):
        d = os.path.join(root, "c%02d" % c, "source", "modern", "cam%02d" % k)
        os.makedirs(d, exist_ok=True)
        for i in range(nf):
            with open(os.path.join(d, "C%04d.MP4" % i), "wb") as f:
                f.write(os.urandom(1024 + (i * 37) % 3000))
PY
  touch "$tree.complete"
fi
if [ ! -f "$arch/.bench-complete" ]; then
  echo "building the bench archive in $arch (once)" >&2
  rm -rf "$arch"
  "$nf" --archive "$arch" init >/dev/null
  for k in $(seq -f %02g 0 $((ncam - 1))); do
    "$nf" --archive "$arch" camera add --name "cam$k" --type modern >/dev/null
  done
  for c in $(seq -f %02g 0 $((nc - 1))); do
    couple=$("$nf" --archive "$arch" couple add --name "couple $c" --date 2025-01-01)
    for k in $(seq -f %02g 0 $((ncam - 1))); do
      "$nf" --archive "$arch" import --couple "$couple" --camera "cam$k" "$tree/c$c/source/modern/cam$k" >/dev/null
    done
  done
  bigsrc="$bench/mount-big.bin"
  head -c $((big_mib << 20)) /dev/urandom >"$bigsrc"
  couple=$("$nf" --archive "$arch" couple add --name "big" --date 2025-01-02)
  "$nf" --archive "$arch" import --couple "$couple" "$bigsrc" >/dev/null
  rm -f "$bigsrc"
  touch "$arch/.bench-complete"
fi
big_hash=$(cd "$arch/objects" && find . -type f -size +$((big_mib - 1))M -printf '%f\n' | head -n1)
big_rel="2025-01-02-big/source/modern/unknown/mount-big.bin"
native_big="$arch/objects/${big_hash:0:2}/${big_hash:2:2}/$big_hash"
# The same clip in an encrypted archive (its own secret.key), imported once from the plain archive's blob.
earch="$arch-encrypted"
if [ ! -f "$earch/.bench-complete" ]; then
  rm -rf "$earch"
  "$nf" --archive "$earch" init --encrypt >/dev/null
  couple=$("$nf" --archive "$earch" couple add --name "big" --date 2025-01-02)
  "$nf" --archive "$earch" import --couple "$couple" "$native_big" >/dev/null
  touch "$earch/.bench-complete"
fi
enc_rel="2025-01-02-big/source/modern/unknown/$big_hash"

# One mount per archive: the copy-path mount gets a twin archive, its blobs hard links to the same files (the same
# bytes and page cache) and its own copy of the catalog.
twin="$arch-twin"
rm -rf "$twin"
mkdir -p "$twin"
cp -al "$arch/objects" "$twin/objects"
cp "$arch/catalog.db" "$arch/NIGHTFOX_ARCHIVE" "$twin/"
mkdir -p "$twin/tmp" "$twin/locks"
# And one for the copy path with verified reads (`mount --verify-reads`: every block checked against the hash).
vtwin="$arch-verified"
rm -rf "$vtwin"
mkdir -p "$vtwin"
cp -al "$arch/objects" "$vtwin/objects"
cp "$arch/catalog.db" "$arch/NIGHTFOX_ARCHIVE" "$vtwin/"
mkdir -p "$vtwin/tmp" "$vtwin/locks"

m_pt="$bench/mnt-passthrough"; m_cp="$bench/mnt-copy"; m_bf="$bench/mnt-bindfs"; m_bt="$bench/mnt-bindfs-tree"
m_bp="$bench/mnt-base-passthrough"; m_bc="$bench/mnt-base-copy"; m_vr="$bench/mnt-verified"; m_en="$bench/mnt-encrypted"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for m in "$m_pt" "$m_cp" "$m_bf" "$m_bt" "$m_bp" "$m_bc" "$m_vr" "$m_en"; do
    for _ in $(seq 1 50); do mountpoint -q "$m" 2>/dev/null || break; sleep 0.1; done
    mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT
wait_mount() { for _ in $(seq 1 150); do mountpoint -q "$1" && return 0; sleep 0.1; done; echo "no mount at $1" >&2; exit 1; }
mkdir -p "$m_pt" "$m_cp" "$m_bf" "$m_bt" "$m_vr" "$m_en"
RUST_LOG=nightfox=info "$nf" --archive "$arch" mount "$m_pt" 2>"$bench/mnt-passthrough.log" & pids+=($!)
"$nf" --archive "$twin" mount --no-passthrough "$m_cp" 2>"$bench/mnt-copy.log" & pids+=($!)
"$nf" --archive "$vtwin" mount --verify-reads "$m_vr" 2>"$bench/mnt-verified.log" & pids+=($!)
# No --no-passthrough: an encrypted blob takes the copy path whatever the kernel allows.
"$nf" --archive "$earch" mount "$m_en" 2>"$bench/mnt-encrypted.log" & pids+=($!)
bindfs -r "$arch/objects" "$m_bf"
bindfs -r "$tree" "$m_bt"
for m in "$m_pt" "$m_cp" "$m_bf" "$m_bt" "$m_vr" "$m_en"; do wait_mount "$m"; done
if [ -n "${BASELINE:-}" ]; then
  for t in base-pt base-copy; do
    rm -rf "$arch-$t"; mkdir -p "$arch-$t"
    cp -al "$arch/objects" "$arch-$t/objects"
    cp "$arch/catalog.db" "$arch/NIGHTFOX_ARCHIVE" "$arch-$t/"
    mkdir -p "$arch-$t/tmp" "$arch-$t/locks"
  done
  mkdir -p "$m_bp" "$m_bc"
  "$BASELINE" --archive "$arch-base-pt" mount "$m_bp" 2>"$bench/mnt-base-passthrough.log" & pids+=($!)
  "$BASELINE" --archive "$arch-base-copy" mount --no-passthrough "$m_bc" 2>"$bench/mnt-base-copy.log" & pids+=($!)
  wait_mount "$m_bp"; wait_mount "$m_bc"
fi
pt_state=$(grep -o 'passthrough=[a-z]*' "$bench/mnt-passthrough.log" | tail -n1 || true)

mibps() { # file -> MiB/s of a dd read
  local t0 t1; t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; t1=$(now)
  echo "$big_mib / ($t1 - $t0)" | bc -l
}
fio_iops() { # file bs
  fio --name=r --filename="$1" --invalidate=0 --rw=randread --bs="$2" --ioengine=psync --runtime="$fio_s" --time_based \
    --size=$((big_mib << 20)) --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["iops"])'
}
walk_time() { # command... -> seconds
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc -l
}

declare -A files=([native]="$native_big" [passthrough]="$m_pt/$big_rel" [copy]="$m_cp/$big_rel" \
  [bindfs]="$m_bf/${big_hash:0:2}/${big_hash:2:2}/$big_hash" [base-passthrough]="$m_bp/$big_rel" \
  [base-copy]="$m_bc/$big_rel" [verified]="$m_vr/$big_rel" [encrypted]="$m_en/$enc_rel")
# The verified mount builds the clip's outboard at its first open (one read of the blob): done before any round.
head -c 1 "${files[verified]}" >/dev/null
cols=(native passthrough copy bindfs verified encrypted)
[ -n "${BASELINE:-}" ] && cols+=(base-passthrough base-copy)
# The order of the columns turns by one each round, so no column always runs first after another's reads.
order() { local k=$(( ($1 - 1) % ${#cols[@]} )); echo "${cols[@]:k}" "${cols[@]:0:k}"; }
declare -A r w
for round in $(seq 1 "$runs"); do
  for c in $(order "$round"); do
    f=${files[$c]}
    drop; r[seq_cold,$c]+=" $(mibps "$f")"
    # Warm: held in memory (see `hold`), read once more, then measured.
    hold "$f"; [ "$held" = locked ] || echo "note: $c: $held: warm rows may read from disk" >&2
    cat "$f" >/dev/null; r[seq_warm,$c]+=" $(mibps "$f")"
    r[r4k_warm,$c]+=" $(fio_iops "$f" 4k)"
    release
    drop; r[r4k_cold,$c]+=" $(fio_iops "$f" 4k)"
    drop; r[r64k_cold,$c]+=" $(fio_iops "$f" 64k)"
  done
  echo "reads: round $round/$runs done" >&2
done

# Walks: the 200 camera directories of the nightfox tree (couple/source/modern/camera) against the plain tree.
shopt -s nullglob
walk_targets() { # column -> paths
  case $1 in
    native) echo "$tree" ;;
    bindfs) echo "$m_bt" ;;
    passthrough) printf '%s\n' "$m_pt"/2025-01-01-* ;;
    copy) printf '%s\n' "$m_cp"/2025-01-01-* ;;
    verified) printf '%s\n' "$m_vr"/2025-01-01-* ;;
    base-passthrough) printf '%s\n' "$m_bp"/2025-01-01-* ;;
    base-copy) printf '%s\n' "$m_bc"/2025-01-01-* ;;
  esac
}
walk_runs=$runs; [ "${WALKS:-1}" = 0 ] && walk_runs=0
for round in $(seq 1 "$walk_runs"); do
  for c in $(order "$round"); do
    [ "$c" = encrypted ] && continue # the same tree code as the copy path: its walks say nothing new
    mapfile -t t < <(walk_targets "$c")
    for op in find "ls -lR" "du -s"; do
      drop; w["$op cold,$c"]+=" $(walk_time $op "${t[@]}")"
      w["$op warm,$c"]+=" $(walk_time $op "${t[@]}")"
    done
  done
  echo "walks: round $round/$runs done" >&2
done
nwalk=$(find "$tree" -type f | wc -l)

echo
echo "mount benchmark: ${big_mib} MiB file; walks over $nwalk files in $((nc * ncam)) directories; ${pt_state:-passthrough=unknown}"
echo "medians of $runs runs; ratios are medians of the per-round ratios to native (paired)"
echo "last column: the copy path against bindfs, paired per round, > 1 = the copy path is ahead"
printf '%-22s %12s %20s %20s %20s %14s\n' "read (higher=better)" native passthrough "copy path" bindfs "copy/bindfs"
for k in seq_cold seq_warm r4k_cold r4k_warm r64k_cold; do
  unit="MiB/s"; case $k in r*) unit="IOPS" ;; esac
  printf '%-22s' "$k ($unit)"
  for c in native passthrough copy bindfs; do
    v=$(echo "${r[$k,$c]}" | median)
    if [ "$c" = native ]; then printf ' %12.0f' "$v"; else printf ' %11.0f (%5.2fx)' "$v" "$(paired "${r[$k,$c]}" "${r[$k,native]}")"; fi
  done
  printf ' %13.2fx\n' "$(paired "${r[$k,copy]}" "${r[$k,bindfs]}")"
done
echo
[ "$walk_runs" = 0 ] || printf '%-22s %12s %20s %20s %20s %14s\n' "walk (s, lower=better)" "native" passthrough "copy path" "bindfs(tree)" "bindfs/copy"
[ "$walk_runs" = 0 ] || for op in find "ls -lR" "du -s"; do
  for temp in cold warm; do
    k="$op $temp"
    printf '%-22s' "$k"
    for c in native passthrough copy bindfs; do
      v=$(echo "${w[$k,$c]}" | median)
      if [ "$c" = native ]; then printf ' %12.3f' "$v"; else printf ' %11.3f (%5.2fx)' "$v" "$(paired "${w[$k,$c]}" "${w[$k,native]}")"; fi
    done
    printf ' %13.2fx\n' "$(paired "${w[$k,bindfs]}" "${w[$k,copy]}")"
  done
done
echo
echo "verified reads (mount --verify-reads, copy path) against the copy path, paired per round (> 1 = verified ahead)"
printf '%-22s %16s %16s\n' "" "verified" "verified/copy"
for k in seq_cold seq_warm r4k_cold r4k_warm r64k_cold; do
  printf '%-22s %16.0f %15.2fx\n' "$k" "$(echo "${r[$k,verified]}" | median)" "$(paired "${r[$k,verified]}" "${r[$k,copy]}")"
done
echo
echo "encrypted archive (init --encrypt, decrypted on the copy path) against the copy path, paired per round"
echo "(> 1 = encrypted ahead; target: sequential >= 0.7x)"
printf '%-22s %16s %16s   %s\n' "" "encrypted" "encrypted/copy" "per round (spread)"
for k in seq_cold seq_warm r4k_cold r4k_warm r64k_cold; do
  rr=$(ratios "${r[$k,encrypted]}" "${r[$k,copy]}")
  printf '%-22s %16.0f %15.2fx   %s(%s)\n' "$k" "$(echo "${r[$k,encrypted]}" | median)" \
    "$(paired "${r[$k,encrypted]}" "${r[$k,copy]}")" "$rr" "$(echo "$rr" | spread)"
done
if [ -n "${BASELINE:-}" ]; then
  echo
  echo "this build / baseline ($BASELINE), paired per round (reads: > 1 = this build is ahead; walks: < 1 = ahead)"
  printf '%-22s %16s %16s\n' "" passthrough "copy path"
  for k in seq_cold seq_warm r4k_cold r4k_warm r64k_cold; do
    printf '%-22s %15.2fx %15.2fx\n' "$k" "$(paired "${r[$k,passthrough]}" "${r[$k,base-passthrough]}")" \
      "$(paired "${r[$k,copy]}" "${r[$k,base-copy]}")"
  done
  for op in find "ls -lR" "du -s"; do
    for temp in cold warm; do
      k="$op $temp"
      printf '%-22s %15.2fx %15.2fx\n' "$k" "$(paired "${w[$k,passthrough]}" "${w[$k,base-passthrough]}")" \
        "$(paired "${w[$k,copy]}" "${w[$k,base-copy]}")"
    done
  done
fi
# What an idle mount costs: CPU time of each nightfox daemon over 10 s in which nothing is asked of it.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=("$(cpu_ticks "${pids[0]}")" "$(cpu_ticks "${pids[1]}")"); sleep 10
echo
printf 'idle daemon CPU over 10 s: passthrough mount %s ms, copy-path mount %s ms\n' \
  $(( ($(cpu_ticks "${pids[0]}") - t0[0]) * 1000 / $(getconf CLK_TCK) )) \
  $(( ($(cpu_ticks "${pids[1]}") - t0[1]) * 1000 / $(getconf CLK_TCK) ))
echo
echo "runs:"
for k in "${!r[@]}"; do echo "  read $k:${r[$k]}"; done | sort
for k in "${!w[@]}"; do echo "  walk $k:${w[$k]}"; done | sort
