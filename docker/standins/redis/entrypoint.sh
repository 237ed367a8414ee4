#!/bin/sh
# Debian's redis-server, run without a configuration file, starts in protected
# mode and refuses clients from other containers; the official image is built
# with protected mode off (the container network is the boundary). Do the
# same for `redis-server [CONFIG] [--option value ...]`; run anything else as
# it is.
set -e
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    "" | -*) exec redis-server --protected-mode no "$@" ;;
    *) config=$1; shift; exec redis-server "$config" --protected-mode no "$@" ;;
  esac
fi
exec "$@"
