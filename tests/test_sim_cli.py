"""`picostim sim --link PATH --no-panel`: a virtual board any serial tool can open at PATH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from picostim.client import ScpiClient


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    tree: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(v) for v in line.split())
        tree.setdefault(pp, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for c in tree.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sim_link_serves_and_cleans_up(tmp_path: Path, sig: signal.Signals) -> None:
    link = tmp_path / "ps"
    proc = subprocess.Popen(
        [sys.executable, "-m", "picostim.cli", "sim", "--link", str(link), "--no-panel"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(link)
        assert link.is_symlink()
        with ScpiClient(str(link)) as inst:
            assert inst.query("*IDN?").startswith("PicoStim,")
        kids = _children(proc.pid)
        assert kids, "the MicroPython process should run under the simulator"
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not link.exists() and not link.is_symlink()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    assert not [k for k in kids if _alive(k)], "processes left behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for practical purposes only once reaped; ps shows it as Z.
    st = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return bool(st.stdout.strip()) and not st.stdout.strip().startswith("Z")
