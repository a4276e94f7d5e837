"""Where running virtual boards announce themselves, so tools can find them by port path.

Each supervisor writes `<run dir>/<tty name>.json` (port, control socket, uid, pid) while it
runs; `lookup(port)` follows symlinks such as `/tmp/ps` to the pty and finds its entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def run_dir() -> Path:
    d = os.environ.get("PICOSTIM_RUN_DIR") or os.path.join(
        tempfile.gettempdir(), "picostim-run-%d" % os.getuid()
    )
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _entry_path(port: str) -> Path:
    return run_dir() / (os.path.basename(port) + ".json")


def announce(port: str, info: dict[str, Any]) -> Path:
    path = _entry_path(port)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)
    return path


def withdraw(port: str) -> None:
    try:
        _entry_path(port).unlink()
    except OSError:
        pass


def lookup(port: str) -> dict[str, Any] | None:
    """The running virtual board behind `port` (a pty path or a link to one), or None."""
    real = os.path.realpath(port)
    path = _entry_path(real)
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None  # left behind by a supervisor that died
    return info


def running() -> list[dict[str, Any]]:
    out = []
    for p in sorted(run_dir().glob("*.json")):
        info = lookup("/dev/pts/" + p.stem) if p.stem.isdigit() else None
        if info:
            out.append(info)
    return out
