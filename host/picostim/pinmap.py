"""The board's pin map, read from the firmware's own `board/stim/pins.py`.

There is one pin map: the firmware imports it on the Pico, and the host side (virtual board,
capture names, docs) executes the same file here, so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BOARD_DIR = Path(__file__).resolve().parents[2] / "board"
PINS_FILE = BOARD_DIR / "stim" / "pins.py"


def _load() -> dict[str, Any]:
    scope: dict[str, Any] = {}
    exec(compile(PINS_FILE.read_text(), str(PINS_FILE), "exec"), scope)
    return {k: v for k, v in scope.items() if k.isupper()}


PINS: dict[str, Any] = _load()
#: capture signal name -> GPIO
OUTPUTS: dict[str, int] = dict(PINS["OUTPUT_NAMES"])
#: every signal a capture records: the outputs, then the inputs that start or stop trains
SIGNALS: dict[str, int] = {**OUTPUTS, **dict(PINS["CAPTURED_INPUTS"])}
