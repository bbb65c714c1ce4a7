"""Building one pip or uv environment in a folder: a virtualenv over the base packages.

The env is ``<folder>/venv``, made from the node's own interpreter and
layered on its packages: a ``.pth`` file in the new env's site-packages
adds the base interpreter's site-packages after the env's own, so ember
and everything the base has stay importable and are not installed again,
while what the env installs comes first. With ``uv`` on the PATH (for the
``uv`` field) the env is made with ``uv venv`` and filled with
``uv pip install``; otherwise with ``python -m venv --without-pip`` and the
base interpreter's pip (``pip --python <env>``).

A folder is ready only when its ``.ember-ready`` marker exists: a build
that failed or was cut off leaves no marker, and the next build starts over,
so no worker ever starts in a half-built env. A failure raises
``RuntimeEnvSetupError`` with the command and the installer's output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import site
import sys
from typing import Any

from ember.exceptions import RuntimeEnvSetupError

READY = ".ember-ready"
DEFAULT_PIP_OPTIONS = ["--disable-pip-version-check", "--no-cache-dir"]
#: how much of an installer's output an error keeps (its end)
OUTPUT_TAIL_CHARS = 8000


def env_python(folder: str) -> str:
    return os.path.join(folder, "venv", "bin", "python")


def is_ready(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, READY))


def base_site_dirs() -> list[str]:
    """The site-packages of this interpreter (its venv's and the user's)."""
    dirs = list(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str) and os.path.isdir(user):
        dirs.append(user)
    return [d for d in dirs if os.path.isdir(d)]


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = await proc.communicate()
    except BaseException:  # cancelled (setup timeout): stop the installer's group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def _fail(what: str, argv: list[str], code: int, output: str) -> RuntimeEnvSetupError:
    tail = output[-OUTPUT_TAIL_CHARS:]
    return RuntimeEnvSetupError(
        f"{what} failed (exit code {code}): {' '.join(argv)}\n{tail}"
    )


def _site_packages(venv: str) -> str:
    lib = os.path.join(venv, "lib")
    for name in sorted(os.listdir(lib)):
        sp = os.path.join(lib, name, "site-packages")
        if os.path.isdir(sp):
            return sp
    raise RuntimeEnvSetupError(f"the virtualenv at {venv} has no site-packages")


def _layer_on_base(venv: str) -> None:
    lines = [f"import site; site.addsitedir({d!r})" for d in base_site_dirs()]
    with open(os.path.join(_site_packages(venv), "_ember_base.pth"), "w") as f:
        f.write("\n".join(lines) + "\n")


async def build(folder: str, field: str, spec: dict[str, Any], python: str = "") -> str:
    """Build the ``pip`` or ``uv`` env ``spec`` in ``folder``; its interpreter."""
    python = python or sys.executable
    if is_ready(folder):
        return env_python(folder)
    shutil.rmtree(folder, ignore_errors=True)  # a build cut off earlier
    os.makedirs(folder, mode=0o700)
    venv = os.path.join(folder, "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_USER")}
    env.pop("VIRTUAL_ENV", None)
    packages = list(spec["packages"])
    uv = shutil.which("uv") if field == "uv" else None
    if uv:
        create = [uv, "venv", "--quiet", "--python", python, venv]
        options = list(spec.get("uv_pip_install_options") or [])
        version = spec.get("uv_version")
        install = [uv, "pip", "install", "--python", env_python(folder), *options]
    else:
        create = [python, "-m", "venv", "--without-pip", venv]
        options = list(
            spec.get("pip_install_options") or spec.get("uv_pip_install_options") or []
        ) or list(DEFAULT_PIP_OPTIONS)
        options = [o for o in options if o != "--no-cache"] or list(DEFAULT_PIP_OPTIONS)
        version = spec.get("pip_version")
        install = [
            python,
            "-m",
            "pip",
            "--python",
            env_python(folder),
            "install",
            *options,
        ]
    code, out = await _run(create, env)
    if code:
        raise _fail("creating the virtualenv", create, code, out)
    _layer_on_base(venv)
    if version and not uv:
        packages = [f"pip{version}", *packages]
    argv = [*install, *packages]
    code, out = await _run(argv, env)
    if code:
        raise _fail(f"installing {packages}", argv, code, out)
    if spec.get("pip_check") or spec.get("uv_check"):
        check = [
            env_python(folder),
            "-m",
            "pip",
            "check",
            "--disable-pip-version-check",
        ]
        code, out = await _run(check, env)
        if code:
            raise _fail("pip check", check, code, out)
    with open(os.path.join(folder, READY), "w") as f:
        f.write(" ".join(packages) + "\n")
    return env_python(folder)
