#!/usr/bin/env bash
# NFS export benchmark, side by side in one run, inside a private network namespace (loopback only):
#   Nightfox: `nightfox export-nfs` of an archive (a 1 GiB clip and 20,000 small files in one couple);
#   reference: nfs-ganesha (VFS FSAL, with rpcbind) exporting the same archive's blob directory (objects/).
# Two rows, each read by libnfs's tools: `nfs-cp` of the 1 GiB clip (its blob on ganesha) into /dev/shm (nfs-cp
# cannot write to /dev/null; memory, so the destination costs both sides alike and little), page cache dropped first
# (root), and `nfs-ls -R` of the 20,000 files (the couple's folder; objects/ on ganesha). Prints the
# paired ratio ganesha time / nightfox time per row (throughput of nightfox relative to ganesha; target >= 0.9)
# with the per-round ratios as noise. Order alternates every round.
# Env: BENCH_DIR (target/bench), SMALL (20000), BIG_MIB (1024), RUNS (5), NIGHTFOX_BIN (a built binary).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
small=${SMALL:-20000}; big_mib=${BIG_MIB:-1024}; runs=${RUNS:-5}
arch="$bench/nfs-export-${small}x${big_mib}"

if [ -z "${NIGHTFOX_NETNS:-}" ]; then
  scripts/setup.sh bench network
  if [ -z "${NIGHTFOX_BIN:-}" ]; then
    cargo build --release -q
    NIGHTFOX_BIN="$(pwd)/target/release/nightfox"
  fi
  export NIGHTFOX_BIN
  nf=$NIGHTFOX_BIN
  if [ ! -f "$arch/.complete" ]; then
    echo "building the archive ($small small files, a $big_mib MiB clip) in $arch" >&2
    rm -rf "$arch"; mkdir -p "$arch/card/DCIM" "$arch/card/PRIVATE/M4ROOT/CLIP"
    head -c $((big_mib << 20)) /dev/urandom >"$arch/card/PRIVATE/M4ROOT/CLIP/C0001.MP4"
    python3 - "$arch/card/DCIM" "$small" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "%03dMEDIA" % (100 + i // 1000)); os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "IMG_%05d.JPG" % i), "wb") as f: f.write(os.urandom(2048) + i.to_bytes(4, "big"))
PY
    "$nf" --archive "$arch/archive" init >/dev/null
    c=$("$nf" --archive "$arch/archive" couple add --name Bench --date 2025-01-01)
    "$nf" --archive "$arch/archive" import --couple "$c" "$arch/card" >/dev/null
    rm -rf "$arch/card"
    echo "$c" >"$arch/couple"
    touch "$arch/.complete"
  fi
  # Everything else runs in a namespace with only `lo` (rpcbind cannot bind loopback-only otherwise).
  exec unshare --net env NIGHTFOX_NETNS=1 bash "$0" "$@"
fi

nf=$NIGHTFOX_BIN
ip link set lo up
couple=$(cat "$arch/couple")
work=$(mktemp -d "$bench/nfs-export-run.XXXXXX")
shm=$(mktemp -d /dev/shm/nightfox-bench.XXXXXX)
objects="$arch/archive/objects"
blob=$(find "$objects" -type f -size +$((big_mib - 1))M | head -1)
[ -n "$blob" ] || { echo "bench-nfs-export: the big clip's blob is not in $objects" >&2; exit 1; }
cat >"$work/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3; NFS_Port = 2049; }
NFSV4 { Graceless = true; }
EXPORT {
    Export_Id = 1;
    Path = $objects;
    Pseudo = $objects;
    Access_Type = RO;
    Squash = no_root_squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
CONF
rpcbind -w -f & rpcbind_pid=$!
ganesha.nfsd -F -f "$work/ganesha.conf" -L "$work/ganesha.log" -p "$work/ganesha.pid" & ganesha_pid=$!
port=20490
"$nf" --archive "$arch/archive" export-nfs --listen 127.0.0.1:$port 2>"$work/nightfox.log" & nightfox_pid=$!
cleanup() {
  kill -TERM "$nightfox_pid" "$ganesha_pid" "$rpcbind_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$nightfox_pid" 2>/dev/null || kill -0 "$ganesha_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$nightfox_pid" "$ganesha_pid" "$rpcbind_pid" 2>/dev/null || true
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
for _ in $(seq 1 100); do rpcinfo -p 127.0.0.1 2>/dev/null | grep -q mountd && break; sleep 0.1; done
for _ in $(seq 1 100); do grep -q "exporting" "$work/nightfox.log" && break; sleep 0.1; done
q="?nfsport=$port&mountport=$port&version=3"
nf_url() { echo "nfs://127.0.0.1/$1$q"; }
ga_url() { echo "nfs://127.0.0.1$1?version=3"; }
clip_path="$couple/$(nfs-ls -R "$(nf_url "$couple")" | awk '/C0001\.MP4$/ {print $NF; exit}')"
# Both serve what we expect before timing anything.
n_nf=$(nfs-ls -R "$(nf_url "$couple")" | grep -c '^-')
n_ga=$(nfs-ls -R "$(ga_url "$objects")" | grep -c '^-')
echo "files listed: nightfox $n_nf, ganesha $n_ga" >&2
cmp <(nfs-cat "$(nf_url "$clip_path")" | b3sum | cut -d' ' -f1) <(nfs-cat "$(ga_url "$blob")" | b3sum | cut -d' ' -f1)

declare -A times
timed() { # name command...
  local name=$1; shift
  drop
  local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now)
  times[$name]+=" $(echo "$t1 - $t0" | bc)"
}
for r in $(seq 1 "$runs"); do
  if [ $((r % 2)) -eq 1 ]; then order="nightfox ganesha"; else order="ganesha nightfox"; fi
  for who in $order; do
    if [ "$who" = nightfox ]; then
      timed cp_nightfox nfs-cp "$(nf_url "$clip_path")" "$shm/copy"; rm -f "$shm/copy"
      timed walk_nightfox nfs-ls -R "$(nf_url "$couple")"
    else
      timed cp_ganesha nfs-cp "$(ga_url "$blob")" "$shm/copy"; rm -f "$shm/copy"
      timed walk_ganesha nfs-ls -R "$(ga_url "$objects")"
    fi
  done
  echo "round $r/$runs ($order): cp ${times[cp_nightfox]##* } / ${times[cp_ganesha]##* } s, walk ${times[walk_nightfox]##* } / ${times[walk_ganesha]##* } s" >&2
done

echo
echo "NFS export benchmark: nfs-cp of a $big_mib MiB clip (cold cache), nfs-ls -R of $small files; median of $runs rounds"
for n in cp_nightfox cp_ganesha walk_nightfox walk_ganesha; do
  printf '%-14s %8.3f s   runs:%s\n' "$n" "$(echo "${times[$n]}" | median)" "${times[$n]}"
done
printf 'nfs-cp:  ganesha time / nightfox time = %.2f  (per round: %s; target >= 0.9)\n' \
  "$(paired "${times[cp_ganesha]}" "${times[cp_nightfox]}")" "$(ratios "${times[cp_ganesha]}" "${times[cp_nightfox]}")"
printf 'walk:    ganesha time / nightfox time = %.2f  (per round: %s; target >= 0.9)\n' \
  "$(paired "${times[walk_ganesha]}" "${times[walk_nightfox]}")" "$(ratios "${times[walk_ganesha]}" "${times[walk_nightfox]}")"
