# A throwaway PostgreSQL 15 for the benchmarks that compare the Postgres catalog with SQLite (sourced by
# scripts/bench-import.sh and scripts/bench-scale.sh, not run). The server is initialised in a directory of its
# own, listens on 127.0.0.1 only (a free port, its socket in that directory), keeps the default durability
# (fsync and synchronous_commit on: the catalog commits as it would in a studio), and is stopped by its pid.
# Two login roles: nightfox_migrate (owns each database, runs `nightfox migrate`) and nightfox_app (the runtime
# role). Passwords are random, live only in this shell's variables and reach nightfox through its environment
# (NIGHTFOX_DATABASE_URL / NIGHTFOX_DATABASE_MIGRATE_URL), never through argv.
#
#   pg_start DIR          initdb into DIR/data (fresh) and start; sets PG_DIR, PG_PORT; stops itself on EXIT
#                         when the caller chains pg_stop into its trap (pg_start installs none itself)
#   pg_fresh_db NAME      (re)creates database NAME owned by nightfox_migrate and migrates it (schema + grants)
#   pg_url NAME           the catalog URL of NAME for `init --catalog` (no password)
#   pg_nf NAME ARGS...    runs "$nf" ARGS with NIGHTFOX_DATABASE_URL set for NAME
#   pg_stop               `pg_ctl -m fast stop`, then the postmaster killed by its pid if still there
# Env: PG_OPTS (extra `-c name=value` server settings), PGBIN (/usr/lib/postgresql/15/bin).

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_DIR=""
PG_PORT=""
PG_SUPER_PW=""
PG_MIGRATE_PW=""
PG_APP_PW=""

# Runs a server binary as the postgres user when root (initdb refuses root), as this user otherwise.
pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_pw() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'; }
pg_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# psql as ROLE on DB over TCP (the password through PGPASSWORD, which only psql sees), one statement per call:
# several statements in one -c would run in one transaction, and CREATE DATABASE refuses that.
pg_sql() { # role db sql
  local pw
  case $1 in postgres) pw=$PG_SUPER_PW ;; nightfox_migrate) pw=$PG_MIGRATE_PW ;; *) pw=$PG_APP_PW ;; esac
  PGPASSWORD=$pw PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$1" -d "$2" -c "$3"
}

pg_start() {
  [ -x "$PGBIN/postgres" ] || { echo "lib-pg: PostgreSQL 15 is not installed at $PGBIN (scripts/setup.sh bench)" >&2; return 1; }
  PG_DIR=$(realpath -m "$1")
  pg_stop_dir "$PG_DIR"
  rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
  PG_SUPER_PW=$(pg_pw); PG_MIGRATE_PW=$(pg_pw); PG_APP_PW=$(pg_pw)
  (umask 077; printf '%s' "$PG_SUPER_PW" >"$PG_DIR/pw")
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$PG_DIR"; fi
  pg_as "$PGBIN/initdb" -D "$PG_DIR/data" -A scram-sha-256 --pwfile="$PG_DIR/pw" -U postgres -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  rm -f "$PG_DIR/pw"
  local tries
  for tries in 1 2 3 4 5; do
    PG_PORT=$(pg_free_port)
    if pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR ${PG_OPTS:-}" -w -t 60 start >/dev/null 2>&1; then
      break
    fi
    PG_PORT=""
  done
  [ -n "$PG_PORT" ] || { echo "lib-pg: PostgreSQL did not start:" >&2; tail -n 20 "$PG_DIR/log" >&2; return 1; }
  pg_sql postgres postgres "CREATE ROLE nightfox_migrate LOGIN PASSWORD '$PG_MIGRATE_PW'"
  pg_sql postgres postgres "CREATE ROLE nightfox_app LOGIN PASSWORD '$PG_APP_PW'"
  echo "lib-pg: PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)" >&2
}

pg_fresh_db() {
  local db=$1
  pg_sql postgres postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  pg_sql postgres postgres "CREATE DATABASE $db OWNER nightfox_migrate"
  pg_sql postgres postgres "REVOKE ALL ON DATABASE $db FROM PUBLIC"
  pg_sql postgres postgres "GRANT CONNECT ON DATABASE $db TO nightfox_app"
  pg_sql nightfox_migrate "$db" "REVOKE ALL ON SCHEMA public FROM PUBLIC"
  NIGHTFOX_DATABASE_MIGRATE_URL="postgres://nightfox_migrate:$PG_MIGRATE_PW@127.0.0.1:$PG_PORT/$db" \
    "$nf" migrate --dsn "postgres://nightfox_migrate@127.0.0.1:$PG_PORT/$db" --app-role nightfox_app >/dev/null
}

pg_url() { echo "postgres://nightfox_app@127.0.0.1:$PG_PORT/$1"; }

pg_nf() {
  local db=$1; shift
  NIGHTFOX_DATABASE_URL="postgres://nightfox_app:$PG_APP_PW@127.0.0.1:$PG_PORT/$db" "$nf" "$@"
}

# The postmaster's pid of a data directory, while it runs.
pg_pid_of() { [ -f "$1/data/postmaster.pid" ] && head -n1 "$1/data/postmaster.pid"; }

# Stops a server left in DIR (by an earlier run that was killed), by its pid.
pg_stop_dir() {
  local pid; pid=$(pg_pid_of "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  pg_as "$PGBIN/pg_ctl" -D "$1/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  local _
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

pg_stop() {
  [ -n "$PG_DIR" ] || return 0
  pg_stop_dir "$PG_DIR"
  PG_PORT=""
}
