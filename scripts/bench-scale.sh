#!/usr/bin/env bash
# Scale benchmark: an archive of COUPLES x CAMERAS x FILES catalogued files (default 200 x 10 x 500 = 1,000,000),
# built once by `nightfox generate` (catalogue rows in bulk through the catalog traits; the blobs are absent, as on
# an external disk that is not mounted), beside a plain directory tree of the same shape. Every figure is taken
# twice in the same run, first with the archive's own SQLite catalog, then with a Postgres catalog holding the same
# rows (a PostgreSQL 15 started for this run on 127.0.0.1 by scripts/lib-pg.sh, default settings; an archive
# directory of its own, made by `init --catalog postgres://...`), and printed side by side with the ratio
# Postgres / SQLite and the target, which is the same for both. Figures:
#   - mount ready (the mount point answers `ls /`), daemon RSS after start and after a full `find` (the nightfox
#     process only: the Postgres server's memory is not in it);
#   - `ls -l` of one camera folder cold, and `find` of the whole tree, each beside the same walk of the plain tree;
#   - `.by-hash`: a cold listing of its entry per blob (and RSS after it), a cold lookup of one name;
#   - `couple list`, `camera list`, `sessions`, `status`, `info`;
#   - `verify` finding every blob missing;
#   - the import of one more 1,000-file card into this archive against one into an empty archive (paired rounds,
#     order rotated; with Postgres: into a copy of its database against a fresh migrated one).
# "Cold": the page cache is dropped before (when root); the Postgres server keeps its own shared buffers.
# The Postgres rows are made once by `nightfox generate` into its database (PG_LOAD=copy: by `nightfox catalog
# copy` of the SQLite catalog), then VACUUM ANALYZEd (as autovacuum would in a while), and kept between runs as a
# pg_dump beside the SQLite archive, taken after the first run's measurements so that it holds verify's findings
# as the kept SQLite archive does (a later run restores it, `nightfox migrate`s it and ANALYZEs it again).
# Env: BENCH_DIR (target/bench), COUPLES (200), CAMERAS (10), FILES (500), RUNS (3), PG=0 (no Postgres arm),
# PG_LOAD (generate | copy), NIGHTFOX_BIN (a built binary to run instead of `cargo build --release`).
# shellcheck disable=SC2317 # the nightfox runners (nf_sqlite, at_big, ...) are called by name
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
. scripts/lib-pg.sh
scripts/setup.sh bench
if [ -n "${NIGHTFOX_BIN:-}" ]; then nf=$(realpath "$NIGHTFOX_BIN"); else
  cargo build --release -q
  nf="$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/nightfox"
fi
bench=$(realpath -m "${BENCH_DIR:-target/bench}")
nc=${COUPLES:-200}; ncam=${CAMERAS:-10}; nfiles=${FILES:-500}; runs=${RUNS:-3}
pg=${PG:-1}; pg_load=${PG_LOAD:-generate}
case $pg_load in generate | copy) ;; *) echo "bench-scale: PG_LOAD is generate or copy" >&2; exit 2 ;; esac
total=$((nc * ncam * nfiles))
shape="${nc}x${ncam}x${nfiles}"
arch="$bench/scale-archive-$shape"
tree="$bench/scale-tree-$shape"
pgdb=nfscale
parch="$bench/scale-pg-archive-$shape" # made again every run: its archive.toml names this run's port
pgdump="$bench/scale-pg-$shape.dump"
mkdir -p "$bench"

mp="$bench/mnt-scale"; mkdir -p "$mp"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for _ in $(seq 1 100); do mountpoint -q "$mp" 2>/dev/null || break; sleep 0.1; done
  mountpoint -q "$mp" 2>/dev/null && fusermount3 -u -z "$mp" 2>/dev/null || true
}
trap 'cleanup; pg_stop' EXIT
trap 'exit 130' INT TERM

