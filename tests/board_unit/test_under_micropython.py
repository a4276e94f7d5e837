"""Run mp_smoke.py under the MicroPython unix port with a Pico-sized heap.

The interpreter is ``$MICROPYTHON`` if set, else ``micropython`` on PATH, else
``/tmp/v/bin/micropython``; the test is skipped when none exists.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BOARD = HERE.parents[1] / "board"
SMOKE = HERE / "mp_smoke.py"
FALLBACK = "/tmp/v/bin/micropython"


def _micropython():
    env = os.environ.get("MICROPYTHON")
    if env:
        return env
    found = shutil.which("micropython")
    if found:
        return found
    if os.path.exists(FALLBACK):
        return FALLBACK
    return None


def test_smoke_under_micropython():
    mp = _micropython()
    if mp is None:
        pytest.skip("no MicroPython interpreter found")
    env = dict(os.environ)
    env["MICROPYPATH"] = str(BOARD)
    proc = subprocess.run(
        [mp, "-X", "heapsize=192K", str(SMOKE)],
        cwd=str(HERE.parents[1]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    detail = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, detail
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1] == "OK", detail
