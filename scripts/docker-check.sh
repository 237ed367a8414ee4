#!/usr/bin/env bash
# Brings up docker/compose.yaml's stack (5 lock nodes, PostgreSQL, 3 chatroomd
# replicas; then the TLS nodes and the Redis Cluster) and proves it, on a
# Debian 12 machine with or without Docker and with or without a registry:
#
#   1. Docker from Debian's packages if missing (docker.io, docker-compose,
#      debootstrap); a Docker engine of its own (data, sockets and pid file in a
#      temporary directory) if none answers; base and stand-in images made from
#      Debian's packages when they cannot be pulled (docker/offline-images.sh);
#   2. the image built, the stack up and healthy on free host ports;
#   3. the chatroom create race across the replicas through their published
#      ports: exactly one 201 (tests/docker/race.py), one room, one outbox
#      event, the creator's fence recorded;
#   4. a lock node killed: the race again, a new client while its name does
#      not resolve, and the node back with its keys (AOF);
#   5. two lock nodes restarted in the other order, so that their addresses
#      swap: the race again, fences still growing, and each node name reaching
#      the container of that name (a node stopped by name is the one the
#      replicas see down);
#   6. redlock-bench against the 5 containers, in the stack's network (JSON
#      lines in build/docker-check/bench-stack.jsonl);
#   7. profile tls: 5 TLS-only nodes healthy; a lock taken and released
#      with the demo CA and client certificate, refused (exit 3, certificate
#      verification) with another CA; bench-tls (bench-tls.jsonl);
#   8. profile cluster: the Redis Cluster created; a lock with a fence taken
#      and released on cluster://redis-c1:6379,redis-c2:6379, and `status`
#      showing its 3 shards;
#   9. `down -v` of every profile, and the engine stopped if this script
#      started it.
#
#   scripts/docker-check.sh
#
# Results and logs: build/docker-check/ (summary.txt, bench-stack.jsonl,
# bench-tls.jsonl, the build and engine logs, the containers' logs on failure). Exit status 0 when
# every check passed, 1 when one failed (each is listed at the end), 2 when
# the stack could not be set up. Bounded: every wait has a timeout, and the
# whole run REDLOCK_DOCKER_CHECK_TIMEOUT seconds (1800). Environment:
# REDLOCK_DOCKER_COMPOSE ("docker-compose" or "docker compose"; default: the
# first found), REDLOCK_DOCKER_BENCH_SECONDS (5), and those of
# docker/offline-images.sh. Needs root (or sudo) to install packages and to
# start an engine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ -z ${REDLOCK_DOCKER_CHECK_INNER:-} ]]; then
  export REDLOCK_DOCKER_CHECK_INNER=1
  exec timeout -k 180 "${REDLOCK_DOCKER_CHECK_TIMEOUT:-1800}" "$0" "$@"
fi

# Debian's docker client before any other (a different `docker` may be in
# /usr/local/bin); dockerd and docker-proxy are in /usr/sbin.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
out=$root/build/docker-check
mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.jsonl "$out"/summary.txt
# Short: the engine's sockets live under it (a Unix socket path has 108 bytes).
tmp=$(mktemp -d /tmp/rldc.XXXXXX)
project=redlock-check
started_engine=0
stack_up=0
standins_pid=""
child=""
t0=$(date +%s)
passed=()
failed=()