gen_sqlite="cached"
if [ ! -f "$arch.complete" ]; then
  rm -rf "$arch" "$pgdump" "$pgdump.complete" # the two catalogs start from the same state
  "$nf" --archive "$arch" init >/dev/null
  echo "generating $total catalogued files in $arch" >&2
  t0=$(now); "$nf" --archive "$arch" generate --couples "$nc" --cameras "$ncam" --files "$nfiles" >/dev/null; t1=$(now)
  gen_sqlite=$(printf 'generated in %.1f s' "$(echo "$t1 - $t0" | bc)")
  echo "SQLite catalog $gen_sqlite" >&2
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

# nightfox on one catalog's archive (the runner each measurement is given).
nf_sqlite() { "$nf" --archive "$arch" "$@"; }
nf_pg() { pg_nf "$pgdb" --archive "$parch" "$@"; }
# An empty database NAME as pg_fresh_db makes it but not migrated (a restore fills it), or a copy of TEMPLATE.
pg_create_db() { # name [template]
  pg_sql postgres postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  pg_sql postgres postgres "CREATE DATABASE $1 OWNER nightfox_migrate${2:+ TEMPLATE $2 STRATEGY FILE_COPY}"
  pg_sql postgres postgres "REVOKE ALL ON DATABASE $1 FROM PUBLIC"
  pg_sql postgres postgres "GRANT CONNECT ON DATABASE $1 TO nightfox_app"
}
pg_migrate() { # db: `nightfox migrate` as in pg_fresh_db (the password through the environment)
  NIGHTFOX_DATABASE_MIGRATE_URL="postgres://nightfox_migrate:$PG_MIGRATE_PW@127.0.0.1:$PG_PORT/$1" \
    "$nf" migrate --dsn "postgres://nightfox_migrate@127.0.0.1:$PG_PORT/$1" --app-role nightfox_app >/dev/null
}
pg_init_archive() { # dir db
  rm -rf "$1"; pg_nf "$2" --archive "$1" init --catalog "$(pg_url "$2")" >/dev/null
}

gen_pg="not run (PG=0)"
pg_dump_due=0
if [ "$pg" = 1 ]; then
  pg_start "$bench/pg-scale"
  if [ -f "$pgdump.complete" ]; then
    t0=$(now)
    pg_create_db "$pgdb"
    PGPASSWORD=$PG_SUPER_PW "$PGBIN/pg_restore" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$pgdb" --exit-on-error \
      -j 2 "$pgdump"
    pg_sql nightfox_migrate "$pgdb" "REVOKE ALL ON SCHEMA public FROM PUBLIC"
    pg_migrate "$pgdb"
    pg_sql postgres "$pgdb" "VACUUM (ANALYZE)"
    t1=$(now)
    gen_pg=$(printf 'restored from %s in %.1f s' "${pgdump##*/}" "$(echo "$t1 - $t0" | bc)")
    pg_init_archive "$parch" "$pgdb"
  else
    rm -f "$pgdump"
    pg_fresh_db "$pgdb"
    echo "loading $total catalogued files into Postgres database $pgdb ($pg_load)" >&2
    t0=$(now)
    if [ "$pg_load" = generate ]; then
      pg_init_archive "$parch" "$pgdb"
      nf_pg generate --couples "$nc" --cameras "$ncam" --files "$nfiles" >/dev/null
    else
      pg_nf "$pgdb" --archive "$arch" catalog copy --to "$(pg_url "$pgdb")" >/dev/null
      pg_init_archive "$parch" "$pgdb"
    fi
    t1=$(now)
    pg_sql postgres "$pgdb" "VACUUM (ANALYZE)"
    t2=$(now)
    gen_pg=$(printf '%s in %.1f s (+ VACUUM ANALYZE %.1f s)' "$([ "$pg_load" = generate ] && echo generated || echo copied)" \
      "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)")
    echo "Postgres catalog $gen_pg" >&2
    pg_dump_due=1
  fi
fi

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Seconds a command takes (its output dropped); a failure is reported on stderr and listed for the summary.
fails="$bench/scale-failures.txt"; : >"$fails"
secs() {
  local t0 t1 rc=0; t0=$(now); "$@" >/dev/null 2>"$bench/scale-last.err" || rc=$?; t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "bench-scale: exit $rc from: $* -- $(tail -n1 "$bench/scale-last.err")" | tee -a "$fails" >&2
  fi
  echo "$t1 - $t0" | bc -l
}

