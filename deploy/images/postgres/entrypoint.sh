#!/bin/bash
# First start on an empty PGDATA: initdb, then the init scripts against a server listening on its
# socket only (so health checks over TCP fail until it is really up); then PostgreSQL in our place.
set -euo pipefail
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  if [[ $auth != trust && -z ${POSTGRES_PASSWORD:-} ]]; then
    echo "postgres-entrypoint: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  pwopt=()
  [[ -n ${POSTGRES_PASSWORD:-} ]] && pwopt=(--pwfile="$pwfile")
  initdb -D "$PGDATA" -U "$user" "${pwopt[@]}" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host="$auth" >/dev/null
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$PGHOST" -w start
  if [[ $db != postgres ]]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
  fi
  for script in /docker-entrypoint-initdb.d/*.sql; do
    [[ -e $script ]] || continue
    echo "postgres-entrypoint: running $script"
    psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -q -f "$script"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres-entrypoint: initialised $PGDATA"
fi
if [[ ${1:-} == postgres ]]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGHOST" "$@"
fi
exec "$@"
