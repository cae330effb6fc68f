#!/usr/bin/env bash
# Network import benchmark on loopback, side by side in one run:
#   SMB: `nightfox source import` of a share against `smbclient` getting the same files (+ sync);
#   NFS: `nightfox source import` of an export against a plain nfs3_client read loop copying the same files
#        (examples/nfs_copy.rs, + fsync), both from the same cargo-nfs3-server process.
# Nightfox hashes inline, fsyncs, re-reads every copy from disk to verify and catalogues it; the references only
# copy. Prints throughput and the ratio nightfox / reference (target >= 0.9). Caches are dropped before each run
# when root. Env: BENCH_DIR (target/bench), NET_FILES (4), NET_FILE_MIB (512), RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench network
cargo build --release -q
cargo build --release -q --example nfs_copy
nf="$(pwd)/target/release/nightfox"
nfs_copy="$(pwd)/target/release/examples/nfs_copy"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
nfiles=${NET_FILES:-4}; mib=${NET_FILE_MIB:-512}; runs=${RUNS:-3}
share="$bench/net-share-${nfiles}x${mib}"
if [ ! -f "$bench/.net-share-${nfiles}x${mib}" ]; then
  rm -rf "$share"; mkdir -p "$share/card/CLIP"
  for i in $(seq 1 "$nfiles"); do head -c $((mib << 20)) /dev/urandom >"$share/card/CLIP/C000$i.MP4"; done
  touch "$bench/.net-share-${nfiles}x${mib}"
fi
total_mib=$((nfiles * mib))
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# smbd with a private config on loopback.
base=$(mktemp -d "$bench/smbd.XXXXXX")
smb_port=$(free_port)
mkdir -p "$base"/{private,lock,pid,state,cache,log,ncalrpc}
cat >"$base/smb.conf" <<CONF
[global]
    workgroup = WORKGROUP
    server role = standalone server
    security = user
    map to guest = Bad User
    smb ports = $smb_port
    interfaces = lo
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB2_02
    private dir = $base/private
    lock directory = $base/lock
    pid directory = $base/pid
    state directory = $base/state
    cache directory = $base/cache
    ncalrpc dir = $base/ncalrpc
    log file = $base/log/log.%m
    passdb backend = tdbsam:$base/private/passdb.tdb
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    usershare path =
[footage]
    path = $share
    read only = no
    guest ok = no
CONF
id smbtest >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin smbtest
printf 'benchpw\nbenchpw\n' | smbpasswd -c "$base/smb.conf" -a -s smbtest >/dev/null
smbd --foreground -s "$base/smb.conf" </dev/null >/dev/null 2>&1 &
smbd_pid=$!
nfs_port=$(free_port)
cargo-nfs3-server --path "$share" -i 127.0.0.1 -p "$nfs_port" -r --quiet </dev/null >/dev/null 2>&1 &
nfsd_pid=$!
cleanup() {
  kill -TERM "$smbd_pid" "$nfsd_pid" 2>/dev/null || true
  sleep 0.5
  kill -KILL -- "-$smbd_pid" 2>/dev/null || true
  kill -KILL "$nfsd_pid" 2>/dev/null || true
  rm -rf "$base" "$bench/net-dst"
}
trap cleanup EXIT
for _ in $(seq 1 75); do
  smbclient -p "$smb_port" //127.0.0.1/footage -U smbtest%benchpw -c ls >/dev/null 2>&1 && break
  sleep 0.2
done
for _ in $(seq 1 75); do (exec 3<>/dev/tcp/127.0.0.1/"$nfs_port") 2>/dev/null && break; sleep 0.2; done

dst="$bench/net-dst"
declare -A times
timed() { # name command...
  local name=$1; shift
  rm -rf "$dst"; mkdir -p "$dst"; drop
  local t0 t1; t0=$(now); "$@"; t1=$(now)
  times[$name]+=" $(echo "$t1 - $t0" | bc)"
}
prepare_archive() { # URL -> prints the source id
  "$nf" --archive "$dst/archive" init >/dev/null
  local c; c=$("$nf" --archive "$dst/archive" couple add --name Bench --date 2025-01-01)
  local id; id=$(echo benchpw | "$nf" --archive "$dst/archive" source add "$1" --couple "$c" --user smbtest --password-stdin)
  "$nf" --archive "$dst/archive" source test "$id" >/dev/null
  echo "$id"
}
nf_smb() { local id; id=$(prepare_archive "smb://127.0.0.1:$smb_port/footage"); drop; local t0 t1; t0=$(now); "$nf" --archive "$dst/archive" source import "$id" >/dev/null; t1=$(now); times[nightfox_smb]+=" $(echo "$t1 - $t0" | bc)"; }
nf_nfs() { local id; id=$(prepare_archive "nfs://127.0.0.1:$nfs_port/?export=/"); drop; local t0 t1; t0=$(now); "$nf" --archive "$dst/archive" source import "$id" >/dev/null; t1=$(now); times[nightfox_nfs]+=" $(echo "$t1 - $t0" | bc)"; }
ref_smb() { smbclient -p "$smb_port" //127.0.0.1/footage -U smbtest%benchpw -c "prompt OFF; recurse ON; lcd $dst; mget *" >/dev/null && sync; }
ref_nfs() { "$nfs_copy" 127.0.0.1 "$nfs_port" / "$dst" >/dev/null; }

for r in $(seq 1 "$runs"); do
  timed smbclient ref_smb
  rm -rf "$dst"; mkdir -p "$dst"; nf_smb
  timed nfs_copy ref_nfs
  rm -rf "$dst"; mkdir -p "$dst"; nf_nfs
  echo "round $r/$runs:${times[smbclient]##* } ${times[nightfox_smb]##* } ${times[nfs_copy]##* } ${times[nightfox_nfs]##* }" >&2
done

echo
echo "network benchmark: $nfiles files, $total_mib MiB, loopback, median of $runs runs"
for n in smbclient nightfox_smb nfs_copy nightfox_nfs; do
  m=$(echo "${times[$n]}" | median)
  printf '%-16s %8.2f s %8.0f MiB/s   runs:%s\n' "$n" "$m" "$(echo "$total_mib / $m" | bc -l)" "${times[$n]}"
done
ms=$(echo "${times[smbclient]}" | median); ns=$(echo "${times[nightfox_smb]}" | median)
mn=$(echo "${times[nfs_copy]}" | median); nn=$(echo "${times[nightfox_nfs]}" | median)
printf 'SMB: nightfox throughput / smbclient get = %.2f  (target >= 0.9)\n' "$(echo "$ms / $ns" | bc -l)"
printf 'NFS: nightfox throughput / plain copy    = %.2f  (target >= 0.9)\n' "$(echo "$mn / $nn" | bc -l)"
