#!/usr/bin/env bash
# Small files: would keeping blobs under 64 KiB (sidecars, thumbnails) inside the catalog help? Issue 22 asked to
# measure it before building it. Two stores of the same sidecar-like set (XML 2-6 KiB, THM 8-32 KiB, SRT 16-60 KiB),
# side by side in one run, paired rounds with the order alternating:
#   files:  the blob store's layout, `objects/<2>/<2>/<hash>`, landed as an import lands small blobs (write in
#           tmp/, rename into place; one sync of the filesystem for the batch, not an fsync per file);
#   sqlite: one table (hash, bytes) in a WAL database with synchronous=NORMAL, as the catalog is opened, all rows in
#           one transaction (as finalize commits an import).
# For each: the time to land the set, the time to read it all back in random order from a cold page cache, and the
# inodes it takes. It also counts the S3 requests a remote store spends on the set (HEAD + PUT + verifying GET at
# import, HEAD + GET at a cold read; see src/blobs/s3.rs). Prints medians and paired ratios sqlite/files (lower =
# the catalog is faster).
# Env: BENCH_DIR (default target/bench), FILES (2000), RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
n=${FILES:-2000}; runs=${RUNS:-5}
work="$bench/small-files"
mkdir -p "$work"

py='
import hashlib, os, random, sqlite3, sys, time
mode, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(11)
kinds = [(2 << 10, 6 << 10), (8 << 10, 32 << 10), (16 << 10, 60 << 10)]
blobs = []
for i in range(n):
    lo, hi = kinds[i % 3]
    b = random.randbytes(random.randint(lo, hi))
    blobs.append((hashlib.blake2b(b, digest_size=32).hexdigest(), b))
if mode == "land-files":
    objects = os.path.join(root, "objects"); os.makedirs(objects)
    t = time.monotonic()
    tmp = os.path.join(root, "tmp"); os.makedirs(tmp)
    for h, b in blobs:
        d = os.path.join(objects, h[:2], h[2:4])
        os.makedirs(d, exist_ok=True)
        p = os.path.join(tmp, h)
        with open(p, "wb") as f:
            f.write(b)
        os.chmod(p, 0o444)
        os.rename(p, os.path.join(d, h))
    os.sync()
    print(time.monotonic() - t)
elif mode == "land-sqlite":
    os.makedirs(root)
    t = time.monotonic()
    c = sqlite3.connect(os.path.join(root, "catalog.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL")
    c.execute("CREATE TABLE small_blobs (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID")
    c.execute("BEGIN")
    c.executemany("INSERT INTO small_blobs VALUES (?, ?)", blobs)
    c.execute("COMMIT"); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()
    print(time.monotonic() - t)
else:
    order = [h for h, _ in blobs]; random.shuffle(order)
    total = 0
    t = time.monotonic()
    if mode == "read-files":
        for h in order:
            with open(os.path.join(root, "objects", h[:2], h[2:4], h), "rb") as f:
                total += len(f.read())
    else:
        c = sqlite3.connect("file:" + os.path.join(root, "catalog.db") + "?mode=ro", uri=True)
        for h in order:
            total += len(c.execute("SELECT bytes FROM small_blobs WHERE hash = ?", (h,)).fetchone()[0])
    print(time.monotonic() - t)
    assert total == sum(len(b) for _, b in blobs)
'
lf=""; ls_=""; rf=""; rs=""
for r in $(seq 1 "$runs"); do
  arms="files sqlite"; [ $((r % 2)) -eq 0 ] && arms="sqlite files"
  for arm in $arms; do
    rm -rf "$work/$arm"
    drop
    t=$(python3 -c "$py" "land-$arm" "$work/$arm" "$n")
    drop
    u=$(python3 -c "$py" "read-$arm" "$work/$arm" "$n")
    if [ "$arm" = files ]; then lf="$lf $t"; rf="$rf $u"; else ls_="$ls_ $t"; rs="$rs $u"; fi
  done
done
inodes_files=$(find "$work/files/objects" | wc -l)
inodes_sqlite=$(find "$work/sqlite" | wc -l)
bytes=$(du -sb "$work/files/objects" | cut -f1); bytes_db=$(du -sb "$work/sqlite" | cut -f1)
echo "small files: $n sidecar-like blobs (2-60 KiB), $runs paired rounds, order alternating"
printf '%-22s %10s %10s %22s\n' "" files sqlite "ratio sqlite/files"
printf '%-22s %10.3f %10.3f %8.2f (%s)\n' "land (s)" "$(echo "$lf" | median)" "$(echo "$ls_" | median)" \
  "$(paired "$ls_" "$lf")" "$(ratios "$ls_" "$lf")"
printf '%-22s %10.3f %10.3f %8.2f (%s)\n' "cold read, random (s)" "$(echo "$rf" | median)" "$(echo "$rs" | median)" \
  "$(paired "$rs" "$rf")" "$(ratios "$rs" "$rf")"
printf '%-22s %10s %10s\n' "inodes" "$inodes_files" "$inodes_sqlite"
printf '%-22s %10s %10s\n' "bytes on disk (du)" "$bytes" "$bytes_db"
printf '%-22s %10s %10s\n' "S3 requests, import" "$((3 * n))" 0
printf '%-22s %10s %10s\n' "S3 requests, cold read" "$((2 * n))" 0
