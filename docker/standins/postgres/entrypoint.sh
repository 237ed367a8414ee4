#!/bin/bash
# The official image's first-start set-up, reduced to what compose.yaml uses:
# an empty $PGDATA gets a cluster whose superuser is $POSTGRES_USER (password
# $POSTGRES_PASSWORD, scram-sha-256 over TCP from anywhere) and a database
# $POSTGRES_DB; then `postgres` runs listening on every address.
set -euo pipefail
if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi
shift
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  [[ -n ${POSTGRES_PASSWORD:-} ]] || { echo "entrypoint: POSTGRES_PASSWORD is not set" >&2; exit 1; }
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [[ $db != postgres ]]; then
    # A server on the Unix socket only, for the set-up.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
    psql -v ON_ERROR_STOP=1 -q -U "$user" -d postgres -c "CREATE DATABASE \"$db\" OWNER \"$user\""
    pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  fi
  echo "entrypoint: initialised $PGDATA (user $user, database $db)" >&2
fi
exec postgres -c listen_addresses='*' "$@"
