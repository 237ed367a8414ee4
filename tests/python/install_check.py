"""Installs the Python package into a temporary prefix with `cmake --install
--component python` and imports it from there, with PYTHONPATH pointing at
the installed directory only: the module, its stubs and py.typed are there,
and the installed module works.

    install_check.py CMAKE BUILD_DIR INSTALL_DIR
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile


def main() -> int:
    cmake, build_dir, install_dir = sys.argv[1:4]
    prefix = tempfile.mkdtemp(prefix="redlock-py-install-")
    try:
        subprocess.run([cmake, "--install", build_dir, "--component", "python", "--prefix", prefix],
                       check=True, stdout=subprocess.DEVNULL)
        site = install_dir if os.path.isabs(install_dir) else os.path.join(prefix, install_dir)
        package = os.path.join(site, "redlock")
        files = sorted(os.listdir(package))
        print("installed:", package, files)
        for wanted in ("__init__.py", "_native.pyi", "py.typed"):
            assert wanted in files, f"{wanted} is not installed: {files}"
        assert any(f.startswith("_native.") and f.endswith(".so") for f in files), files
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = site
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        check = (
            "import redlock, sys\n"
            f"assert redlock.__file__.startswith({site!r}), redlock.__file__\n"
            "try:\n"
            "    redlock.Client([])\n"
            "except ValueError as e:\n"
            "    assert 'nodes is empty' in str(e)\n"
            "c = redlock.Client(['127.0.0.1:1'], connect_timeout=0.05, restart_grace=0)\n"
            "assert c.lock('x').acquire(blocking=False) is False\n"
            "c.close()\n"
            "print('imported from', redlock.__file__, 'version', redlock.__version__)\n"
        )
        subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=prefix)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