runs_of() { printf '%.3f ' "$@"; } # per-run seconds, three decimals
declare -A R   # R[arm.figure]
cam="2020-01-01-gen-$(printf %05d $((nc / 2)))/source/modern/gen-cam000"
# Every figure but the import for one catalog: measure ARM RUNNER (RUNNER: nightfox with the archive given).
measure() {
  local arm=$1 run=$2 t0 t1 r wrapper
  local -a ls_nf=() ls_native=()
  echo "measuring the $arm catalog" >&2
  drop
  t0=$(now)
  "$run" mount "$mp" 2>"$bench/mnt-scale-$arm.log" & wrapper=$!
  for _ in $(seq 1 6000); do
    ls "$mp" >/dev/null 2>&1 && mountpoint -q "$mp" && break
    kill -0 "$wrapper" 2>/dev/null || break
    sleep 0.01
  done
  t1=$(now)
  # The runner is a shell function, so the daemon is the child of the background job.
  pid=$(pgrep -P "$wrapper" -x nightfox || echo "$wrapper")
  if ! mountpoint -q "$mp"; then
    echo "bench-scale: the $arm mount did not come up:" >&2; tail -n 20 "$bench/mnt-scale-$arm.log" >&2; exit 1
  fi
  R[$arm.ready]=$(echo "$t1 - $t0" | bc -l)
  R[$arm.rss_start]=$(rss_mb "$pid")
  for r in $(seq 1 "$runs"); do
    if [ $((r % 2)) -eq 0 ]; then
      drop; ls_nf+=("$(secs ls -l "$mp/$cam")"); drop; ls_native+=("$(secs ls -l "$tree/$cam")")
    else
      drop; ls_native+=("$(secs ls -l "$tree/$cam")"); drop; ls_nf+=("$(secs ls -l "$mp/$cam")")
    fi
  done
  R[$arm.ls]=$(echo "${ls_nf[*]}" | median)
  R[$arm.ls_native]=$(echo "${ls_native[*]}" | median)
  R[$arm.ls_runs]="$(runs_of "${ls_nf[@]}")| native $(runs_of "${ls_native[@]}")"
  # A full find once each (cold), the mount's first: its RSS after it is the second figure.
  drop; R[$arm.find]=$(secs find "$mp" -path "$mp/.by-hash" -prune -o -print)
  R[$arm.rss_find]=$(rss_mb "$pid")
  drop; R[$arm.find_native]=$(secs find "$tree" -print)
  R[$arm.find_x]=$(echo "${R[$arm.find]} / ${R[$arm.find_native]}" | bc -l)
  # `.by-hash` (an entry per blob): a listing streams in pages, a name is one lookup.
  drop; R[$arm.byhash_ls]=$(secs ls -f "$mp/.by-hash")
  R[$arm.byhash_n]=$(ls -f "$mp/.by-hash" | grep -vc '^\.\.\?$' || true)
  R[$arm.rss_byhash]=$(rss_mb "$pid")
  local h
  h=$(printf 'nightfox generated clip: couple %d, camera %d, file %d\n' $((nc / 3)) 0 7 | b3sum --no-names)
  drop; R[$arm.byhash_stat]=$(secs stat "$mp/.by-hash/$h.MP4")
  cleanup; pid=""; wait "$wrapper" 2>/dev/null || true
  R[$arm.couples]=$(secs "$run" couple list)
  R[$arm.cameras]=$(secs "$run" camera list)
  R[$arm.sessions]=$(secs "$run" sessions)
  R[$arm.status]=$(secs "$run" status)
  R[$arm.info]=$(secs "$run" info "$cam/C00007.MP4")
  local out="$bench/scale-verify-$arm.txt"
  t0=$(now); "$run" verify >"$out" 2>&1 || true; t1=$(now)
  R[$arm.verify]=$(echo "$t1 - $t0" | bc -l)
  R[$arm.verify_out]="$(wc -l <"$out") lines, last: $(tail -n1 "$out")"
}

