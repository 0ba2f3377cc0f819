"""Check that halo-agent's runtime dependencies install from binary wheels on aarch64 boards.

For each Python version (default 3.9, 3.10, 3.11, 3.12) this evaluates the
environment markers of the installed ``halo-agent`` distribution's requirements and
of ``constraints/aarch64.txt`` *for the board* (Linux aarch64, that Python; pip
itself would evaluate them for the machine it runs on), then walks the closure:
every requirement must be pinned by the constraints to a version its specifier
accepts, and each pin is fetched with::

    pip download --no-deps --only-binary=:all: --platform manylinux_2_17_aarch64 ...
        --python-version X --implementation cp --abi cpXY PKG==VER

whose wheel's METADATA gives the next requirements (all pins of one Python are fetched
in one pip call).  Platforms: manylinux2014 and
manylinux_2_17 up to manylinux_2_31 (glibc 2.31: JetPack 5 / Ubuntu 20.04, the oldest
board glibc a supported Python runs on).  Exit status 0 when every Python passes;
otherwise the missing wheels and pins are listed.

Usage (from the repository root, with halo-agent installed in the running venv):
    python .ci/aarch64_wheels.py [--constraints constraints/aarch64.txt] [--python 3.9,3.10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, 32)]


def board_env(py: str) -> Dict[str, str]:
    """Marker variables of CPython ``py`` (``"3.10"``) on a Linux aarch64 board."""
    return {"python_version": py, "python_full_version": f"{py}.0", "os_name": "posix",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
            "platform_python_implementation": "CPython", "implementation_name": "cpython",
            "implementation_version": f"{py}.0", "platform_release": "", "platform_version": "",
            "extra": ""}


def applies(marker: Optional[Marker], env: Dict[str, str], extras=("",)) -> bool:
    return marker is None or any(marker.evaluate(dict(env, extra=e)) for e in extras)


def read_pins(path: Path, env: Dict[str, str]) -> Dict[str, Requirement]:
    """``name -> Requirement`` of the constraint lines whose markers hold in ``env``."""
    pins: Dict[str, Requirement] = {}
    for no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if not applies(req.marker, env):
            continue
        name = canonicalize_name(req.name)
        if name in pins:
            raise SystemExit(f"{path}:{no}: {name} pinned twice for Python {env['python_version']}")
        pins[name] = req
    return pins


def pinned_version(req: Requirement) -> str:
    spec = list(req.specifier)
    if len(spec) != 1 or spec[0].operator != "==":
        raise SystemExit(f"constraint {req} is not an exact pin (NAME==VERSION)")
    return spec[0].version


def _pip_download(specs: List[str], py: str, dest: Path) -> subprocess.CompletedProcess:
    abi = "cp" + py.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", py, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
           "--abi", "none", "-d", str(dest), *specs]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    return subprocess.run(cmd, capture_output=True, text=True)


def download_all(pins: Dict[str, Requirement], py: str, dest: Path) -> Dict[str, Path]:
    """Every pinned wheel for ``py`` in one pip call (one by one only to name a failure):
    ``name -> wheel``; a pin with no wheel is missing from the result."""
    specs = [f"{name}=={pinned_version(req)}" for name, req in sorted(pins.items())]
    if _pip_download(specs, py, dest).returncode != 0:
        for spec in specs:
            _pip_download([spec], py, dest)
    wheels = {}
    for whl in dest.glob("*.whl"):
        wheels[canonicalize_name(whl.name.split("-")[0])] = whl
    return wheels


def wheel_requires(wheel: Path) -> List[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(z.read(meta).decode("utf-8"))
    return [Requirement(r) for r in msg.get_all("Requires-Dist") or []]


def check(py: str, constraints: Path, dest: Path) -> List[str]:
    """Problems found for Python ``py`` (empty: every runtime wheel exists and is pinned)."""
    env = board_env(py)
    pins = read_pins(constraints, env)
    todo = [(r, "halo-agent") for r in map(Requirement, metadata.requires("halo-agent") or [])
            if applies(r.marker, env)]
    wheels = download_all(pins, py, dest)
    walked = set()
    problems: List[str] = []
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{name} (needed by {parent}: {req}) has no pin for Python {py}")
            continue
        version = pinned_version(pin)
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{name}=={version} does not satisfy {parent}'s {req}")
        key = (name, tuple(sorted(req.extras)))
        if key in walked:
            continue
        walked.add(key)
        if name not in wheels:
            problems.append(f"{name}=={version}: no manylinux aarch64 wheel for Python {py}")
            continue
        if len(key[1]) == 0:
            print(f"  {py}: {wheels[name].name}")
        extras = ("",) + key[1]
        todo.extend((sub, f"{name}=={version}") for sub in wheel_requires(wheels[name])
                    if applies(sub.marker, env, extras))
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--constraints", type=Path, default=Path("constraints/aarch64.txt"))
    ap.add_argument("--python", default="3.9,3.10,3.11,3.12",
                    help="comma-separated Python versions (default 3.9,3.10,3.11,3.12)")
    args = ap.parse_args(argv)
    failed = False
    for py in args.python.split(","):
        with tempfile.TemporaryDirectory(prefix="aarch64-wheels-") as tmp:
            problems = check(py.strip(), args.constraints, Path(tmp))
        if problems:
            failed = True
            print(f"Python {py}: FAILED\n  " + "\n  ".join(problems))
        else:
            print(f"Python {py}: every runtime dependency has a pinned manylinux aarch64 wheel")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
