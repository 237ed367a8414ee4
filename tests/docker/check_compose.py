#!/usr/bin/env python3
"""Static checks of docker/compose.yaml (no Docker engine needed).

  check_compose.py REPO_ROOT

- the file parses as YAML and has services;
- every service the README names ("service `x`", "services `a`, `b` and
  `c`", "`redis-1` ... `redis-5`") exists;
- every build context and Dockerfile exists, and the Dockerfile has a build
  and a runtime stage on Debian 12;
- every depends_on target exists, and every host in CHATROOMD_NODES and in
  the CHATROOMD_STORE URL is a service;
- every named volume a service mounts is declared.

Exit status: 0 all good, 1 a check failed (each problem on stderr), 77
PyYAML is missing (ctest reports the test as skipped).
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("PyYAML is missing (Debian: apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(77)

NAME = r"[a-z][a-z0-9_-]*"
# "`redis-1` … `redis-5`" (also with "..." or "to"): every number in between.
RANGE = re.compile(r"`(" + NAME + r"?)-(\d+)`[ \t]*(?:…|\.\.\.|to)[ \t]*`(" + NAME + r"?)-(\d+)`")
# "service `x`", "services `a`, `b` and `c`" (ranges inside are handled above).
LIST = re.compile(
    r"\bservices?\b((?:[ \t]*(?:,|and|or|…|\.\.\.|to)?[ \t]*`" + NAME + r"`)+)", re.IGNORECASE)


def readme_services(text):
    # Lines of one paragraph are joined; a blank line (or a heading's end)
    # separates mentions.
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", text)
    names = set()
    for m in RANGE.finditer(text):
        if m.group(1) == m.group(3):
            for k in range(int(m.group(2)), int(m.group(4)) + 1):
                names.add(f"{m.group(1)}-{k}")
    for m in LIST.finditer(text):
        names.update(re.findall(r"`(" + NAME + r")`", m.group(1)))
    return names


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    compose_path = os.path.join(root, "docker", "compose.yaml")
    problems = []
    with open(compose_path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    services = (compose or {}).get("services") or {}
    if not services:
        problems.append(f"{compose_path}: no services")
    compose_dir = os.path.dirname(compose_path)

    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        mentioned = readme_services(f.read())
    if not mentioned:
        problems.append("README.md names no compose service (\"services `a`, `b`\")")
    for name in sorted(mentioned - set(services)):
        problems.append(f"README.md names service `{name}`, which compose.yaml lacks")

    declared_volumes = set((compose or {}).get("volumes") or {})
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
            else:
                with open(dockerfile, encoding="utf-8") as f:
                    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", f.read(),
                                        re.MULTILINE | re.IGNORECASE)
                if len(stages) < 2 or not all(s[0].startswith("debian:bookworm") for s in stages):
                    problems.append(f"{dockerfile}: expected a build and a runtime stage on "
                                    f"debian:bookworm, found {stages}")
        depends = service.get("depends_on") or []
        for target in (depends if isinstance(depends, list) else depends.keys()):
            if target not in services:
                problems.append(f"service {name}: depends_on unknown service {target}")
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

    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{compose_path}: {len(services)} services; README names {sorted(mentioned)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