measure sqlite nf_sqlite
if [ "$pg" = 1 ]; then
  measure postgres nf_pg
  # Kept after the measurements, verify's findings included, as the SQLite archive is kept.
  if [ "$pg_dump_due" = 1 ]; then
    PGPASSWORD=$PG_SUPER_PW "$PGBIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Fc -f "$pgdump" "$pgdb"
    touch "$pgdump.complete"
  fi
fi

# One more 1,000-file card: into a copy of this archive against into an empty one (paired, order rotated). With
# Postgres: a copy of its database (CREATE DATABASE ... TEMPLATE) against a fresh migrated one, each with an
# archive directory of its own.
card="$bench/scale-card"
if [ ! -d "$card" ]; then
  rm -rf "$card.tmp"; mkdir -p "$card.tmp/DCIM/100MEDIA"
  for i in $(seq -w 1 1000); do head -c 20000 /dev/urandom >"$card.tmp/DCIM/100MEDIA/IMG_$i.JPG"; done
  mv "$card.tmp" "$card"
fi
big="$bench/scale-import-big"; small="$bench/scale-import-empty"
pbig="$bench/scale-import-pg-big"; psmall="$bench/scale-import-pg-empty"
at_big() { "$nf" --archive "$big" "$@"; }
at_small() { "$nf" --archive "$small" "$@"; }
at_pbig() { pg_nf nfscale_big --archive "$pbig" "$@"; }
at_psmall() { pg_nf nfscale_empty --archive "$psmall" "$@"; }
import_into() { # runner -> seconds
  local c; c=$("$1" couple add --name "Card $RANDOM" --date 2026-01-01)
  drop; secs "$1" import --couple "$c" "$card"
}
declare -A imp
arms=(big small)
[ "$pg" = 1 ] && arms+=(pbig psmall)
for r in $(seq 1 "$runs"); do
  rm -rf "$big" "$small"; cp -a "$arch" "$big"; "$nf" --archive "$small" init >/dev/null
  if [ "$pg" = 1 ]; then
    pg_create_db nfscale_big "$pgdb"; pg_init_archive "$pbig" nfscale_big
    pg_fresh_db nfscale_empty; pg_init_archive "$psmall" nfscale_empty
  fi
  for k in $(seq 0 $((${#arms[@]} - 1))); do
    a=${arms[$(((k + r) % ${#arms[@]}))]}
    imp[$a]+=" $(import_into "at_$a")"
  done
done
rm -rf "$big" "$small" "$pbig" "$psmall"
if [ "$pg" = 1 ]; then
  pg_sql postgres postgres "DROP DATABASE IF EXISTS nfscale_big WITH (FORCE)"
  pg_sql postgres postgres "DROP DATABASE IF EXISTS nfscale_empty WITH (FORCE)"
fi
R[sqlite.import]=$(echo "${imp[big]}" | median)
R[sqlite.import_empty]=$(echo "${imp[small]}" | median)
R[sqlite.import_x]=$(paired "${imp[big]}" "${imp[small]}")
if [ "$pg" = 1 ]; then
  R[postgres.import]=$(echo "${imp[pbig]}" | median)
  R[postgres.import_empty]=$(echo "${imp[psmall]}" | median)
  R[postgres.import_x]=$(paired "${imp[pbig]}" "${imp[psmall]}")
fi

# One figure per line: SQLite, Postgres, Postgres / SQLite, the target (and which catalog missed it), a note.
fmt() { # value decimals unit
  if [ -z "$1" ]; then echo "-"; elif [ "$3" = x ]; then printf '%.*fx' "$2" "$1"; else printf '%.*f %s' "$2" "$1" "$3"; fi
}
row() { # label figure decimals unit op limit target-text [note]
  local label=$1 key=$2 dec=$3 unit=$4 op=$5 limit=$6 tt=$7 note=${8:-} s p ratio="" miss="" arm v
  s=${R[sqlite.$key]:-}; p=${R[postgres.$key]:-}
  if [ -n "$s" ] && [ -n "$p" ] && [ "$(echo "$s > 0" | bc -l)" = 1 ]; then
    ratio=$(printf '%.2fx' "$(echo "$p / $s" | bc -l)")
  fi
  if [ -n "$limit" ]; then
    for arm in sqlite postgres; do
      v=${R[$arm.$key]:-}; [ -n "$v" ] || continue
      [ "$(echo "$v $op $limit" | bc -l)" = 1 ] || miss+="${miss:+,}$arm"
    done
  fi
  printf '  %-42s %11s %11s %9s   %s\n' "$label" "$(fmt "$s" "$dec" "$unit")" "$(fmt "$p" "$dec" "$unit")" \
    "$ratio" "$tt${miss:+ MISSED: $miss}${tt:+${note:+, }}$note"
}
both() { # figure decimals [unit]: "sqlite-value | postgres-value" for a note
  local s=${R[sqlite.$1]:-} p=${R[postgres.$1]:-}
  printf '%.*f%s' "$2" "$s" "${3:+ $3}"; [ -z "$p" ] || printf ' | %.*f%s' "$2" "$p" "${3:+ $3}"
}

echo
echo "scale benchmark: $total catalogued files ($nc couples x $ncam cameras x $nfiles), blobs absent"
echo "  catalogs: SQLite $gen_sqlite; Postgres 15 (127.0.0.1) $gen_pg"
printf '  %-42s %11s %11s %9s   %s\n' "" "SQLite" "Postgres" "PG/SQLite" "target"
row "mount ready (ls / answers)" ready 2 s "<" 1 "< 1 s"
row "daemon RSS after start" rss_start 0 MB "<" 150 "< 150 MB"
row "daemon RSS after a full find" rss_find 0 MB "<" 300 "< 300 MB"
row "ls -l of a $nfiles-file camera folder, cold" ls 3 s "<" 0.05 "< 0.05 s" "native $(both ls_native 3 s)"
row "find of the whole tree, cold" find 2 s "" "" "" "native $(both find_native 2 s)"
row "  find / native find" find_x 2 x "<=" 3 "<= 3x"
row "ls -f of .by-hash, cold" byhash_ls 2 s "" "" "" "entries $(both byhash_n 0)"
row "  daemon RSS after it" rss_byhash 0 MB "" "" ""
row "stat of one .by-hash name, cold" byhash_stat 3 s "" "" ""
row "couple list" couples 3 s "<" 0.5 "< 0.5 s"
row "camera list" cameras 3 s "<" 0.5 "< 0.5 s"
row "sessions" sessions 3 s "<" 0.5 "< 0.5 s"
row "status" status 3 s "<" 0.5 "< 0.5 s"
row "info of one file" info 3 s "<" 0.5 "< 0.5 s"
row "verify, every blob missing" verify 2 s "<" 60 "< 60 s"
row "import of a 1,000-file card" import 2 s "" "" "" "into an empty archive $(both import_empty 2 s)"
row "  import / into an empty archive, paired" import_x 2 x "<=" 1.2 "<= 1.2x"
echo "  verify output, sqlite:   ${R[sqlite.verify_out]}"
[ "$pg" = 1 ] && echo "  verify output, postgres: ${R[postgres.verify_out]}"
# shellcheck disable=SC2086 # the per-run lists split into numbers
echo "  runs, sqlite:   ls -l mount ${R[sqlite.ls_runs]}; import big $(runs_of ${imp[big]})| empty $(runs_of ${imp[small]})"
# shellcheck disable=SC2086
[ "$pg" = 1 ] && echo "  runs, postgres: ls -l mount ${R[postgres.ls_runs]}; import big $(runs_of ${imp[pbig]})| empty $(runs_of ${imp[psmall]})"
if [ -s "$fails" ]; then
  echo "  FAILED commands ($(wc -l <"$fails")), see $fails:"; sed 's/^/    /' "$fails"
fi
exit 0
