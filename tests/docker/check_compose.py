#!/usr/bin/env python3
"""Static checks of docker/compose.yaml and docker/Dockerfile (no Docker
engine needed).

  check_compose.py REPO_ROOT

- the file parses as YAML and has services;
- every service README.md or docker/README.md names ("service `x`",
  "services `a`, `b` and `c`", "`redis-1` ... `redis-5`", "`redis-c1` ...
  `redis-c6`") exists;
- every build context and Dockerfile exists, and the Dockerfile has a build
  and a runtime stage on Debian 12; its runtime stage runs as a user that is
  not root and has redis-server when it ships a tool that starts local nodes;
  the stand-in Dockerfiles run as a user too;
- the context's .dockerignore is the root's (read by every builder) and keeps
  .git and build/ out; no <Dockerfile>.dockerignore shadows it under BuildKit;
- every depends_on target exists, and waits for service_healthy where the
  target has a health check, and for service_completed_successfully where
  it is a one-shot service; every service has a health check, but for the
  one-shot services (bench runners, tls-certs, cluster-create), which
  disable it;
- every published port is "${REDLOCK_DOCKER_BIND:-127.0.0.1}:${VAR:-PORT}:..."
  with today's defaults (7001-7005, 7011-7015, 8081-8083), each variable once;
- what Debian's docker-compose 1.29 reads: no top-level `name:` or `include:`,
  no keys only Compose v2 knows, no nested ${...} defaults; and, where
  docker-compose or `docker compose` is installed, their `config -q` accept it;
- every host in CHATROOMD_NODES and in the CHATROOMD_STORE URL is a service;
- every named volume a service mounts is declared;
- every profile is one of those `config -q` is run with.

Exit status: 0 all good, 1 a check failed (each problem on stderr), 77
PyYAML is missing (ctest reports the test as skipped).
"""
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("PyYAML is missing (Debian: apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(77)

NAME = r"[a-z][a-z0-9_-]*"
# "`redis-1` … `redis-5`", "`redis-c1` … `redis-c6`" (also with "..." or
# "to"): every number in between.
RANGE = re.compile(r"`(" + NAME + r"?)(\d+)`[ \t]*(?:…|\.\.\.|to)[ \t]*`(" + NAME + r"?)(\d+)`")
# "service `x`", "services `a`, `b` and `c`" (ranges inside are handled above).
LIST = re.compile(
    r"\bservices?\b((?:[ \t]*(?:,|and|or|…|\.\.\.|to)?[ \t]*`" + NAME + r"`)+)", re.IGNORECASE)

# Published ports: today's defaults, one variable each.
PORT = re.compile(r"^\$\{REDLOCK_DOCKER_BIND:-127\.0\.0\.1\}:\$\{(REDLOCK_DOCKER_[A-Z0-9_]+_PORT):-(\d+)\}:(\d+)$")
EXPECTED_PORTS = {f"redis-{i}": 7000 + i for i in range(1, 6)}
EXPECTED_PORTS.update({f"redis-tls-{i}": 7010 + i for i in range(1, 6)})
EXPECTED_PORTS.update({f"chatroomd-{i}": 8080 + i for i in range(1, 4)})
# One-shot services: no health to report; what needs them waits for their
# successful end.
ONE_SHOT = {"bench", "bench-published", "bench-tls", "tls-certs", "cluster-create"}
PROFILES = ("chatroom", "bench", "bench-published", "tls", "bench-tls", "cluster")
# Keys Compose 1.29 does not know (it refuses the file or ignores them).
V2_ONLY_TOP = {"name", "include", "models"}
V2_ONLY_SERVICE = {"develop", "post_start", "pre_stop", "models", "provider", "attach", "gpus"}
V2_ONLY_BUILD = {"additional_contexts", "tags", "platforms", "privileged", "ulimits", "secrets"}
V2_ONLY_DEPENDS = {"required", "restart"}
# Tools that start local redis-server nodes when given none.
NEEDS_REDIS_SERVER = ("chatroom-race", "redlock-cluster", "redlock-bench")


def readme_services(text):
    # Lines of one paragraph are joined; a blank line (or a heading's end)
    # separates mentions.
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", text)
    names = set()
    for m in RANGE.finditer(text):
        if m.group(1) == m.group(3):
            for k in range(int(m.group(2)), int(m.group(4)) + 1):
                names.add(f"{m.group(1)}{k}")
    for m in LIST.finditer(text):
        names.update(re.findall(r"`(" + NAME + r")`", m.group(1)))
    return names


def stages(dockerfile_text):
    """[(image, name, body)] for each FROM."""
    parts = re.split(r"^(?=FROM\s)", dockerfile_text, flags=re.MULTILINE | re.IGNORECASE)
    out = []
    for part in parts:
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", part, re.IGNORECASE)
        if m:
            out.append((m.group(1), m.group(2), part))
    return out


def final_user(body):
    users = re.findall(r"^USER\s+(\S+)", body, re.MULTILINE | re.IGNORECASE)
    return users[-1] if users else "root"


def check_dockerfile(dockerfile, problems):
    with open(dockerfile, encoding="utf-8") as f:
        text = f.read()
    found = stages(text)
    if len(found) < 2 or not all(s[0].startswith("debian:bookworm") for s in found):
        problems.append(f"{dockerfile}: expected a build and a runtime stage on debian:bookworm, "
                        f"found {[(s[0], s[1]) for s in found]}")
        return
    # Instructions only: a comment naming a package is not the package.
    runtime = re.sub(r"^\s*#.*$", "", found[-1][2], flags=re.MULTILINE)
    if final_user(runtime) in ("root", "0"):
        problems.append(f"{dockerfile}: the runtime stage runs as root (no USER)")
    shipped = [t for t in NEEDS_REDIS_SERVER if re.search(r"\b" + re.escape(t) + r"\b", text)]
    if shipped and not re.search(r"\bredis-server\b", runtime):
        problems.append(f"{dockerfile}: ships {shipped}, which start redis-server, but the runtime "
                        "stage does not install it")
    if os.path.exists(dockerfile + ".dockerignore"):
        problems.append(f"{dockerfile}.dockerignore exists: BuildKit reads it instead of the "
                        "context's .dockerignore, the classic builder never does")


def check_dockerignore(context, problems):
    path = os.path.join(context, ".dockerignore")
    if not os.path.isfile(path):
        problems.append(f"{context}: no .dockerignore (the classic builder and docker-compose 1.29 "
                        "read only the context's)")
        return
    with open(path, encoding="utf-8") as f:
        patterns = {line.strip().strip("/") for line in f
                    if line.strip() and not line.startswith("#")}
    for needed in (".git", "build"):
        if needed not in patterns:
            problems.append(f"{path}: does not exclude {needed}")


def check_v1_compat(compose, raw_text, problems):
    for key in V2_ONLY_TOP & set(compose):
        problems.append(f"top-level `{key}:` is Compose v2 only (docker-compose 1.29 refuses it)")
    for name, service in (compose.get("services") or {}).items():
        for key in V2_ONLY_SERVICE & set(service):
            problems.append(f"service {name}: `{key}` is Compose v2 only")
        build = service.get("build")
        if isinstance(build, dict):
            for key in V2_ONLY_BUILD & set(build):
                problems.append(f"service {name}: build.{key} is Compose v2 only")
        depends = service.get("depends_on")
        if isinstance(depends, dict):
            for target, spec in depends.items():
                for key in V2_ONLY_DEPENDS & set(spec or {}):
                    problems.append(f"service {name}: depends_on.{target}.{key} is Compose v2 only")
    if re.search(r"\$\{[^}]*\$\{", raw_text):
        problems.append("nested ${...${...}} interpolation is Compose v2 only")


def run_config(compose_path, problems, notes):
    """`config -q` of every Compose that is installed (none: nothing to do)."""
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)  # config needs no engine
    candidates = []
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 env=env).returncode == 0:
        candidates.append([docker, "compose"])
    for cmd in candidates:
        profiles = [arg for p in PROFILES for arg in ("--profile", p)]
        r = subprocess.run(cmd + ["-f", compose_path] + profiles + ["config", "-q"],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            problems.append(f"{' '.join(cmd)} config refuses {compose_path}: "
                            f"{(r.stderr or r.stdout).strip()}")
        else:
            notes.append(" ".join(os.path.basename(c) for c in cmd))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    compose_path = os.path.join(root, "docker", "compose.yaml")
    problems = []
    notes = []
    with open(compose_path, encoding="utf-8") as f:
        raw_text = f.read()
    compose = yaml.safe_load(raw_text) or {}
    services = compose.get("services") or {}
    if not services:
        problems.append(f"{compose_path}: no services")
    compose_dir = os.path.dirname(compose_path)

    mentioned = set()
    for doc in ("README.md", os.path.join("docker", "README.md")):
        if doc != "README.md" and not os.path.exists(os.path.join(root, doc)):
            continue
        with open(os.path.join(root, doc), encoding="utf-8") as f:
            names = readme_services(f.read())
        if not names and doc != "README.md":
            problems.append(f"{doc} names no compose service (\"services `a`, `b`\")")
        for name in sorted(names - set(services)):
            problems.append(f"{doc} names service `{name}`, which compose.yaml lacks")
        mentioned |= names

    declared_volumes = set(compose.get("volumes") or {})
    checked_dockerfiles = set()
    port_vars = {}
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"service {name}: neither image nor build")
        build = service.get("build")
        if build is not None:
            if isinstance(build, str):
                build = {"context": build}
            context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
            if not os.path.isdir(context):
                problems.append(f"service {name}: build context {context} does not exist")
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(dockerfile):
                problems.append(f"service {name}: Dockerfile {dockerfile} does not exist")
            elif dockerfile not in checked_dockerfiles:
                checked_dockerfiles.add(dockerfile)
                check_dockerfile(dockerfile, problems)
                check_dockerignore(context, problems)

        for profile in service.get("profiles") or []:
            if profile not in PROFILES:
                problems.append(f"service {name}: profile {profile} is not one of {PROFILES} "
                                "(which `config -q` checks)")

        health = service.get("healthcheck") or {}
        if name in ONE_SHOT:
            if not health.get("disable"):
                problems.append(f"service {name}: a one-shot runner; its image's health check "
                                "should be disabled")
        elif not health.get("test") or health.get("disable"):
            problems.append(f"service {name}: no healthcheck")

        depends = service.get("depends_on") or []
        for target in (depends if isinstance(depends, list) else depends.keys()):
            if target not in services:
                problems.append(f"service {name}: depends_on unknown service {target}")
                continue
            condition = depends[target].get("condition") if isinstance(depends, dict) else None
            if target in ONE_SHOT:
                if condition != "service_completed_successfully":
                    problems.append(f"service {name}: depends on the one-shot {target} without "
                                    "waiting for its end (condition: "
                                    "service_completed_successfully)")
            elif (services[target].get("healthcheck") or {}).get("test") and \
                    condition != "service_healthy":
                problems.append(f"service {name}: depends on {target} without waiting for it to "
                                "be healthy (condition: service_healthy)")

        ports = service.get("ports") or []
        for port in ports:
            m = PORT.match(str(port))
            if not m:
                problems.append(f"service {name}: port {port!r} is not "
                                "${REDLOCK_DOCKER_BIND:-127.0.0.1}:${VAR:-PORT}:CONTAINER_PORT")
                continue
            var, default = m.group(1), int(m.group(2))
            if var in port_vars:
                problems.append(f"service {name}: {var} already publishes {port_vars[var]}")
            port_vars[var] = name
            if EXPECTED_PORTS.get(name) != default:
                problems.append(f"service {name}: default host port {default}, expected "
                                f"{EXPECTED_PORTS.get(name)}")
        if name in EXPECTED_PORTS and not ports:
            problems.append(f"service {name}: publishes no port")

        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        for node in str(env.get("CHATROOMD_NODES", "")).split(","):
            host = node.strip().rsplit(":", 1)[0]
            if host and host not in services:
                problems.append(f"service {name}: CHATROOMD_NODES host {host} is not a service")
        store = str(env.get("CHATROOMD_STORE", ""))
        m = re.match(r"postgres(?:ql)?://(?:[^@/]*@)?([^:/]+)", store)
        if m and m.group(1) not in services:
            problems.append(f"service {name}: CHATROOMD_STORE host {m.group(1)} is not a service")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~")) and source not in declared_volumes:
                problems.append(f"service {name}: volume {source} is not declared")

    standins = os.path.join(root, "docker", "standins")
    if os.path.isdir(standins):
        for entry in sorted(os.listdir(standins)):
            dockerfile = os.path.join(standins, entry, "Dockerfile")
            if os.path.isfile(dockerfile):
                with open(dockerfile, encoding="utf-8") as f:
                    if final_user(f.read()) in ("root", "0"):
                        problems.append(f"{dockerfile}: runs as root (no USER)")

    check_v1_compat(compose, raw_text, problems)
    if not problems:
        run_config(compose_path, problems, notes)

    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{compose_path}: {len(services)} services; READMEs name {sorted(mentioned)}; "
              f"config -q accepted by {', '.join(notes) or 'no installed Compose'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