elapsed() { echo $(($(date +%s) - t0)); }
say() { echo "docker-check [$(elapsed) s]: $*" >&2; }
pass() { passed+=("$*"); say "PASS $*"; }
fail() { failed+=("$*"); say "FAIL $*"; }
# bounded SECONDS COMMAND...: runs it with a timeout, in the background so
# that a signal to this script is handled at once (bash runs traps only
# between foreground commands); the EXIT trap stops it.
bounded() {
  local secs=$1 rc=0
  shift
  timeout "$secs" "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
# A step without which nothing after it means anything.
fatal() {
  say "FATAL $*"
  failed+=("$*")
  exit 2
}

stop_engine() {
  local pid
  pid=$(cat "$tmp/docker.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # What a killed engine may leave mounted under its directories.
  grep -o " $tmp/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [[ -z $standins_pid ]] || kill "$standins_pid" 2>/dev/null
  [[ -z $child ]] || { kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; }
  if [[ $stack_up == 1 ]]; then
    if [[ $rc != 0 ]]; then
      timeout 60 "${compose[@]}" "${all_profiles[@]}" logs --no-color >"$out/containers.log" 2>&1
    fi
    timeout 120 "${compose[@]}" "${all_profiles[@]}" down -v --remove-orphans \
      >"$out/down.log" 2>&1 || say "down -v failed: see $out/down.log"
  fi
  [[ $started_engine == 1 ]] && stop_engine
  rm -rf "$tmp"
  {
    echo "docker-check: $(elapsed) s, ${#passed[@]} passed, ${#failed[@]} failed"
    for p in "${passed[@]}"; do echo "  PASS $p"; done
    for f in "${failed[@]}"; do echo "  FAIL $f"; done
  } | tee "$out/summary.txt" >&2
  if [[ $rc == 0 && ${#failed[@]} -gt 0 ]]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'failed+=("line $LINENO: $BASH_COMMAND exited with $?")' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || fatal "needs root or sudo (packages, the engine)"
  sudo="sudo"
fi

# --- 1. Docker -----------------------------------------------------------------
missing=()
[[ -x /usr/bin/docker && -x /usr/sbin/dockerd ]] || missing+=(docker.io)
if [[ -z ${REDLOCK_DOCKER_COMPOSE:-} ]] && ! command -v docker-compose >/dev/null &&
  ! docker compose version >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  # The package's own docker service is not wanted (nor possible without an
  # init system): this script starts the engine it needs.
  policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    policy=1
  fi
  bounded 300 $sudo apt-get update -qq >"$out/apt.log" 2>&1 &&
    bounded 600 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$out/apt.log" 2>&1 ||
    { [[ $policy == 1 ]] && $sudo rm -f /usr/sbin/policy-rc.d; tail -n 20 "$out/apt.log" >&2; fatal "apt-get install ${missing[*]}"; }
  [[ $policy == 1 ]] && $sudo rm -f /usr/sbin/policy-rc.d
  hash -r   # docker was looked up before: in /usr/local/bin, maybe
fi
if [[ -n ${REDLOCK_DOCKER_COMPOSE:-} ]]; then
  read -r -a compose_cmd <<<"$REDLOCK_DOCKER_COMPOSE"
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  compose_cmd=(docker compose)
fi
compose=("${compose_cmd[@]}" -p "$project" -f "$root/docker/compose.yaml")
# Every profile: logs and `down -v` must reach every container and volume.
all_profiles=(--profile chatroom --profile bench --profile tls --profile bench-tls --profile cluster)
say "docker: $(command -v docker), $(docker --version); compose: $("${compose_cmd[@]}" version --short 2>/dev/null || "${compose_cmd[@]}" version | head -n1)"

# An engine: the one that answers, or one of our own.
if timeout 10 docker version >/dev/null 2>&1; then
  say "using the running engine (${DOCKER_HOST:-default socket})"
else
  say "no engine answers: starting one in $tmp"
  mkdir -p "$tmp/data" "$tmp/exec"
  # No default bridge, no iptables: containers reach each other on the stack's
  # own network and the host through published ports (docker-proxy), and
  # nothing else.
  $sudo dockerd --storage-driver=overlay2 --iptables=false --ip-masq=false --bridge=none \
    --data-root "$tmp/data" --exec-root "$tmp/exec" -H "unix://$tmp/docker.sock" \
    --pidfile "$tmp/docker.pid" >"$out/dockerd.log" 2>&1 &
  started_engine=1
  export DOCKER_HOST=unix://$tmp/docker.sock
  for _ in $(seq 60); do
    timeout 5 docker version >/dev/null 2>&1 && break
    sleep 1
  done
  timeout 5 docker version >/dev/null 2>&1 || { tail -n 20 "$out/dockerd.log" >&2; fatal "the engine did not start (dockerd.log)"; }
fi
# Builds run their RUN steps on the default bridge; an engine without one
# (--bridge=none) needs the host's network for apt-get.
if [[ -z ${REDLOCK_DOCKER_BUILD_NETWORK:-} ]]; then
  if docker network inspect bridge >/dev/null 2>&1; then
    export REDLOCK_DOCKER_BUILD_NETWORK=default
  else
    export REDLOCK_DOCKER_BUILD_NETWORK=host
  fi
fi
pass "engine up ($(docker version -f '{{.Server.Version}}'), builds on network $REDLOCK_DOCKER_BUILD_NETWORK) at $(elapsed) s"

bounded 600 docker/offline-images.sh base 2>"$out/images.log" ||
  { tail -n 20 "$out/images.log" >&2; fatal "debian:bookworm (images.log)"; }
pass "debian:bookworm at $(elapsed) s"

# --- 2. build and up -----------------------------------------------------------
# The stand-ins (if they are needed) and the tools image at once: the one
# mostly downloads and unpacks, the other compiles.
timeout 900 docker/offline-images.sh standins >"$tmp/standins.env" 2>>"$out/images.log" &
standins_pid=$!
export REDLOCK_DOCKER_IMAGE=redlock/tools:check
# BuildKit where the client has it (compose 1.29 hands the build to `docker
# build`); the root's .dockerignore applies either way.
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
build_start=$(date +%s)
bounded 1200 "${compose[@]}" --profile chatroom build chatroomd-1 >"$out/build.log" 2>&1 ||
  { tail -n 30 "$out/build.log" >&2; fatal "image build (build.log)"; }
# The whole context, as the builder counted it (BuildKit may send it in parts).
context=$(grep -oE '(transferring context|Sending build context to Docker daemon):? +[0-9.]+ ?[kMG]?B' "$out/build.log" |
  grep -oE '[0-9.]+ ?[kMG]?B$' | sort -h | tail -n1 || true)
pass "image $REDLOCK_DOCKER_IMAGE built in $(($(date +%s) - build_start)) s (context ${context:-?})"
wait "$standins_pid" || { tail -n 20 "$out/images.log" >&2; fatal "the Redis and PostgreSQL images (images.log)"; }
standins_pid=""
cat "$out/images.log" >&2
while IFS='=' read -r k v; do export "$k=$v"; done <"$tmp/standins.env"
pass "images: $REDLOCK_DOCKER_REDIS_IMAGE, $REDLOCK_DOCKER_POSTGRES_IMAGE at $(elapsed) s"
for tool in chatroomd chatroom-race redlock redlock-cluster redlock-bench redis-server redis-benchmark redis-cli openssl; do
  docker run --rm --entrypoint sh "$REDLOCK_DOCKER_IMAGE" -c "command -v $tool" >/dev/null 2>&1 ||
    fail "the image lacks $tool"
done
user=$(docker run --rm "$REDLOCK_DOCKER_IMAGE" id -u)
if [[ $user != 0 ]]; then
  pass "the image runs as uid $user and has every tool it ships and what they need"
else
  fail "the image runs as root"
fi

# Free host ports for the 5 nodes, 3 replicas and 5 TLS nodes (another stack
# or a local cluster may hold the defaults).
read -r -a ports <<<"$(python3 - <<'EOF'
import socket
found, port = [], 17001
while len(found) < 13:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        found.append(port)
    except OSError:
        pass
    finally:
        s.close()
    port += 1
print(*found)
EOF
)"
for i in 1 2 3 4 5; do export "REDLOCK_DOCKER_NODE${i}_PORT=${ports[i - 1]}"; done
for i in 1 2 3; do export "REDLOCK_DOCKER_CHATROOMD${i}_PORT=${ports[i + 4]}"; done
for i in 1 2 3 4 5; do export "REDLOCK_DOCKER_TLS_NODE${i}_PORT=${ports[i + 7]}"; done
export REDLOCK_DOCKER_BIND=127.0.0.1 REDLOCK_DOCKER_CREATE_DELAY_MS=20
urls=("http://127.0.0.1:${ports[5]}" "http://127.0.0.1:${ports[6]}" "http://127.0.0.1:${ports[7]}")

# Leftovers of an interrupted run on a shared engine.
timeout 120 "${compose[@]}" "${all_profiles[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
stack_up=1
up_start=$(date +%s)
bounded 300 "${compose[@]}" --profile chatroom up -d >"$out/up.log" 2>&1 ||
  { tail -n 30 "$out/up.log" >&2; fatal "up (up.log)"; }

# The container of a service, running or not (`ps -q` differs between
# Compose versions).
container() {
  docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" | head -n1
}
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(container "$1")" 2>/dev/null; }
# wait_healthy SECONDS SERVICE...
wait_healthy() {
  local deadline=$(($(date +%s) + $1)) s
  shift
  for s in "$@"; do
    until [[ $(health "$s") == healthy ]]; do
      [[ $(date +%s) -lt $deadline ]] || { say "$s is $(health "$s")"; return 1; }
      sleep 0.5
    done
  done
}
services=(redis-1 redis-2 redis-3 redis-4 redis-5 postgres chatroomd-1 chatroomd-2 chatroomd-3)
wait_healthy 120 "${services[@]}" || fatal "the stack did not become healthy"
pass "stack up, every service healthy, in $(($(date +%s) - up_start)) s (nodes on ${ports[*]:0:5}, replicas on ${ports[*]:5:3})"

# --- helpers for the checks ----------------------------------------------------
# The fencing counter's key of a resource (docs/deployment.md, "Keys and
# channels"; for names without '{', '}' or '%', whose tag is the name).
fence_key() { printf 'redlock:{%s}:fence:%s' "$1" "$1"; }
redis() { # redis SERVICE ARGS...: redis-cli inside that node's container
  local s=$1
  shift
  timeout 10 docker exec "$(container "$s")" redis-cli "$@"
}
sql() { timeout 20 "${compose[@]}" exec -T postgres psql -U chatroom -d chatroom -At -c "$1"; }
nodes_arg=redis-1:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379
# cli ARGS...: the redlock command, a new process on the stack's network.
cli() {
  timeout 60 "${compose[@]}" run --rm --no-deps -T bench \
    redlock --nodes "$nodes_arg" --restart-grace 0s --json "$@"
}
# metric REPLICA_URL NAME NODE: the value of NAME{node="NODE:6379"}.
metric() {
  python3 - "$@" <<'EOF'
import sys, urllib.request
url, name, node = sys.argv[1:]
key = name + '{node="' + node + ':6379"} '
for line in urllib.request.urlopen(url + "/metrics", timeout=10).read().decode().splitlines():
    if line.startswith(key):
        print(line.split()[-1])
        break
else:
    print("missing")
EOF
}
# race ROOM WHAT: one race; checks the answers and the store.
race() {
  local room=$1 what=$2 result
  if ! result=$(timeout 120 python3 tests/docker/race.py --name "$room" --requests 60 \
    --concurrency 30 "${urls[@]}" 2>&1); then
    fail "$what: race on $room: $result"
    return
  fi
  echo "$result" >>"$out/races.jsonl"
  local verdict
  verdict=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
s = r["status"]
bad = {k: v for k, v in s.items() if k not in ("200", "201", "503")}
problems = []
if s.get("201", 0) != 1: problems.append("%d answers 201" % s.get("201", 0))
if bad: problems.append("other answers %s" % bad)
if r["unique_conflicts"]: problems.append("%g inserts hit the UNIQUE constraint" % r["unique_conflicts"])
print("; ".join(problems) or "ok: 201 x1, 200 x%d, 503 x%d in %.2f s" % (s.get("200", 0), s.get("503", 0), r["seconds"]))
' "$result")
  local rooms msgs events fence event_fence
  rooms=$(sql "SELECT count(*) FROM rooms WHERE name = '$room'") || rooms="?"
  msgs=$(sql "SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id WHERE r.name = '$room' AND m.kind = 'system'") || msgs="?"
  events=$(sql "SELECT count(*) FROM events WHERE room_name = '$room' AND kind = 'room_created'") || events="?"
  fence=$(sql "SELECT fence FROM fences WHERE resource = 'chatroom:$room'") || fence=""
  event_fence=$(sql "SELECT payload FROM events WHERE room_name = '$room'" | grep -oE '"fence":[0-9]+' | cut -d: -f2) || event_fence=""
  if [[ $verdict == ok* && $rooms == 1 && $msgs == 1 && $events == 1 && ${fence:-0} -gt 0 && $fence == "$event_fence" ]]; then
    pass "$what: race on $room: ${verdict#ok: }; 1 room, 1 message, 1 outbox event, creator's fence $fence recorded"
  else
    fail "$what: race on $room: $verdict; rooms $rooms, messages $msgs, events $events, fence '${fence}' (event's '${event_fence}')"
  fi
}
# probe WHAT: a new client takes and releases docker-check:fence; sets `fence`.
fence=0
probe() {
  local what=$1 got token previous=$fence
  if ! got=$(cli acquire docker-check:fence --ttl 5s 2>&1) || [[ $got != *'"fence":'* ]]; then
    fail "$what: a new client could not take a lock: $(echo "$got" | tail -n 2 | tr '\n' ' ')(a name that does not resolve must count as a node down, not fail the client)"
    return
  fi
  fence=$(echo "$got" | grep -oE '"fence":[0-9]+' | cut -d: -f2)
  token=$(echo "$got" | grep -oE '"token":"[0-9a-f]+"' | cut -d'"' -f4)
  cli release docker-check:fence "$token" >/dev/null 2>&1 || true
  if [[ $fence -gt $previous ]]; then
    pass "$what: a new client's lock has fence $fence (> $previous)"
  else
    fail "$what: fence $fence after $previous: fences must grow"
  fi
}
# wait_metric SECONDS NAME NODE VALUE: every replica reports it.
wait_metric() {
  local deadline=$(($(date +%s) + $1)) url v
  for url in "${urls[@]}"; do
    while v=$(metric "$url" "$2" "$3"); [[ $v != "$4" ]]; do
      [[ $(date +%s) -lt $deadline ]] || { echo "$url: $2{node=\"$3:6379\"} is $v, not $4"; return 1; }
      sleep 0.5
    done
  done
}
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container "$1")"; }

# --- 3. the race, all nodes up -------------------------------------------------
race room-all-up "all 5 nodes up"
probe "all 5 nodes up"

# --- 4. a lock node killed -----------------------------------------------------
before=$(redis redis-2 GET "$(fence_key docker-check:fence)") || before=""
timeout 30 docker kill "$(container redis-2)" >/dev/null
race room-one-killed "redis-2 killed"
# A client started now meets a name that does not resolve (a stopped
# container leaves the stack's DNS): one node down, not a failed start.
probe "redis-2 killed"
timeout 60 "${compose[@]}" start redis-2 >/dev/null 2>&1
if wait_healthy 60 redis-2; then
  after=$(redis redis-2 GET "$(fence_key docker-check:fence)") || after=""
  if [[ -n $before && $after == "$before" ]]; then
    pass "redis-2 restarted with its keys (fence counter $after kept by the AOF)"
  else
    fail "redis-2 restarted without its keys: fence counter '$after', was '$before'"
  fi
else
  fail "redis-2 did not come back healthy"
fi
if msg=$(wait_metric 30 redlock_node_connected redis-2 1); then
  pass "every replica reconnected to redis-2"
else
  fail "redis-2 back: $msg"
fi
probe "redis-2 back"

# --- 5. two lock nodes restarted in the other order: their addresses swap ------
ip3=$(ip_of redis-3)
ip4=$(ip_of redis-4)
timeout 60 "${compose[@]}" stop -t 5 redis-3 redis-4 >/dev/null 2>&1
# The engine hands out the lowest free address: the node that had the higher
# one starts first and takes the other's.
if [[ $(printf '%s\n' "$ip3" "$ip4" | sort -V | head -n1) == "$ip3" ]]; then order=(redis-4 redis-3); else order=(redis-3 redis-4); fi
for s in "${order[@]}"; do
  timeout 60 "${compose[@]}" start "$s" >/dev/null 2>&1
  wait_healthy 60 "$s" || fail "$s did not come back healthy"
done
new3=$(ip_of redis-3)
new4=$(ip_of redis-4)
if [[ $new3 == "$ip4" && $new4 == "$ip3" ]]; then
  pass "redis-3 and redis-4 restarted in the other order: addresses swapped ($ip3 <-> $ip4)"
else
  fail "the restart did not swap addresses (redis-3 $ip3 -> $new3, redis-4 $ip4 -> $new4): the checks below prove less"
fi
if msg=$(wait_metric 30 redlock_node_connected redis-3 1) && msg=$(wait_metric 30 redlock_node_connected redis-4 1); then
  pass "every replica reconnected to redis-3 and redis-4"
else
  fail "after the swap: $msg"
fi
race room-swapped "redis-3/redis-4 swapped"
probe "redis-3/redis-4 swapped"
# Each name must reach the container of that name: stop redis-3 alone, and
# every replica must see redis-3 down and redis-4 up. A replica that kept the
# addresses it resolved at connect sees it the other way round.
timeout 60 "${compose[@]}" stop -t 5 redis-3 >/dev/null 2>&1
if msg=$(wait_metric 20 redlock_node_connected redis-3 0) && msg=$(wait_metric 5 redlock_node_connected redis-4 1); then
  pass "after the swap each node name reaches its own container (redis-3 stopped: the replicas see redis-3 down, redis-4 up)"
else
  fail "after the swap the replicas send a node's traffic to another container: $msg (names resolved once at connect, not again on reconnect)"
fi
race room-swapped-one-down "swapped, redis-3 stopped"
# Its lock went to the four running nodes: the room's fence counter is on
# each of them, and redis-3 (started again) has none.
timeout 60 "${compose[@]}" start redis-3 >/dev/null 2>&1
wait_healthy 60 redis-3 || fail "redis-3 did not come back healthy"
placed=""
for s in redis-1 redis-2 redis-3 redis-4 redis-5; do
  placed+="$s=$(redis "$s" EXISTS "$(fence_key chatroom:room-swapped-one-down)" || echo '?') "
done
if [[ $placed == "redis-1=1 redis-2=1 redis-3=0 redis-4=1 redis-5=1 " ]]; then
  pass "the lock taken with redis-3 stopped is on the other four nodes' keys, not on redis-3's"
else
  fail "keys of the lock taken with redis-3 stopped: $placed"
fi
if msg=$(wait_metric 30 redlock_node_connected redis-3 1); then
  pass "every replica reconnected to redis-3"
else
  fail "redis-3 back: $msg"
fi

# --- 6. redlock-bench in the stack's network -----------------------------------
secs=${REDLOCK_DOCKER_BENCH_SECONDS:-5}
# bench_summary JSONL LABEL...: one line on the runs with these labels, or
# "BAD ..." when one is missing, too many cycles failed or two held at once.
bench_summary() {
  python3 - "$@" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
labels = {r["label"]: r for r in runs}
need = sys.argv[2:]
missing = [l for l in need if l not in labels]
locking = [r for r in runs if r["impl"] == "redlock"]
ops = sum(r.get("ops", 0) for r in locking)
errors = sum(r.get("errors", 0) for r in locking)
violations = sum(r.get("violations", 0) for r in runs)
# Errors are node timeouts: each write waits for an fsync, and 64 cycles in
# flight queue behind them on a busy machine. Counted, not fatal, unless
# more than a few cycles in a hundred failed; two holders at once are.
if missing or violations or not ops or errors > ops / 20:
    print("BAD missing %s, %d operations, %d errors, %d violations" % (missing, ops, errors, violations))
else:
    print(", ".join("%s p50 %.0f us %.0f/s" % (l, labels[l]["p50_us"], labels[l]["ops_per_s"]) for l in need)
          + "; %d errors in %d operations, 0 violations" % (errors, ops))
EOF
}
bench_start=$(date +%s)
if bounded 300 "${compose[@]}" --profile bench run --rm --no-deps -T bench redlock-bench \
  --hosts redis-1,redis-2,redis-3,redis-4,redis-5 --ports 6379,6379,6379,6379,6379 \
  --scenario a,b,c --seconds "$secs" --warmup-s 1 --base-requests 5000 --base-clients 1 \
  --max-noise 0 --cmd-timeout-ms 250 \
  >"$out/bench-stack.jsonl" 2>"$out/bench-stack.log"; then
  summary=$(bench_summary "$out/bench-stack.jsonl" base/c1 a b/64 c/4thr)
  if [[ $summary == BAD* ]]; then
    fail "redlock-bench in the stack: ${summary#BAD }"
  else
    pass "redlock-bench in the stack ($(($(date +%s) - bench_start)) s; build/docker-check/bench-stack.jsonl): $summary"
  fi
else
  tail -n 20 "$out/bench-stack.log" >&2
  fail "redlock-bench in the stack failed (bench-stack.log)"
fi

# --- 7. profile tls ------------------------------------------------------------
# The plain stack stays up: the image and the network are reused, and the
# final `down -v` takes everything.
# exited_ok SECONDS SERVICE: the one-shot service has ended, with status 0.
exited_ok() {
  local deadline=$(($(date +%s) + $1)) state
  until state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(container "$2")" 2>/dev/null) &&
    [[ $state == exited* ]]; do
    [[ $(date +%s) -lt $deadline ]] || { echo "$2: ${state:-no container}"; return 1; }
    sleep 0.5
  done
  [[ $state == "exited 0" ]] || { echo "$2 ended with status ${state#exited }"; return 1; }
}
# last_json TEXT: the last line of TEXT that is a JSON object.
last_json() { grep -E '^\{' <<<"$1" | tail -n 1; }
tls_services=(redis-tls-1 redis-tls-2 redis-tls-3 redis-tls-4 redis-tls-5)
tls_nodes=rediss://redis-tls-1:6379,rediss://redis-tls-2:6379,rediss://redis-tls-3:6379,rediss://redis-tls-4:6379,rediss://redis-tls-5:6379
tls_opts=(--tls-ca /certs/ca.crt --tls-cert /certs/client.crt --tls-key /certs/client.key)
# tls_cli ARGS...: the redlock command with the stack's CA and client
# certificate (bench-tls mounts them), a new process on the stack's network.
tls_cli() {
  timeout 60 "${compose[@]}" --profile bench-tls run --rm --no-deps -T bench-tls \
    redlock --nodes "$tls_nodes" "${tls_opts[@]}" --restart-grace 0s --json "$@"
}
certs_sum() { docker exec "$(container redis-tls-1)" sha256sum /certs/ca.crt /certs/server.crt /certs/client.crt 2>&1; }
tls_start=$(date +%s)
msg=""
tls_ok=0
if bounded 240 "${compose[@]}" --profile tls up -d >"$out/up-tls.log" 2>&1 &&
  msg=$(exited_ok 10 tls-certs) && wait_healthy 120 "${tls_services[@]}"; then
  pass "profile tls up, certificates made, redis-tls-1..5 healthy, in $(($(date +%s) - tls_start)) s (on ${ports[*]:8:5})"
  tls_ok=1
else
  tail -n 20 "$out/up-tls.log" >&2
  fail "profile tls did not come up: ${msg:-see up-tls.log}"
fi
if [[ $tls_ok == 1 ]]; then
  # TLS only: no plain-text port; and the certificates are kept, not made again.
  sum=$(certs_sum)
  again=$(timeout 60 "${compose[@]}" --profile tls run --rm --no-deps -T tls-certs 2>&1) || true
  if redis redis-tls-1 ping >/dev/null 2>&1; then
    fail "redis-tls-1 answers in plain text"
  elif [[ $again != *already* || $(certs_sum) != "$sum" ]]; then
    fail "tls-certs run again: $(echo "$again" | tail -n 1), certificates $( [[ $(certs_sum) == "$sum" ]] && echo kept || echo changed)"
  else
    pass "the TLS nodes refuse plain text, and tls-certs run again keeps the certificates"
  fi

  # --wait: a new process's first TLS handshakes can outlast one attempt's
  # node timeout (50 ms at this ttl) on a busy machine; the next attempt
  # finds them done.
  got=""
  if got=$(tls_cli acquire docker-check:tls --ttl 10s --wait 5s 2>&1) && [[ $got == *'"fence":'* ]]; then
    token=$(echo "$got" | grep -oE '"token":"[0-9a-f]+"' | cut -d'"' -f4)
    tls_fence=$(echo "$got" | grep -oE '"fence":[0-9]+' | cut -d: -f2)
    if rel=$(tls_cli release docker-check:tls "$token" 2>&1) && [[ $rel == *'"released":true'* ]]; then
      pass "redlock over TLS (rediss://redis-tls-1..5, client certificate): acquired with fence $tls_fence, released"
    else
      fail "redlock over TLS: acquired, but release failed: $(echo "$rel" | tail -n 2 | tr '\n' ' ')"
    fi
  else
    fail "redlock over TLS could not take a lock: $(echo "$got" | tail -n 3 | tr '\n' ' ')"
  fi

  # Another CA, made here: no node's certificate verifies, so no quorum (exit 3).
  rc=0
  # shellcheck disable=SC2016 # $1 is the inner shell's
  got=$(timeout 60 "${compose[@]}" --profile bench-tls run --rm --no-deps -T bench-tls sh -c '
    openssl req -x509 -new -nodes -newkey rsa:2048 -days 1 -subj "/CN=not the stack CA" \
      -keyout /tmp/other-ca.key -out /tmp/other-ca.crt 2>/dev/null || exit 99
    exec redlock --nodes "$1" --tls-ca /tmp/other-ca.crt --tls-cert /certs/client.crt \
      --tls-key /certs/client.key --restart-grace 0s --json acquire docker-check:tls-other-ca' \
    sh "$tls_nodes" 2>&1) || rc=$?
  verdict=$(python3 -c '
import json, sys
nodes = json.loads(sys.argv[1]).get("nodes") or []
bad = [n.get("node") for n in nodes if "certificate verify failed" not in (n.get("detail") or "")]
print("ok" if len(nodes) == 5 and not bad else "nodes %s without a verification failure" % (bad or "missing"))
print((nodes[0].get("detail") or "") if nodes else "")' "$(last_json "$got")" 2>&1) || verdict="no JSON"
  if [[ $rc == 3 && $verdict == ok* ]]; then
    pass "redlock over TLS with another CA: exit 3, every node's detail: $(echo "$verdict" | sed -n 2p)"
  else
    fail "redlock over TLS with another CA: exit $rc (not 3), $(echo "$verdict" | head -n 1): $(echo "$got" | tail -n 2 | tr '\n' ' ')"
  fi

  # bench-tls's own command, with the check's bounds.
  bench_start=$(date +%s)
  if bounded 300 "${compose[@]}" --profile bench-tls run --rm --no-deps -T bench-tls redlock-bench \
    --hosts redis-tls-1,redis-tls-2,redis-tls-3,redis-tls-4,redis-tls-5 --ports 6379,6379,6379,6379,6379 \
    --tls on "${tls_opts[@]}" --scenario a,b,c --seconds "$secs" --warmup-s 1 \
    --max-noise 0 --cmd-timeout-ms 250 \
    >"$out/bench-tls.jsonl" 2>"$out/bench-tls.log"; then
    summary=$(bench_summary "$out/bench-tls.jsonl" a/tls b/64/tls c/4thr/tls)
    if [[ $summary == BAD* ]]; then
      fail "bench-tls: ${summary#BAD }"
    else
      pass "bench-tls ($(($(date +%s) - bench_start)) s; build/docker-check/bench-tls.jsonl): $summary"
    fi
  else
    tail -n 20 "$out/bench-tls.log" >&2
    fail "bench-tls failed (bench-tls.log)"
  fi
fi

# --- 8. profile cluster --------------------------------------------------------
cluster_services=(redis-c1 redis-c2 redis-c3 redis-c4 redis-c5 redis-c6)
# ccli ARGS...: the redlock command with the cluster as its one node.
ccli() {
  timeout 60 "${compose[@]}" run --rm --no-deps -T bench \
    redlock --nodes cluster://redis-c1:6379,redis-c2:6379 --restart-grace 0s --json "$@"
}
cluster_start=$(date +%s)
msg=""
if bounded 240 "${compose[@]}" --profile cluster up -d >"$out/up-cluster.log" 2>&1 &&
  wait_healthy 120 "${cluster_services[@]}" && msg=$(exited_ok 120 cluster-create); then
  pass "profile cluster up, redis-c1..c6 healthy and joined (cluster-create exit 0) in $(($(date +%s) - cluster_start)) s"
  got=""
  cfence=""
  if got=$(ccli acquire docker-check:cluster --ttl 10s --wait 5s 2>&1) &&
    cfence=$(echo "$got" | grep -oE '"fence":[0-9]+' | cut -d: -f2) && [[ ${cfence:-0} -gt 0 ]]; then
    token=$(echo "$got" | grep -oE '"token":"[0-9a-f]+"' | cut -d'"' -f4)
    if rel=$(ccli release docker-check:cluster "$token" 2>&1) && [[ $rel == *'"released":true'* ]]; then
      pass "redlock on cluster://redis-c1:6379,redis-c2:6379: acquired with fence $cfence, released"
    else
      fail "redlock on the cluster: acquired, but release failed: $(echo "$rel" | tail -n 2 | tr '\n' ' ')"
    fi
  else
    fail "redlock on the cluster could not take a lock with a fence: $(echo "$got" | tail -n 3 | tr '\n' ' ')"
  fi
  rc=0
  got=$(ccli status 2>&1) || rc=$?
  verdict=$(python3 -c '
import json, sys
nodes = json.loads(sys.argv[1])["nodes"]
shards = nodes[0].get("shards") or []
ok = len(nodes) == 1 and len(shards) == 3 and all(s["master"].startswith("redis-c") for s in shards) \
    and all(s.get("reachable") for s in shards)
print(("ok " if ok else "BAD ") + "; ".join("%s slots %s, %d replica(s)" % (
    s["master"], s["slots"], s.get("replicas") or 0) for s in shards))' "$(last_json "$got")" 2>&1) ||
    verdict="BAD no JSON"
  if [[ $rc == 0 && $verdict == ok* ]]; then
    pass "redlock status on the cluster: 3 shards, masters by name: ${verdict#ok }"
  else
    fail "redlock status on the cluster: exit $rc, ${verdict#BAD }: $(echo "$got" | tail -n 2 | tr '\n' ' ')"
  fi
else
  tail -n 20 "$out/up-cluster.log" >&2
  fail "profile cluster did not come up: ${msg:-see up-cluster.log}"
fi

# --- 9. down (the EXIT trap) ---------------------------------------------------
if timeout 120 "${compose[@]}" "${all_profiles[@]}" down -v --remove-orphans >"$out/down.log" 2>&1 &&
  [[ -z $(docker ps -aq --filter "label=com.docker.compose.project=$project") ]] &&
  [[ -z $(docker volume ls -q --filter "label=com.docker.compose.project=$project") ]]; then
  pass "down -v of every profile: no container or volume left"
else
  fail "down -v left containers or volumes (down.log)"
fi
stack_up=0
