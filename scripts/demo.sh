#!/usr/bin/env bash
# The demo: installs what is missing, builds, makes a demo archive from generated footage (a Sony card with XML
# sidecars, a GoPro card with proxies, a DV tape capture, a Super 8 reel scan, phone clips), imports it verified,
# and mounts it. On a terminal it stays mounted until Enter or Ctrl-C; otherwise it shows the tree and unmounts.
# With --s3 the blobs live in a bucket of a SeaweedFS started on 127.0.0.1 for the demo (stopped at the end).
# Usage: scripts/demo.sh [--s3] [DIR]   (default: ./demo)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
s3=0
if [ "${1:-}" = "--s3" ]; then
  s3=1
  shift
fi
scripts/setup.sh demo
[ "$s3" = 1 ] && scripts/setup.sh s3
cargo build --release
nf="$root/target/release/nightfox"

demo=$(realpath -m "${1:-$root/demo}")
footage="$demo/footage"
export NIGHTFOX_ARCHIVE="$demo/archive"
mnt="$demo/mnt"
if mountpoint -q "$mnt" 2>/dev/null || ! stat "$mnt" >/dev/null 2>&1; then
  fusermount3 -u -z "$mnt" 2>/dev/null || true
fi
rm -rf "$demo/archive" "$footage"
mkdir -p "$footage" "$mnt"

clip() { # clip OUT SECONDS PATTERN TONE_HZ [ffmpeg metadata args...]  (the tone makes every clip distinct)
  local out=$1 secs=$2 pat=$3 tone=$4
  shift 4
  mkdir -p "$(dirname "$out")"
  local fmt=mp4
  case "$out" in *.mov | *.MOV) fmt=mov ;; esac # make/model survive only in the mov muxer
  if command -v ffmpeg >/dev/null 2>&1; then
    ffmpeg -nostdin -loglevel error -y -f lavfi -i "$pat=size=640x360:rate=25" -f lavfi -i "sine=frequency=$tone" \
      -t "$secs" -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest -f "$fmt" "$@" "$out"
  else
    head -c $((secs * 400000)) /dev/urandom >"$out"
  fi
}

echo "== generating footage in $footage"
sony="$footage/sony-a/PRIVATE/M4ROOT/CLIP"
for i in 1 2 3; do
  clip "$sony/C000$i.MP4" 3 testsrc $((400 + i * 20))
  cat >"$sony/C000${i}M01.XML" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<NonRealTimeMeta xmlns="urn:schemas-professionalDisc:nonRealTimeMeta:ver.2.20">
  <Duration value="75"/>
  <TargetMaterial umidRef="060A2B340101010501010D43130000000000000000000000000000000000000$i"/>
  <Device manufacturer="Sony" modelName="ILCE-7SM3" serialNo="5012345"/>
</NonRealTimeMeta>
XML
done
gopro="$footage/gopro/DCIM/100GOPRO"
for i in 1 2; do
  clip "$gopro/GX01000$i.MP4" 2 smptebars $((600 + i * 20))
  clip "$gopro/GL01000$i.LRV" 2 smptebars $((700 + i * 20))
  head -c 4096 /dev/urandom >"$gopro/GX01000$i.THM"
done
clip "$footage/dv/tape01 - ceremony.mov" 4 rgbtestsrc 300
clip "$footage/super8/reel01.mov" 3 mandelbrot 0
clip "$footage/phone/IMG_0001.MOV" 2 testsrc2 880 -metadata make=Apple -metadata model="iPhone 15 Pro"
clip "$footage/late card/DCIM/100MEDIA/IMG_0002.MOV" 2 testsrc2 990 -metadata make=Apple -metadata model="iPhone 15 Pro"

echo "== archive in $NIGHTFOX_ARCHIVE"
weed_pid=""
stop_weed() {
  [ -n "$weed_pid" ] || return 0
  kill -TERM "$weed_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$weed_pid" 2>/dev/null || true
}
if [ "$s3" = 1 ]; then
  weed="$root/target/venv-s3/bin/weed"
  sw="$demo/seaweedfs"
  rm -rf "$sw"
  mkdir -p "$sw/data"
  export AWS_ACCESS_KEY_ID=nightfox-demo AWS_SECRET_ACCESS_KEY="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf '{"identities":[{"name":"demo","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$sw/s3.json"
  chmod 600 "$sw/s3.json"
  "$weed" mini -dir="$sw/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$sw/s3.json" -admin.ui=false \
    -webdav=false -master.telemetry=false -s3.port.iceberg=0 -s3.port.lance=0 -master.port=19433 -volume.port=19440 \
    -filer.port=18988 -s3.port=18433 -admin.port=23746 >"$sw/weed.log" 2>&1 &
  weed_pid=$!
  trap stop_weed EXIT
  made=0
  for _ in $(seq 1 60); do
    if echo "s3.bucket.create -name demo" | timeout 20 "$weed" shell -master=127.0.0.1:19433 2>&1 | grep -q "created bucket"; then
      made=1
      break
    fi
    sleep 1
  done
  [ "$made" = 1 ] || { echo "demo: SeaweedFS did not come up (see $sw/weed.log)" >&2; exit 1; }
  echo "== blobs in s3://demo/archive on SeaweedFS at 127.0.0.1:18433"
  "$nf" init --blobs "s3://demo/archive?endpoint=http://127.0.0.1:18433"
else
  "$nf" init
fi
couple=$("$nf" couple add --name "Julia & Sven" --date 2025-12-31)
sony_cam=$("$nf" camera add --name "Sony A7S III" --type modern --make Sony --model ILCE-7SM3 --serial 5012345)
gopro_cam=$("$nf" camera add --name "GoPro Hero 12" --type modern)
dv_cam=$("$nf" camera add --name "Dad's DV camcorder" --type dadcam)
s8_cam=$("$nf" camera add --name "Nizo Super 8" --type super8)
"$nf" import --couple "$couple" --camera "$sony_cam" "$footage/sony-a"
"$nf" import --couple "$couple" --camera "$gopro_cam" "$footage/gopro"
"$nf" import --couple "$couple" --type dadcam --camera "$dv_cam" "$footage/dv"
"$nf" import --couple "$couple" --type super8 --camera "$s8_cam" "$footage/super8"
"$nf" import --couple "$couple" "$footage/phone"
echo "== importing the Sony card again (nothing is copied twice)"
"$nf" import --couple "$couple" --camera "$sony_cam" "$footage/sony-a"
"$nf" sessions
"$nf" verify

echo "== mounting at $mnt"
"$nf" mount "$mnt" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u -z "$mnt" || true
  stop_weed
}
trap cleanup EXIT
for _ in $(seq 1 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "demo: the mount did not come up" >&2; exit 1; }
echo "== copying one more card into the mount's ingest folder with plain cp"
cp -r "$footage/late card" "$mnt/ingest/$couple/"
for _ in $(seq 1 100); do
  [ -n "$(find "$mnt/$couple" -name IMG_0002.MOV 2>/dev/null)" ] && break
  sleep 0.1
done
(cd "$mnt" && find . -path ./.by-hash -prune -o -print | sort)
ls -l "$mnt/$couple/source/modern/$sony_cam"
getfattr -d "$mnt/$couple/source/modern/$sony_cam/C0001.MP4" 2>/dev/null || true
if [ -t 0 ]; then
  echo "== mounted at $mnt: browse it, play from it. Press Enter (or Ctrl-C) to unmount."
  read -r _ || true
fi
echo "== demo done"
