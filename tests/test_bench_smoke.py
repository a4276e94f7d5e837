"""Every benchmark script runs in its --quick mode and prints its tables (no timing asserted).

The reliability campaign's quick run writes its report to a temporary file, never over
docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = ["timing", "anchors", "scpi_perf", "safety_latency", "memory", "speed", "reliability"]


@pytest.mark.sim_only
@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_quick(name: str, tmp_path: Path, real_port: str | None) -> None:
    if real_port:
        pytest.skip("the benchmarks start virtual boards of their own")
    out = tmp_path / "tables.json"
    cmd = [sys.executable, str(BENCH / (name + ".py")), "--quick", "--json", str(out)]
    if name == "reliability":
        cmd += ["--out", str(tmp_path / "reliability.md")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["name"] and data["tables"]
    for table in data["tables"]:
        assert table["title"] in proc.stdout
        assert table["rows"], table["title"]
    if name == "reliability":
        text = (tmp_path / "reliability.md").read_text()
        assert "## Campaign summary" in text and "## Findings" in text
