#!/usr/bin/env bash
# Makes sure the images compose.yaml needs are there, on an engine that may
# reach no registry, from Debian's packages only:
#
#   debian:bookworm, debian:bookworm-slim   pulled, or else made with debootstrap
#                                           from the host's Debian mirror
#   redis:7.0-bookworm, postgres:15-bookworm pulled, or else stand-ins built
#                                           from docker/standins/ (Debian's
#                                           redis-server 7.0 and PostgreSQL 15)
#
#   eval "$(docker/offline-images.sh)"     # then docker-compose / docker compose
#   docker/offline-images.sh base          # only the debian images
#   docker/offline-images.sh standins      # only redis and postgres
#
# Prints the compose variables to use (REDLOCK_DOCKER_REDIS_IMAGE=...,
# REDLOCK_DOCKER_POSTGRES_IMAGE=...) on stdout, its progress on stderr.
# Images already on the engine are used as they are. The stand-ins get
# names of their own (redlock-standin/...), never the official ones.
#
# Environment: DOCKER_HOST as for docker; REDLOCK_DOCKER_PULL_TIMEOUT (20 s
# per pull; 0: no pulls), REDLOCK_DOCKER_BUILD_NETWORK (the network of the
# stand-ins' RUN steps: "default", or "host" on an engine started with
# --bridge=none), REDLOCK_DEBIAN_MIRROR (default: the host's apt sources),
# REDLOCK_DOCKER_CACHE (where the debootstrap tarball is kept between runs,
# default ~/.cache/redlock-docker; it is made again when older than
# REDLOCK_DOCKER_CACHE_DAYS, 7). debootstrap needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

pull_timeout=${REDLOCK_DOCKER_PULL_TIMEOUT:-20}
build_network=${REDLOCK_DOCKER_BUILD_NETWORK:-default}
cache=${REDLOCK_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redlock-docker}
cache_days=${REDLOCK_DOCKER_CACHE_DAYS:-7}
registry=1   # cleared by the first pull that fails: no more waiting on pulls
work=""
trap '[[ -z $work ]] || rm -rf "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

say() { echo "offline-images: $*" >&2; }

have() { docker image inspect "$1" >/dev/null 2>&1; }

# pull IMAGE: 0 when it came from a registry.
pull() {
  [[ $registry == 1 && $pull_timeout -gt 0 ]] || return 1
  say "pulling $1 (at most ${pull_timeout}s)"
  if timeout "$pull_timeout" docker pull -q "$1" >/dev/null 2>&1; then
    return 0
  fi
  say "cannot pull $1: no registry; making the images from Debian's packages"
  registry=0
  return 1
}

# The mirror of the host's own Debian sources (deb822 or one-line format).
debian_mirror() {
  if [[ -n ${REDLOCK_DEBIAN_MIRROR:-} ]]; then
    echo "$REDLOCK_DEBIAN_MIRROR"
    return
  fi
  local uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $uri && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# debian:bookworm from debootstrap (minbase), with the host's Debian apt
# sources and Acquire settings (proxy, validity) so that apt-get works in
# builds exactly as it does on the host. Tagged debian:bookworm-slim too.
make_debian() {
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  local arch tarball
  arch=$(dpkg --print-architecture)
  tarball=$cache/debian-bookworm-minbase-$arch.tar
  work=$(mktemp -d "${TMPDIR:-/tmp}/redlock-debian.XXXXXX")
  mkdir -p "$cache"
  if [[ -s $tarball ]] && [[ -z $(find "$tarball" -mtime "+$cache_days" 2>/dev/null) ]]; then
    say "debian:bookworm from the cached $tarball"
  else
    local mirror
    mirror=$(debian_mirror)
    say "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
    if ! debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
      tail -n 20 "$work/debootstrap.log" >&2
      say "debootstrap failed"
      exit 1
    fi
    # What the official image leaves out: downloaded packages and lists, the
    # host name, and services starting inside builds.
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* \
      "$work/rootfs/etc/hostname" "$work/rootfs/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$work/rootfs/usr/sbin/policy-rc.d"
    tar --numeric-owner -C "$work/rootfs" -cf "$tarball.new" .
    mv "$tarball.new" "$tarball"
    rm -rf "$work/rootfs"
  fi
  # The host's apt set-up goes in at import time, not into the cache.
  mkdir -p "$work/rootfs"
  tar --numeric-owner -C "$work/rootfs" -xf "$tarball"
  local apt=$work/rootfs/etc/apt
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    rm -f "$apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$apt/sources.list.d/"
  elif [[ -r /etc/apt/sources.list ]]; then
    grep -E '^deb .*(debian|bookworm)' /etc/apt/sources.list >"$apt/sources.list" || true
  fi
  local conf
  for conf in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [[ -f $conf ]] && grep -qE '^[[:space:]]*Acquire' "$conf" && cp "$conf" "$apt/apt.conf.d/" || true
  done
  tar --numeric-owner -C "$work/rootfs" -c . |
    docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - debian:bookworm >/dev/null
  docker tag debian:bookworm debian:bookworm-slim
  say "made debian:bookworm and debian:bookworm-slim"
}

# standin NAME OFFICIAL: sets `image` to the image to use.
standin() {
  local name=$1 official=$2 tag=redlock-standin/$1:${2#*:}
  image=$official
  have "$official" && return
  image=$tag
  have "$tag" && return
  image=$official
  pull "$official" && return
  image=$tag
  say "building $tag from docker/standins/$name (Debian's packages)"
  docker build -q --network "$build_network" -t "$tag" "$here/standins/$name" >/dev/null
}

what=${1:-all}
case $what in
  all | base | standins) ;;
  *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
if [[ $what != standins ]] && { ! have debian:bookworm || ! have debian:bookworm-slim; }; then
  if pull debian:bookworm && pull debian:bookworm-slim; then
    :
  else
    make_debian
  fi
fi
if [[ $what != base ]]; then
  # The stand-ins are FROM debian:bookworm-slim.
  have debian:bookworm-slim || { say "debian:bookworm-slim is missing: run $0 base first"; exit 1; }
  image=""
  standin redis redis:7.0-bookworm
  echo "REDLOCK_DOCKER_REDIS_IMAGE=$image"
  standin postgres postgres:15-bookworm
  echo "REDLOCK_DOCKER_POSTGRES_IMAGE=$image"
fi
