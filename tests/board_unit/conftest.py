"""Put ``board/`` on sys.path so the firmware package imports as ``stim``."""

import sys
from pathlib import Path

BOARD = Path(__file__).resolve().parents[2] / "board"

if str(BOARD) not in sys.path:
    sys.path.insert(0, str(BOARD))
