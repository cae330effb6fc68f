# Helpers shared by the scripts/bench-*.sh benchmarks (sourced, not run).

# Flushes dirty data and, when root, drops the page cache so the next run reads from disk.
drop() { sync; if [ "$(id -u)" -eq 0 ]; then echo 3 >/proc/sys/vm/drop_caches; fi; }
# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# The median of whitespace-separated numbers on stdin.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The median of the per-run ratios of two whitespace-separated lists taken in the same rounds ("$1" / "$2"): a
# paired ratio, which cancels the drift of this VM between rounds.
paired() { paste -d/ <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') | bc -l | median; }
# Holds a file's pages in memory (mmap + mlock, by a helper process) until `release`. VMs of this kind page out
# idle page cache within seconds (DAMON pageout; measured: 11% of a just-read 1 GiB file gone after 2 s, 34% after
# 10 s), so a "warm" read must hold the file to measure the cache and not the disk. Where the file cannot be
# mapped or locked the helper says so and holds nothing.
hold_py='
import ctypes, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
if addr in (None, ctypes.c_void_p(-1).value):
    print("not mapped", flush=True)
else:
    print("locked" if libc.mlock(addr, size) == 0 else "not locked", flush=True)
sys.stdin.read()
'
hold() {
  coproc HOLDER { python3 -c "$hold_py" "$1"; }
  read -r -u "${HOLDER[0]}" held || held="no helper"
}
release() {
  if [ -n "${HOLDER[1]:-}" ]; then exec {HOLDER[1]}>&-; fi
  wait "${HOLDER_PID:-}" 2>/dev/null || true
}

# make_card DIR BIG BIG_MIB SMALL: a generated card (BIG random clips of BIG_MIB MiB under PRIVATE/M4ROOT/CLIP,
# SMALL stills of 256 KiB..1.75 MiB under DCIM), kept between runs (DIR/.complete marks a finished one).
make_card() {
  local card=$1 big=$2 big_mib=$3 small=$4
  [ -f "$card/.complete" ] && return 0
  rm -rf "$card"; mkdir -p "$card/PRIVATE/M4ROOT/CLIP" "$card/DCIM"
  for i in $(seq 1 "$big"); do head -c $((big_mib << 20)) /dev/urandom >"$card/PRIVATE/M4ROOT/CLIP/C000$i.MP4"; done
  python3 - "$card/DCIM" "$small" <<'PY'
import os, sys, random
d, n = sys.argv[1], int(sys.argv[2]); random.seed(3)
for i in range(n):
    sub = os.path.join(d, "%03dMEDIA" % (100 + i // 100)); os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "IMG_%04d.JPG" % i), "wb") as f: f.write(os.urandom(random.randint(256 << 10, 1792 << 10)))
PY
  touch "$card/.complete"
}
# The per-run ratios of two lists taken in the same rounds ("$1" / "$2"), two decimals, space-separated: the
# noise beside a `paired` median.
ratios() { paste -d/ <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') | bc -l | xargs printf '%.2f '; }
# "min..max" of whitespace-separated numbers, two decimals.
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f..%.2f", lo, hi}'; }
